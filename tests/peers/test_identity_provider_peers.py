"""The identity-provider peers answer as the SSO tests rely on: slapd, oidc-provider and the pysaml2 IdP.

These check the peers themselves (their directory, their settings), so that a failing portal test points at the
portal. The portal's own behaviour is tested in tests/accounts/ldap/ and tests/accounts/oidc/.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.peers.ldap import ALICE, BIND_DN, BIND_PASSWORD, CAROL, FOX, PEOPLE, SlapdServer, slapd  # noqa: F401
from tests.peers.oidc_provider import CLIENT_ID, REDIRECT_URIS, OidcProvider, oidc_provider  # noqa: F401
from tests.peers.saml_idp import SamlIdentityProvider, make_key_pair, saml_idp  # noqa: F401


def test_slapd_lets_the_service_account_search_and_people_bind_with_their_password(slapd: SlapdServer):  # noqa: F811
    import ldap

    service = slapd.connect(BIND_DN, BIND_PASSWORD)
    found = service.search_s(PEOPLE, ldap.SCOPE_SUBTREE, f"(mail={ALICE.email})", ["uid"])
    assert [dn for dn, _ in found] == [ALICE.dn]
    slapd.connect(ALICE.dn, ALICE.password).unbind_s()
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd.connect(ALICE.dn, "wrong")


def test_slapd_refuses_an_account_an_administrator_locked_and_not_an_ad_style_disabled_one(slapd: SlapdServer):  # noqa: F811
    import ldap

    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd.connect(CAROL.dn, CAROL.password)  # ppolicy: pwdAccountLockedTime 000001010000Z
    # userAccountControl means nothing to slapd: the portal's LDAP_DISABLED_FILTER is what refuses Fox.
    slapd.connect(FOX.dn, FOX.password).unbind_s()


def test_slapd_offers_starttls_with_a_certificate_its_ca_vouches_for(slapd: SlapdServer):  # noqa: F811
    import ldap

    connection = ldap.initialize(slapd.uri)
    connection.set_option(ldap.OPT_X_TLS_CACERTFILE, slapd.ca_file)
    connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    connection.start_tls_s()
    connection.simple_bind_s(ALICE.dn, ALICE.password)
    assert connection.whoami_s() == f"dn:{ALICE.dn}"


def test_oidc_provider_announces_its_issuer_and_requires_pkce(oidc_provider: OidcProvider):  # noqa: F811
    import requests

    discovery = requests.get(f"{oidc_provider.issuer}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    query = {"client_id": CLIENT_ID, "response_type": "code", "scope": "openid", "redirect_uri": REDIRECT_URIS[0]}
    # Without a code challenge the provider sends the browser back with an error, never to its login form.
    refused = oidc_provider.sign_in(
        f"{discovery['authorization_endpoint']}?{urlencode({**query, 'state': 's'})}", "ada"
    )
    assert parse_qs(urlparse(refused).query)["error"] == ["invalid_request"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {**query, "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    accepted = oidc_provider.sign_in(f"{discovery['authorization_endpoint']}?{urlencode(pkce)}", "ada")
    assert "code" in parse_qs(urlparse(accepted).query)


def _service_provider(saml_idp: SamlIdentityProvider):  # noqa: F811
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor

    keys = make_key_pair(saml_idp.workdir, "sp.gpux.test")
    config = SPConfig()
    config.load(
        {
            "entityid": "http://sp.gpux.test/metadata",
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": str(keys.key_file),
            "cert_file": str(keys.cert_file),
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [("http://sp.gpux.test/acs", BINDING_HTTP_POST)]},
                    "want_response_signed": True,
                    "want_assertions_signed": True,
                    "allow_unsolicited": False,
                }
            },
            "metadata": {"inline": [saml_idp.metadata()]},
            # A top-level option (not the SP service's): keep attributes pysaml2 has no converter for.
            "allow_unknown_attributes": True,
        }
    )
    return Saml2Client(config=config), str(entity_descriptor(config))


def test_the_saml_idp_answers_a_request_with_a_signed_response_a_service_provider_accepts(saml_idp):  # noqa: F811
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.sigver import SignatureError

    client, sp_metadata = _service_provider(saml_idp)
    request_id, info = client.prepare_for_authenticate(entityid=saml_idp.entity_id, binding=BINDING_HTTP_REDIRECT)
    location = dict(info["headers"])["Location"]
    saml_request = parse_qs(urlparse(location).query)["SAMLRequest"][0]
    posted = saml_idp.login_response(
        sp_metadata=sp_metadata,
        saml_request=saml_request,
        name_id="ada@idp.example",
        attributes={"mail": ["ada@idp.example"], "groups": ["ml-engineers"]},
    )
    assert posted["url"] == "http://sp.gpux.test/acs"
    response = client.parse_authn_request_response(posted["SAMLResponse"], BINDING_HTTP_POST, {request_id: "/"})
    assert response.ava["groups"] == ["ml-engineers"]
    assert response.name_id.text == "ada@idp.example"

    # The same response with one attribute value changed no longer verifies.
    xml = base64.b64decode(posted["SAMLResponse"]).decode().replace("ml-engineers", "ml-admins")
    with pytest.raises(SignatureError):
        client.parse_authn_request_response(
            base64.b64encode(xml.encode()).decode(), BINDING_HTTP_POST, {request_id: "/"}
        )
