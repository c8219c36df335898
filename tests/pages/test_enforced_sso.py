"""An organization that requires SSO is reached only by sessions that signed in through its IdP: its members'
other sessions are sent to the IdP from its pages and refused by its API (403 ``sso_required``), and objects of
the organization reached by any other route are out of their reach too (restrict()). Owners keep a break-glass
local sign-in with two-factor authentication. API tokens are decided by their token, and stop at once when their
user's membership ends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.job_services import start_job
from apps.organizations import services, sso
from tests.conftest import api_client_for
from tests.pages.mfa import enrol_totp, fresh_totp, sign_in
from tests.sso_support import SamlOrg, sign_in_through_idp

pytestmark = pytest.mark.django_db


@dataclass
class Enforced:
    saml: SamlOrg
    owner_totp_secret: str


@pytest.fixture
def enforced(saml_acme, world) -> Enforced:
    """acme requires SSO; its owner set up TOTP first (a requirement of turning it on)."""
    owner = world.user("owner")
    secret, _codes = enrol_totp(Client(), owner.email)
    sso.set_require_sso(actor=owner, organization=world.org, require_sso=True)
    return Enforced(saml=saml_acme, owner_totp_secret=secret)


def local_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_requiring_sso_is_audited_and_needs_saml_and_an_owner_with_mfa(saml_acme, world):
    owner = world.user("owner")
    with pytest.raises(ValidationError) as refused:
        sso.set_require_sso(actor=owner, organization=world.org, require_sso=True)
    assert refused.value.error_dict["require_sso"][0].code == "mfa_required"
    enrol_totp(Client(), owner.email)

    sso.set_require_sso(actor=owner, organization=world.org, require_sso=True)

    world.org.refresh_from_db()
    assert world.org.require_sso
    event = AuditEvent.objects.filter(organization=world.org, action="organization.updated").order_by("-seq").first()
    assert event.diff == {"require_sso": [False, True]}


def test_requiring_sso_without_saml_enabled_is_refused(world):
    with pytest.raises(ValidationError) as refused:
        sso.set_require_sso(actor=world.user("owner"), organization=world.org, require_sso=True)
    assert refused.value.error_dict["require_sso"][0].code == "saml_not_enabled"


@pytest.mark.parametrize("page", ["org-overview", "org-members", "org-teams", "org-audit"])
def test_a_member_signed_in_locally_is_sent_to_the_idp(enforced, world, page):
    client = local_client(world.user("admin"))
    url = reverse(page, args=["acme"])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/orgs/acme/sso/saml/login/?next={url.replace('/', '%2F')}"


def test_the_api_answers_a_locally_signed_in_session_403_sso_required(enforced, world):
    response = local_client(world.user("member")).get("/api/v1/orgs/acme/members/")

    assert response.status_code == 403
    assert response.json()["code"] == "sso_required"
    assert "/orgs/acme/sso/saml/login/" in response.json()["detail"]


def test_objects_of_the_organization_are_out_of_reach_by_other_routes_too(enforced, world):
    admin = world.user("admin")
    job = start_job(kind="audit.export", organization=world.org, creator=admin, params={"format": "csv"})
    client = local_client(admin)

    assert str(job.uuid) not in client.get("/api/v1/jobs/").content.decode()
    assert client.get(f"/api/v1/jobs/{job.uuid}/").status_code == 404
    assert client.get(reverse("job-detail", args=[job.uuid])).status_code == 404


def test_after_signing_in_through_the_idp_the_member_reaches_everything(enforced, world):
    admin = world.user("admin")
    job = start_job(kind="audit.export", organization=world.org, creator=admin, params={"format": "csv"})
    client = Client()

    response = sign_in_through_idp(client, enforced.saml, email=admin.email, next_url="/orgs/acme/members/")

    assert response.status_code == 302 and response["Location"] == "/orgs/acme/members/"
    assert client.get("/orgs/acme/members/").status_code == 200
    assert client.get("/api/v1/orgs/acme/members/").status_code == 200
    assert client.get(f"/api/v1/jobs/{job.uuid}/").status_code == 200


def test_the_owner_keeps_a_break_glass_sign_in_with_mfa(enforced, world):
    owner = world.user("owner")
    client = Client()
    assert sign_in(client, owner.email).status_code == 302
    assert client.post(reverse("mfa_authenticate"), {"code": fresh_totp(enforced.owner_totp_secret)}).status_code == 302

    assert client.get("/orgs/acme/settings/").status_code == 200
    assert client.get("/api/v1/orgs/acme/members/").status_code == 200


def test_an_owner_session_without_a_second_factor_is_sent_to_the_idp(enforced, world):
    assert local_client(world.user("owner")).get("/orgs/acme/").status_code == 302


def test_an_admin_with_mfa_has_no_break_glass(enforced, world):
    admin = world.user("admin")
    secret, _ = enrol_totp(Client(), admin.email)
    client = Client()
    sign_in(client, admin.email)
    client.post(reverse("mfa_authenticate"), {"code": fresh_totp(secret)})

    assert client.get("/orgs/acme/").status_code == 302


def test_the_members_other_organizations_are_unaffected(enforced, world):
    member = world.user("member")
    assert local_client(member).get(reverse("org-overview", args=[member.handle])).status_code == 200


def test_every_page_shows_which_organization_asks_for_sso(enforced, world):
    member = world.user("member")
    page = local_client(member).get(reverse("org-overview", args=[member.handle])).content.decode()
    assert 'id="sso-needed"' in page and "/orgs/acme/sso/saml/login/" in page


def test_an_api_token_is_decided_by_the_token_not_the_session(enforced, world):
    assert api_client_for(world.user("member")).get("/api/v1/orgs/acme/members/").status_code == 200


def test_tokens_of_a_removed_member_stop_working_at_once(enforced, world):
    member = world.user("member")
    bound = api_client_for(member, organization=world.org)
    unbound = api_client_for(member)
    assert bound.get("/api/v1/orgs/acme/members/").status_code == 200

    services.remove_member(actor=world.user("owner"), membership=world.org.memberships.get(user=member))

    assert bound.get("/api/v1/orgs/acme/members/").status_code == 401
    assert unbound.get("/api/v1/orgs/acme/members/").status_code == 404


def test_disabling_saml_stops_requiring_sso(enforced, world):
    sso.update_saml_settings(actor=world.user("owner"), organization=world.org, enabled=False)
    world.org.refresh_from_db()
    assert not world.org.require_sso
    assert local_client(world.user("member")).get("/orgs/acme/").status_code == 200


def test_a_public_organizations_member_role_does_not_count_either(enforced, world):
    """A public organization stays visible to a locally signed-in member, as to anyone; their role there does not
    count: they may not act as a member by a route outside /orgs/<slug>/ either (here: starting an export job)."""
    from apps.core.access import Visibility

    services.update_organization(actor=world.user("owner"), organization=world.org, visibility=Visibility.PUBLIC)
    client = local_client(world.user("admin"))

    response = client.post(
        "/api/v1/jobs/",
        {"kind": "audit.export", "organization": "acme", "params": {"format": "csv"}},
        content_type="application/json",
    )

    assert response.status_code == 403, response.content
    assert client.get("/orgs/acme/").status_code == 302  # its pages still send them to the IdP
