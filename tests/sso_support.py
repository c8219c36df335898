"""Single sign-on test support: a real pysaml2 IdP (tests/peers/saml_idp.py) trusted by organization ``acme``.

Fixtures (import them into a test module): ``idp`` (the IdP, its own key) and ``saml_acme`` (acme's SAML set up
with the IdP's metadata, domain ``acme.example`` verified, and the IdP trusting acme's SP metadata as served by
the portal). Helpers run the browser's part of the round trip with Django's test client (``http://testserver``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.organizations import sso
from apps.organizations.models import Organization, VerifiedDomain
from tests.peers.saml_idp import IDP_ENTITY_ID, SamlIdentityProvider, make_key_pair

SP_ENTITY_ID = "http://testserver/orgs/acme/sso/saml/metadata/"
ACS_URL = "http://testserver/orgs/acme/sso/saml/acs/"


class SsoIdp:
    """tests/peers/saml_idp.py's IdP with the SP metadata it trusts, answering with e-mail, name and groups."""

    def __init__(self, workdir, *, entity_id: str = IDP_ENTITY_ID, name: str = "idp.gpux.test") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.provider = SamlIdentityProvider(entity_id=entity_id, keys=make_key_pair(workdir, name), workdir=workdir)
        self.sp_metadata: list[str] = []

    @property
    def entity_id(self) -> str:
        return self.provider.entity_id

    @property
    def sso_url(self) -> str:
        return self.provider.sso_redirect_url

    def metadata_xml(self) -> str:
        return self.provider.metadata()

    def trust_sp(self, sp_metadata: str) -> None:
        self.sp_metadata.append(sp_metadata)

    def respond(self, *, email: str, name: str = "", groups=(), **kwargs) -> str:
        """A base64 SAMLResponse for ``email`` (its NameID too); kwargs as ``login_response``'s."""
        attributes = {"email": [email]}
        if name:
            attributes["name"] = [name]
        if groups:
            attributes["groups"] = list(groups)
        posted = self.provider.login_response(
            sp_metadata=self.sp_metadata, name_id=email, attributes=attributes, **kwargs
        )
        return posted["SAMLResponse"]


@pytest.fixture
def idp(tmp_path) -> SsoIdp:
    return SsoIdp(tmp_path / "idp")


def verify_domain(organization: Organization, domain: str) -> VerifiedDomain:
    return VerifiedDomain.objects.create(
        organization=organization, domain=domain, token="t" * 32, method="dns", verified_at=timezone.now()
    )


@dataclass
class SamlOrg:
    org: Organization
    idp: SsoIdp
    owner: object

    def settings(self, **changes):
        return sso.update_saml_settings(actor=self.owner, organization=self.org, **changes)


@pytest.fixture
def saml_acme(world, idp) -> SamlOrg:
    owner = world.user("owner")
    verify_domain(world.org, "acme.example")
    sso.update_saml_settings(actor=owner, organization=world.org, idp_metadata_xml=idp.metadata_xml(), enabled=True)
    metadata = Client().get(reverse("org-saml-metadata", args=[world.org.slug]))
    assert metadata.status_code == 200, metadata.content
    idp.trust_sp(metadata.content.decode())
    world.org.refresh_from_db()
    return SamlOrg(org=world.org, idp=idp, owner=owner)


def start_sign_in(client: Client, slug: str = "acme", next_url: str = "/", **query) -> dict:
    """GET the portal's SAML login; follow its redirect to the IdP as far as reading the AuthnRequest."""
    response = client.get(reverse("org-saml-login", args=[slug]), {"next": next_url, **query})
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    params = parse_qs(location.query)
    return {"saml_request": params["SAMLRequest"][0], "relay": params.get("RelayState", [""])[0], "url": location}


def answer(idp: SsoIdp, started: dict, *, email: str, **kwargs) -> str:
    """The IdP's signed answer to the AuthnRequest ``started`` carried."""
    return idp.respond(saml_request=started["saml_request"], email=email, **kwargs)


def post_to_acs(client: Client, saml_response: str, relay: str = "/", slug: str = "acme"):
    return client.post(reverse("org-saml-acs", args=[slug]), {"SAMLResponse": saml_response, "RelayState": relay})


def sign_in_through_idp(client: Client, saml: SamlOrg, *, email: str, next_url: str = "/", **kwargs):
    started = start_sign_in(client, saml.org.slug, next_url)
    return post_to_acs(client, answer(saml.idp, started, email=email, **kwargs), started["relay"], saml.org.slug)


def decoded(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def encoded(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


ASSERTION = re.compile(r"<(\w+:)?Assertion[ >].*?</\1Assertion>", re.S)
SIGNATURE = re.compile(r"<(\w+:)?Signature[ >].*?</\1Signature>", re.S)


def refusal_of(response) -> str:
    """The reason the refusal page gives."""
    match = re.search(r'<p id="saml-refusal">(.*?)</p>', response.content.decode(), re.S)
    return match.group(1) if match else ""


# -- SCIM ---------------------------------------------------------------------------------------------------
SCIM_BASE = "/orgs/acme/scim/v2"
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimClient:
    """An IdP's SCIM client for one organization: JSON bodies, ``Authorization: Bearer <token>``."""

    def __init__(self, token: str, base: str = SCIM_BASE) -> None:
        self.client = Client()
        self.token = token
        self.base = base

    def call(self, method: str, path: str, body=None, **query):
        import json
        from urllib.parse import urlencode

        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body) if body is not None and not isinstance(body, str) else (body or "")
        return self.client.generic(
            method, url, data=data, content_type="application/scim+json", HTTP_AUTHORIZATION=f"Bearer {self.token}"
        )

    def get(self, path: str, **query):
        return self.call("GET", path, **query)

    def post(self, path: str, body):
        return self.call("POST", path, body)

    def put(self, path: str, body):
        return self.call("PUT", path, body)

    def patch(self, path: str, operations: list):
        return self.call("PATCH", path, {"schemas": [SCIM_PATCH], "Operations": operations})

    def delete(self, path: str):
        return self.call("DELETE", path)


def scim_user(user_name: str, **extra) -> dict:
    given, _, family = extra.pop("full_name", "Pat Doe").partition(" ")
    return {
        "schemas": [SCIM_USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": user_name, "primary": True, "type": "work"}],
        "active": True,
        **extra,
    }


@pytest.fixture
def scim_acme(world) -> ScimClient:
    """acme with its domain verified and a SCIM token made by its owner."""
    from apps.organizations import scim

    verify_domain(world.org, "acme.example")
    _token, raw = scim.create_scim_token(actor=world.user("owner"), organization=world.org)
    return ScimClient(raw)


# -- DNS without a DNS server ---------------------------------------------------------------------------------
# No DNS server is reachable from the test machines: domain checks go through this resolver instead (the
# SSO_DNS_TXT_RESOLVER setting), and a test publishes the records it wants here.
TXT_RECORDS: dict[str, list[str]] = {}


def txt_records(name: str) -> list[str]:
    return list(TXT_RECORDS.get(name, []))
