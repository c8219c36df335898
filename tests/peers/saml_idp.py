"""A real SAML 2.0 identity provider for the tests: pysaml2's ``saml2.server.Server`` with a key of its own.

pysaml2 signs with the ``xmlsec1`` program (Debian package ``xmlsec1``), as it would in any IdP built on it. The
IdP runs in the test process: a test hands it the portal's SP metadata and the ``SAMLRequest`` the portal
redirected to it, and gets back the form an IdP's browser page would POST to the portal's ACS
(:meth:`SamlIdentityProvider.login_response`). IdP-initiated responses (no request) are there too. The key and
its self-signed certificate are made here with ``cryptography`` once per session; :func:`make_key_pair` makes
more (a service provider's own, or a wrong IdP's).

Responses are signed with RSA-SHA256 and SHA-256 digests (pysaml2's default digest is SHA-1), and carry an
AuthnStatement (``authn``): without one djangosaml2 answers 403 "Invalid number of AuthnStatement"
(../shared/PEERS.md). What a refusal test needs (unsigned, tampered, expired, another audience, another issuer)
is a parameter here or an edit of the returned XML, so the portal is always fed what a real IdP would send.
"""

from __future__ import annotations

import base64
import datetime
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IDP_ENTITY_ID = "http://idp.gpux.test/metadata"
SSO_REDIRECT_URL = "http://idp.gpux.test/sso/redirect"
SSO_POST_URL = "http://idp.gpux.test/sso/post"
XMLSEC1 = "xmlsec1"


@dataclass(frozen=True)
class KeyPair:
    """A private key and its self-signed certificate, as PEM files."""

    key_file: Path
    cert_file: Path

    @property
    def cert_pem(self) -> str:
        return self.cert_file.read_text()

    @property
    def cert_base64(self) -> str:
        """The certificate's DER in base64, as metadata's ``<ds:X509Certificate>`` holds it."""
        lines = [line for line in self.cert_pem.splitlines() if line and not line.startswith("-----")]
        return "".join(lines)


