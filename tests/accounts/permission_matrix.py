"""Sign-in routes of the accounts app in the permission matrix (loaded by tests/permissions/matrix.py).

SAML routes of an organization: an IdP and people's browsers reach them before anyone is signed in, so they answer
everyone alike once the organization has SAML settings: the SP metadata (200), the sign-in start (a redirect to the
IdP), and the ACS (a POST without a SAMLResponse is a 400 for anyone). The refusals of bad assertions, the test
sign-in's admin check and the round trip are in tests/accounts/test_saml_*.py. OpenID Connect's routes are exempt
(EXEMPT below, with the reasons).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from apps.organizations import sso
from tests.permissions.matrix import PAGE_ANYONE, Access, Route, Scene, acme, table
from tests.sso_support import SsoIdp


def with_saml(scene: Scene, persona: str) -> dict:
    def build(s: Scene):
        idp = SsoIdp(Path(tempfile.mkdtemp(prefix="matrix-idp-")))
        return sso.update_saml_settings(
            actor=s.owner, organization=s.org, idp_metadata_xml=idp.metadata_xml(), enabled=True
        )

    scene.once("saml", build)
    return acme(scene, persona)


EVERYONE_BAD_REQUEST = Access(private=table(*[400] * 6), public=table(*[400] * 6))

PAGE_ROUTES = [
    Route("org-saml-metadata", "GET", PAGE_ANYONE, with_saml, note="the IdP fetches it unauthenticated"),
    Route("org-saml-login", "GET", PAGE_ANYONE, with_saml, note="a redirect to the organization's IdP"),
    Route(
        "org-saml-acs",
        "POST",
        EVERYONE_BAD_REQUEST,
        with_saml,
        body=lambda s, p: {},
        note="no SAMLResponse: 400 for anyone (the assertion decides who signs in, not the session)",
    ),
]

# OpenID Connect sign-in routes: no role decides them.
EXEMPT: dict[str, str] = {
    "openid_connect_login": (
        "starts a sign-in through an OpenID Connect provider: public by design, like allauth's own sign-in pages "
        "(the portal's hardened copy of allauth's view; tests/accounts/oidc)"
    ),
    "openid_connect_callback": (
        "the provider's redirect back after sign-in: public by design, checked by state, PKCE, issuer and signature "
        "(tests/accounts/oidc/test_refused_openid_connect_sign_ins.py)"
    ),
    "route:accounts/social/": (
        "django-allauth's deprecated /accounts/social/* addresses: bare redirects to its /accounts/3rdparty/ pages "
        "(exempt as allauth.)"
    ),
}
