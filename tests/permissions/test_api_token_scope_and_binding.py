"""The matrix through narrower tokens: a token's scope and its organization binding only ever take rights away.

DESIGN.md: effective right = scope ∩ the user's rights ∩ the binding. The caller is acme's owner, who may do
everything in acme, so whatever is refused here is refused by the token alone:

* a ``read`` token reads what the owner reads and is refused every write with 403 ``insufficient_scope``;
* a token bound to another organization (the owner's personal one) finds nothing of private acme: 404 on every
  route that names acme or its objects, 400 on the field where the body names it, and acme is not listed; it gets
  what a signed-in outsider gets, so an object of acme that is public on its own (a public model) it reads, and
  may not change (403, or 404);
* a token bound to acme itself acts in acme as an unbound one does.
"""

from __future__ import annotations

import pytest

from apps.accounts.models import TokenScope
from apps.organizations.models import Organization
from tests.permissions.checks import api_client_as, assert_api_answer, assert_status, prepare, send_api
from tests.permissions.matrix import ADMIN_READ, API_ROUTES, OK, Route

ACTOR = "owner"
# Reading an admin-only collection (audit trail, invitations, tokens) may itself ask for the admin scope.
ADMIN_ONLY_READS = {route.id for route in API_ROUTES if route.access is ADMIN_READ}


def names_acme(route: Route) -> bool:
    """The route addresses acme or one of its objects (in its URL, or for job routes, the job of acme)."""
    return route.under_org or route.of_acme or route.name in {"api:job-detail", "api:job-download"}


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda route: route.id)
def test_a_read_scope_token_reads_but_every_write_is_insufficient_scope(scene, route):
    url, body, _item = prepare(route, scene, ACTOR)
    response = send_api(route, url, body, api_client_as(scene, ACTOR, scope=TokenScope.READ))
    if route.writes:
        assert_status(403, route, ACTOR, url, response)
        assert response.json()["code"] == "insufficient_scope", response.content
    elif route.id in ADMIN_ONLY_READS and response.status_code == 403:
        assert response.json()["code"] == "insufficient_scope", response.content
    else:
        assert_api_answer(route.access.private[ACTOR], route, ACTOR, url, response)


def personal_organization(scene) -> Organization:
    return Organization.objects.get(personal_owner=scene.user(ACTOR))


def as_an_outsider(expected):
    """What a token bound elsewhere gets: what a signed-in outsider gets from private acme (its binding leaves acme's
    owner no more than anyone outside acme), where a refusal may also be 404 (the binding hides acme's business)."""
    return frozenset({403, 404}) if expected == 403 else expected


@pytest.mark.parametrize("route", [r for r in API_ROUTES if names_acme(r)], ids=lambda route: route.id)
def test_a_token_bound_to_another_organization_finds_nothing_of_acme_but_what_is_public(scene, route):
    url, body, _item = prepare(route, scene, ACTOR)
    client = api_client_as(scene, ACTOR, organization=personal_organization(scene))
    response = send_api(route, url, body, client)
    if route.name == "api:job-list":  # acme is named in the body: a 4xx on that field, as for any unknown org
        assert_status(400, route, ACTOR, url, response)
        assert "organization" in response.json(), response.content
    else:
        # 404 for everything of private acme; a public object of acme (a public model) reads as for an outsider
        assert_api_answer(as_an_outsider(route.access.private["outsider"]), route, ACTOR, url, response)


@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.lists and not names_acme(r)], ids=lambda route: route.id)
def test_a_token_bound_to_another_organization_does_not_list_acme_or_its_objects(scene, route):
    url, body, item = prepare(route, scene, ACTOR)
    client = api_client_as(scene, ACTOR, organization=personal_organization(scene))
    response = send_api(route, url, body, client)
    assert_api_answer(OK, route, ACTOR, url, response)
    if route.name != "api:user-token-list":  # the owner's own tokens are not acme's objects
        # listed only when an outsider would find it (a public model), as for the token's user outside acme
        assert (f'"{item}"' in response.content.decode()) == route.listed.private["outsider"], response.content


@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.under_org and not r.writes], ids=lambda route: route.id)
def test_a_token_bound_to_another_organization_reads_a_public_acme_as_anyone_may(scene, route):
    scene.make_public()
    url, body, _item = prepare(route, scene, ACTOR)
    client = api_client_as(scene, ACTOR, organization=personal_organization(scene))
    response = send_api(route, url, body, client)
    # What anyone signed in without a role in acme gets (the outsider's column of the public org); where that is
    # a refusal, the token may also be told that nothing is there (404): its binding hides acme's own business.
    assert_api_answer(as_an_outsider(route.access.public["outsider"]), route, ACTOR, url, response)


@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.under_org], ids=lambda route: route.id)
def test_a_token_bound_to_acme_acts_in_acme_as_an_unbound_one(scene, route):
    url, body, _item = prepare(route, scene, ACTOR)
    client = api_client_as(scene, ACTOR, organization=scene.org)
    response = send_api(route, url, body, client)
    assert_api_answer(route.access.private[ACTOR], route, ACTOR, url, response)
