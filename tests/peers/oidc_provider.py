"""A real OpenID Connect provider on loopback: the npm package ``oidc-provider`` (tests/peers/oidc/provider.mjs).

``make peers`` installs it from the committed lockfile (``npm ci`` in tests/peers/oidc). This module writes its
configuration (a free port, an RS256 signing key made here, the static clients and the accounts below), starts
``node provider.mjs`` and stops it by its pid. The provider serves discovery, the authorization code flow with PKCE
(required), RS256 ID tokens, userinfo, and its development login form, which takes any account id with any
password; consent is granted without asking.

What the refusal tests need is configured on the provider, never faked in the portal:

* client ``portal-expired`` receives ID tokens that expired an hour ago;
* ``/test/wrong-jwks`` serves a key set with the provider's key id but another key (a bad signature);
* the issuer is ``http://127.0.0.1:<port>``: a portal configured with ``http://localhost:<port>`` reaches the same
  server and must refuse the issuer it announces.

:meth:`OidcProvider.sign_in` plays the browser at the provider (the login form), from the portal's redirect to
the provider until the provider redirects back to the portal's callback, which it returns for the test to open.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import pytest

from tests.peers import free_port

HERE = Path(__file__).resolve().parent / "oidc"
START_TIMEOUT = 30.0
KEY_ID = "gpux-test-signing-key"

CLIENT_ID = "portal"
CLIENT_SECRET = "portal-client-secret-for-tests"
EXPIRED_CLIENT_ID = "portal-expired"

# The portal's callbacks the provider accepts, under Django's test client (host "testserver"): one per provider id
# the tests configure in the portal.
PROVIDER_IDS = ("peer", "peer-expired", "peer-wrong-key", "peer-wrong-issuer", "peer-groups")
REDIRECT_URIS = [f"http://testserver/accounts/oidc/{pid}/login/callback/" for pid in PROVIDER_IDS]

# Accounts the provider knows (the account id is what the login form takes). Anything else signs in with only a
# ``sub`` claim.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "ada": {
        "email": "ada@idp.example",
        "email_verified": True,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "preferred_username": "ada.lovelace",
        "groups": ["ml-engineers"],
    },
    "grace": {
        "email": "grace@idp.example",
        "email_verified": True,
        "name": "Grace Hopper",
        "preferred_username": "grace",
        "groups": ["ml-leads", "ml-engineers"],
    },
    # Claims an address it has not verified.
    "mallory": {
        "email": "victim@idp.example",
        "email_verified": False,
        "name": "Mallory",
        "preferred_username": "mallory",
    },
    # Verified, and the same address as a portal account the tests make.
    "victim": {
        "email": "victim@idp.example",
        "email_verified": True,
        "name": "Victor Victim",
        "preferred_username": "victim",
    },
    # A preferred_username that is no valid handle, and one already taken.
    "odd": {
        "email": "odd@idp.example",
        "email_verified": True,
        "name": "Ödön Ödd",
        "preferred_username": "Ödön Ödd!!",
    },
}


def _signing_keys() -> tuple[dict, dict]:
    """An RS256 private JWK for the provider, and a public JWK with the same key id but another key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    def jwk(private: bool) -> dict:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        data = RSAAlgorithm.to_jwk(key if private else key.public_key(), as_dict=True)
        return {**data, "kid": KEY_ID, "alg": "RS256", "use": "sig"}

    return jwk(private=True), jwk(private=False)


@dataclass
class OidcProvider:
    """A running oidc-provider: its issuer, its clients, and a way through its login form."""

    issuer: str
    port: int
    process: subprocess.Popen
    log: IO[bytes]
    root: Path
    started_in: float = 0.0
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    @property
    def wrong_jwks_uri(self) -> str:
        return f"{self.issuer}/test/wrong-jwks"

    def sign_in(self, authorize_url: str, account: str, *, stop_at: str = "http://testserver/") -> str:
        """Follow ``authorize_url`` through the provider's login form as ``account``; the URL it sends back to.

        Stops at the first redirect to ``stop_at`` (the portal) without requesting it. Raises AssertionError with
        the provider's page when the provider answers an error instead.
        """
        import requests

        session = requests.Session()
        url, method, data = authorize_url, "GET", None
        for _ in range(20):
            response = session.request(method, url, data=data, allow_redirects=False, timeout=10)
            if response.is_redirect:
                location = urljoin(url, response.headers["Location"])
                if location.startswith(stop_at):
                    return location
                url, method, data = location, "GET", None
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', response.text)
            if response.status_code == 200 and form and 'name="login"' in response.text:
                url, method = urljoin(url, form.group(1)), "POST"
                data = {"prompt": "login", "login": account, "password": "any password"}
                continue
            raise AssertionError(f"the provider answered {response.status_code} at {url}:\n{response.text[:2000]}")
        raise AssertionError(f"too many redirects from {authorize_url}")


def _wait_until_ready(provider: OidcProvider) -> None:
    import requests

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            raise RuntimeError(f"oidc-provider exited with {provider.process.returncode}:\n{provider.output()}")
        try:
            response = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2)
            if response.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"oidc-provider did not answer within {START_TIMEOUT:.0f} s:\n{provider.output()}")


def start_oidc_provider(
    *, redirect_uris: list[str] | None = None, accounts: dict[str, dict[str, Any]] | None = None
) -> OidcProvider:
    """Start oidc-provider on a free loopback port (the caller stops it: :func:`stop_oidc_provider`)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.skip(f"oidc-provider is not installed in {HERE} (run `make peers`)")
    began = time.monotonic()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    private_jwk, wrong_public_jwk = _signing_keys()
    redirect_uris = list(redirect_uris or REDIRECT_URIS)
    client = {
        "client_secret": CLIENT_SECRET,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
        "id_token_signed_response_alg": "RS256",
    }
    accounts = dict(ACCOUNTS if accounts is None else accounts)
    config = {
        "issuer": issuer,
        "port": port,
        "jwks": {"keys": [private_jwk]},
        "wrong_jwks": {"keys": [wrong_public_jwk]},
        "clients": [{**client, "client_id": CLIENT_ID}, {**client, "client_id": EXPIRED_CLIENT_ID}],
        "expired_id_token_clients": [EXPIRED_CLIENT_ID],
        "accounts": accounts,
    }
    root = Path(tempfile.mkdtemp(prefix="gpux-oidc-"))
    (root / "config.json").write_text(json.dumps(config))
    # The log goes to a file, not a pipe: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), str(root / "config.json")],
        cwd=HERE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    provider = OidcProvider(issuer=issuer, port=port, process=process, log=log, root=root, accounts=accounts)
    try:
        _wait_until_ready(provider)
    except BaseException:
        stop_oidc_provider(provider)
        raise
    provider.started_in = time.monotonic() - began
    return provider


def stop_oidc_provider(provider: OidcProvider) -> None:
    """Stop the provider by its pid and remove its configuration."""
    provider.process.terminate()
    try:
        provider.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        provider.process.kill()
        provider.process.wait(timeout=10)
    provider.log.close()
    shutil.rmtree(provider.root, ignore_errors=True)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """oidc-provider on a free loopback port for the whole session, with the accounts above; stopped by its pid."""
    provider = start_oidc_provider()
    try:
        yield provider
    finally:
        stop_oidc_provider(provider)
