"""Only the organization's admins and owners read its audit trail; a token needs the admin scope.

Expected answers come from DESIGN.md's role table ("admin: ... sees the org's audit trail"), not from the code.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import TokenScope
from tests.audit.conftest import record_many
from tests.conftest import api_client_for
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

EXPECTED = {"owner": 200, "admin": 200, "member": 403, "viewer": 403, "outsider": 404}
ROUTES = ("api:org-audit-list", "api:org-audit-export")


def url(name: str, slug: str = "acme") -> str:
    return reverse(name, kwargs={"org_slug": slug})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("persona", list(EXPECTED))
def test_each_persona_gets_the_answer_of_the_role_table(world, persona, route):
    record_many(world.org, 2)
    client = api_client_for(world.user(persona))

    response = client.get(url(route))

    assert response.status_code == EXPECTED[persona], response.content[:300]


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_is_asked_to_authenticate(world, route):
    response = api_client_for(None).get(url(route))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("route", ROUTES)
def test_a_member_is_told_why(world, route):
    response = api_client_for(world.user("member")).get(url(route))

    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("scope", [TokenScope.READ, TokenScope.WRITE, TokenScope.RUN])
def test_an_owner_token_below_admin_scope_is_refused(world, route, scope):
    response = api_client_for(world.user("owner"), scope=scope).get(url(route))

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "admin" in response.json()["detail"].lower()


def test_a_token_bound_to_another_organization_does_not_see_this_one(world):
    elsewhere = OrganizationFactory()

    response = api_client_for(world.user("owner"), organization=elsewhere).get(url("api:org-audit-list"))

    assert response.status_code == 404


def test_a_token_bound_to_this_organization_works(world):
    response = api_client_for(world.user("admin"), organization=world.org).get(url("api:org-audit-list"))

    assert response.status_code == 200


def test_an_unknown_organization_is_404(world):
    response = api_client_for(world.user("owner")).get(url("api:org-audit-list", "no-such-org"))

    assert response.status_code == 404


def test_a_session_signed_in_admin_reads_it_too(world, client):
    client.force_login(world.user("admin"))

    assert client.get(url("api:org-audit-list")).status_code == 200
    assert client.get(url("api:org-audit-list", world.user("outsider").handle)).status_code == 404


def test_the_list_is_read_only(world):
    client = api_client_for(world.user("owner"))

    assert client.post(url("api:org-audit-list"), {"action": "forged"}).status_code == 405
    assert client.delete(url("api:org-audit-list")).status_code == 405
