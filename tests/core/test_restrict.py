"""restrict() as DESIGN.md defines it, on Organization and Team (the owned models of the foundation)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from guardian.shortcuts import assign_perm

from apps.core.access import Visibility
from apps.organizations.models import Organization, Team
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def visible_slugs(user, action="view"):
    return set(Organization.objects.restrict(user, action).values_list("slug", flat=True))


def test_members_of_every_role_see_their_private_organization(world):
    for persona in ("owner", "admin", "member", "viewer"):
        assert "acme" in visible_slugs(world.user(persona))


def test_outsider_and_anonymous_do_not_see_a_private_organization(world):
    assert "acme" not in visible_slugs(world.user("outsider"))
    assert "acme" not in visible_slugs(AnonymousUser())


def test_internal_is_visible_to_signed_in_verified_users_only(world):
    world.org.visibility = Visibility.INTERNAL
    world.org.save()
    assert "acme" in visible_slugs(world.user("outsider"))
    assert "acme" not in visible_slugs(UserFactory(verified=False))
    assert "acme" not in visible_slugs(AnonymousUser())


def test_public_is_visible_to_anonymous_but_not_changeable(world):
    world.org.visibility = Visibility.PUBLIC
    world.org.save()
    assert "acme" in visible_slugs(AnonymousUser())
    assert "acme" not in visible_slugs(world.user("outsider"), "change")


def test_user_grant_adds_view_and_change_but_nothing_else(world):
    outsider = world.user("outsider")
    assign_perm("change_organization", outsider, world.org)
    assert "acme" in visible_slugs(outsider)
    assert "acme" in visible_slugs(outsider, "change")
    assert "acme" not in visible_slugs(outsider, "delete")


def test_team_grant_reaches_the_team_members(world):
    from django.contrib.auth.models import Group

    outsider = world.user("outsider")
    group = Group.objects.create(name="other-team")
    group.user_set.add(outsider)
    assign_perm("view_organization", group, world.org)
    assert "acme" in visible_slugs(outsider)
    assert "acme" not in visible_slugs(outsider, "change")


def test_inactive_user_sees_only_what_anonymous_sees(world):
    owner = world.user("owner")
    owner.is_active = False
    owner.save()
    assert "acme" not in visible_slugs(owner)


def test_bound_token_scope_narrows_to_its_organization(world):
    owner = world.user("owner")
    personal = Organization.objects.get(slug=owner.handle)
    seen = set(
        Organization.objects.restrict(owner, "view", within_organization=world.org.pk).values_list("slug", flat=True)
    )
    assert seen == {"acme"}
    assert personal.slug not in seen


def test_restrict_is_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        list(Organization.objects.restrict(world.user("member"), "view"))
    with django_assert_num_queries(1):
        list(Team.objects.restrict(world.user("member"), "change"))


def test_bound_token_may_view_public_objects_elsewhere_but_never_change_them(world):
    owner = world.user("owner")
    world.org.visibility = Visibility.PUBLIC
    world.org.save()
    elsewhere = Organization.objects.get(slug=owner.handle).pk
    viewable = Organization.objects.restrict(owner, "view", within_organization=elsewhere)
    changeable = Organization.objects.restrict(owner, "change", within_organization=elsewhere)
    assert "acme" in set(viewable.values_list("slug", flat=True))
    assert "acme" not in set(changeable.values_list("slug", flat=True))
