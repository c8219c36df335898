"""Organization routes outside the generic matrix, each with its reason (loaded by tests/permissions/matrix.py)."""

from __future__ import annotations

_SCIM = (
    "SCIM 2.0: authenticated by the organization's SCIM token only (no session, no API token), which the matrix's "
    "personas do not hold; tests/organizations/test_scim_*.py cover every route per caller (the organization's "
    "token, another organization's, none, a persona's session and API token)"
)
EXEMPT = {
    "scim-users": _SCIM,
    "scim-user": _SCIM,
    "scim-groups": _SCIM,
    "scim-group": _SCIM,
    "scim-service-provider-config": _SCIM,
    "scim-resource-types": _SCIM,
    "scim-schemas": _SCIM,
}


# --- the SSO and SCIM pages -------------------------------------------------------------------------------------
from apps.organizations import scim, sso  # noqa: E402
from apps.organizations.models import GroupMapping  # noqa: E402
from apps.organizations.provisioning import saml_source  # noqa: E402
from tests import sso_support  # noqa: E402
from tests.permissions.matrix import (  # noqa: E402
    PAGE_ADMIN,
    PAGE_ANYONE,
    PAGE_OWNER,
    Route,
    Scene,
    no_kwargs,
)


def claim(scene: Scene):
    return scene.once("domain", lambda s: sso.claim_domain(actor=s.owner, organization=s.org, domain="acme.example"))


def domain(scene: Scene, persona: str) -> dict:
    the_claim = claim(scene)
    sso_support.TXT_RECORDS["acme.example"] = [f"{sso.DNS_TXT_PREFIX}{the_claim.token}"]
    return {"org_slug": scene.org.slug, "uuid": the_claim.uuid}


def mapping(scene: Scene, persona: str) -> dict:
    made = scene.once(
        "mapping",
        lambda s: GroupMapping.objects.create(source=saml_source(s.org), organization=s.org, group="eng", role=20),
    )
    return {"org_slug": scene.org.slug, "uuid": made.uuid}


def scim_token(scene: Scene, persona: str) -> dict:
    made = scene.once("scim-token", lambda s: scim.create_scim_token(actor=s.owner, organization=s.org)[0])
    return {"org_slug": scene.org.slug, "uuid": made.uuid}


def email_link(scene: Scene, persona: str) -> dict:
    return {"token": sso.domain_email_link_token(claim(scene), "it@acme.example")}


def saml_with_domain(scene: Scene, persona: str) -> dict:
    from tests.accounts.permission_matrix import with_saml

    with_saml(scene, persona)
    scene.once("verified", lambda s: sso_support.verify_domain(s.org, "acme.example"))
    return {}


PAGE_ROUTES = [
    Route("org-sso", "GET", PAGE_ADMIN),
    Route("org-sso", "POST", PAGE_ADMIN, body=lambda s, p: {"email_attribute": "mail", "groups_attribute": "groups"}),
    Route(
        "org-sso-require",
        "POST",
        PAGE_OWNER,
        body=lambda s, p: {"require_sso": "on"},
        unchanged_for=frozenset({"owner"}),
        note="acme has no SAML set up: the owner is refused with a message, nothing changes",
    ),
    Route("org-sso-mapping-add", "POST", PAGE_OWNER, body=lambda s, p: {"group": "eng", "role": 20}),
    Route("org-sso-mapping-delete", "POST", PAGE_OWNER, mapping),
    Route("org-domain-add", "POST", PAGE_ADMIN, body=lambda s, p: {"domain": "acme-labs.example"}),
    Route("org-domain-verify", "POST", PAGE_ADMIN, domain, note="the TXT record is published (tests/sso_support.py)"),
    Route("org-domain-email", "POST", PAGE_ADMIN, domain, lambda s, p: {"email": "it@acme.example"}),
    Route("org-domain-delete", "POST", PAGE_ADMIN, domain),
    Route("domain-verify-link", "GET", PAGE_ANYONE, email_link, under_org=False),
    Route(
        "domain-verify-link", "POST", PAGE_ANYONE, email_link, under_org=False, note="whoever holds the link verifies"
    ),
    Route("org-scim", "GET", PAGE_ADMIN),
    Route("org-scim", "POST", PAGE_ADMIN),
    Route("org-scim-revoke", "POST", PAGE_ADMIN, scim_token),
    Route("sso-sign-in", "GET", PAGE_ANYONE, no_kwargs, under_org=False),
    Route(
        "sso-sign-in",
        "POST",
        PAGE_ANYONE,
        saml_with_domain,
        lambda s, p: {"email": "someone@acme.example"},
        under_org=False,
        unchanged_for=frozenset({"owner", "admin", "member", "viewer", "outsider", "anonymous"}),
        note="a redirect to acme's IdP: nothing is written",
    ),
]