def make_key_pair(directory: Path, common_name: str) -> KeyPair:
    """An RSA-2048 key and a self-signed SHA-256 certificate for ``common_name``, valid ten years."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    slug = "".join(c if c.isalnum() else "-" for c in common_name)
    key_file, cert_file = directory / f"{slug}.key", directory / f"{slug}.crt"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(key_file=key_file, cert_file=cert_file)


@dataclass
class SamlIdentityProvider:
    """pysaml2 as an IdP: its entity id, metadata and key, and the responses it sends to a service provider."""

    entity_id: str
    keys: KeyPair
    workdir: Path
    sso_redirect_url: str = SSO_REDIRECT_URL
    sso_post_url: str = SSO_POST_URL

    def config(self, sp_metadata: str | list[str] | None = None, *, lifetime_minutes: int = 15) -> Any:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT

        settings: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": shutil.which(XMLSEC1),
            "key_file": str(self.keys.key_file),
            "cert_file": str(self.keys.cert_file),
            "service": {
                "idp": {
                    "name": "GPUX test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (self.sso_redirect_url, BINDING_HTTP_REDIRECT),
                            (self.sso_post_url, BINDING_HTTP_POST),
                        ]
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT],
                    "policy": {"default": {"lifetime": {"minutes": lifetime_minutes}, "name_form": NAME_FORMAT_URI}},
                    "want_authn_requests_signed": False,
                }
            },
            "metadata": {"inline": [sp_metadata] if isinstance(sp_metadata, str) else sp_metadata}
            if sp_metadata
            else {},
        }
        config = IdPConfig()
        config.load(settings)
        return config

    def metadata(self) -> str:
        """The IdP's metadata XML, what an org admin pastes into the portal."""
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self.config()))

    def server(self, sp_metadata: str | list[str], *, lifetime_minutes: int = 15) -> Any:
        from saml2.server import Server

        return Server(config=self.config(sp_metadata, lifetime_minutes=lifetime_minutes))

    def login_response(
        self,
        *,
        sp_metadata: str | list[str],
        saml_request: str | None = None,
        relay_state: str = "",
        sp_entity_id: str | None = None,
        name_id: str,
        attributes: dict[str, list[str]],
        sign_response: bool = True,
        sign_assertion: bool = True,
        authn_class: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        lifetime_minutes: int = 15,
    ) -> dict[str, str]:
        """The POST an IdP page would make to the SP's ACS: ``{"url", "SAMLResponse", "RelayState"}``.

        ``saml_request`` is the ``SAMLRequest`` of the SP's redirect (HTTP-Redirect binding); without it the
        response is unsolicited (IdP-initiated) and goes to ``sp_entity_id``'s first ACS. ``audience`` addresses the
        assertion to another SP (its metadata among ``sp_metadata``) while answering this request; a negative
        ``lifetime_minutes`` makes an assertion that has already expired.
        """
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
        from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_EMAILADDRESS
        from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

        server = self.server(sp_metadata, lifetime_minutes=lifetime_minutes)
        if saml_request is not None:
            request = server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message
            in_response_to, sp_entity_id = request.id, request.issuer.text
            destination = request.assertion_consumer_service_url
        else:
            if sp_entity_id is None:
                raise ValueError("an unsolicited response needs sp_entity_id")
            in_response_to = None
            destination = server.metadata.assertion_consumer_service(sp_entity_id, binding=BINDING_HTTP_POST)[0][
                "location"
            ]
        response = server.create_authn_response(
            identity=attributes,
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=audience or sp_entity_id,
            name_id=saml.NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
            authn={"class_ref": authn_class or AUTHN_PASSWORD_PROTECTED},
            issuer=server._issuer(issuer) if issuer else None,
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        encoded = base64.b64encode(str(response).encode()).decode()
        return {"url": destination, "SAMLResponse": encoded, "RelayState": relay_state}


@pytest.fixture(scope="session")
def saml_idp() -> Iterator[SamlIdentityProvider]:
    """The pysaml2 IdP with a key made for this session (its files are removed at the end)."""
    pytest.importorskip("saml2", reason="pysaml2 (the enterprise extra) is not installed")
    if shutil.which(XMLSEC1) is None:
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    workdir = Path(tempfile.mkdtemp(prefix="gpux-saml-idp-"))
    try:
        yield SamlIdentityProvider(
            entity_id=IDP_ENTITY_ID, keys=make_key_pair(workdir, "idp.gpux.test"), workdir=workdir
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class SamlIdpFront:
    """A tiny HTTP front for ``SamlIdentityProvider`` on 127.0.0.1 (a free port), for browser tests and metadata URLs.

    ``/metadata`` serves the IdP's metadata; ``/sso`` takes the SP's AuthnRequest (HTTP-Redirect) and answers a
    sign-in page with the users it knows; submitting it answers a page that posts the signed Response to the SP's
    ACS, as an IdP's login page would. Construct it before the IdP (its URLs name the port), stop it with ``stop()``.
    """

    def __init__(self, workdir: Path, *, sp_metadata: list[str] | None = None) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        workdir.mkdir(parents=True, exist_ok=True)
        self.httpd = make_server("127.0.0.1", 0, self._wsgi, handler_class=Quiet)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.idp = SamlIdentityProvider(
            entity_id=f"{self.base_url}/metadata",
            keys=make_key_pair(workdir, "idp-front"),
            workdir=workdir,
            sso_redirect_url=f"{self.base_url}/sso",
            sso_post_url=f"{self.base_url}/sso",
        )
        self.sp_metadata: list[str] = list(sp_metadata or [])
        self.users: dict[str, dict[str, list[str]]] = {}
        import threading

        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add_user(self, email: str, **attributes: list[str]) -> None:
        self.users[email] = {"email": [email], **attributes}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _wsgi(self, environ: dict, start_response: Any) -> list[bytes]:
        import html
        from urllib.parse import parse_qs

        path = environ.get("PATH_INFO", "")
        page = "text/html; charset=utf-8"
        if path == "/metadata":
            start_response("200 OK", [("Content-Type", "application/samlmetadata+xml")])
            return [self.idp.metadata().encode()]
        if path != "/sso":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        if environ["REQUEST_METHOD"] == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            options = "".join(f'<option value="{html.escape(u)}">{html.escape(u)}</option>' for u in self.users)
            body = (
                "<!doctype html><html><head><title>Test IdP sign-in</title></head><body><h1>Test IdP</h1>"
                '<form method="post" action="/sso">'
                f'<input type="hidden" name="SAMLRequest" value="{html.escape(query["SAMLRequest"][0])}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(query.get("RelayState", [""])[0])}">'
                f'<label>User <select name="login" id="login">{options}</select></label> '
                '<label>Password <input type="password" name="password" id="password"></label> '
                '<button type="submit" id="idp-sign-in">Sign in</button></form></body></html>'
            )
            start_response("200 OK", [("Content-Type", page)])
            return [body.encode()]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(size).decode())
        login = form["login"][0]
        posted = self.idp.login_response(
            sp_metadata=self.sp_metadata,
            saml_request=form["SAMLRequest"][0],
            relay_state=form.get("RelayState", [""])[0],
            name_id=login,
            attributes=self.users[login],
        )
        body = (
            "<!doctype html><html><head><title>Signing you in</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(posted["url"])}">'
            f'<input type="hidden" name="SAMLResponse" value="{html.escape(posted["SAMLResponse"])}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(posted["RelayState"])}">'
            '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
        )
        start_response("200 OK", [("Content-Type", page)])
        return [body.encode()]
