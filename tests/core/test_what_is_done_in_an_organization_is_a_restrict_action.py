"""Creating objects in an organization, reading its audit trail and starting its administrative jobs are restrict()
actions on the organization (apps/core/lookup.py), whose answers follow DESIGN.md's role table: members and above
create, admins and above read the audit trail; nobody else, and a token bound to another organization never."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from apps.core.lookup import ADMINISTER, AUDIT, CREATE_IN, Refused, may_in_organization, require_organization_action
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

# From the role table (DESIGN.md), not from the code.
MAY = {
    CREATE_IN: {"owner", "admin", "member"},
    AUDIT: {"owner", "admin"},
    ADMINISTER: {"owner", "admin"},
}


@pytest.mark.parametrize("action", sorted(MAY))
@pytest.mark.parametrize("persona", ["owner", "admin", "member", "viewer", "outsider"])
def test_each_persona_may_act_in_the_organization_as_the_role_table_says(world, persona, action):
    assert may_in_organization(world.user(persona), world.org, action) is (persona in MAY[action])


def test_the_refusal_names_the_least_role_that_may(world):
    with pytest.raises(PermissionDenied, match="Only an organization admin or above may read the trail in “acme”"):
        require_organization_action(world.user("member"), world.org, AUDIT, doing="read the trail")


def test_a_token_bound_to_another_organization_is_refused_with_its_code(world):
    elsewhere = OrganizationFactory(slug="elsewhere")
    with pytest.raises(Refused) as refused:
        require_organization_action(world.user("owner"), world.org, CREATE_IN, within_organization=elsewhere.pk)
    assert refused.value.code == "token_binding"


def test_a_token_bound_to_the_organization_acts_there(world):
    require_organization_action(world.user("member"), world.org, CREATE_IN, within_organization=world.org.pk)


def test_an_anonymous_caller_may_do_nothing_in_it(world):
    from django.contrib.auth.models import AnonymousUser

    assert not any(may_in_organization(AnonymousUser(), world.org, action) for action in MAY)
