"""restrict() reads grants to a whole organization: each member of the grantee organization gets what the grant
gives as their role there allows (a viewer views, a member runs and changes), nothing more, and a revoked grant
stops at once. The model is acme's private ``iris``; globex, the grantee, has a member per role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from apps.core.access import Role
from apps.marketplace import services as catalog
from apps.marketplace.models import Model, ModelVersion
from apps.organizations.grants import grant_access, revoke_access
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(world):
    return catalog.create_model(organization=world.org, actor=world.user("member"), name="iris")


@pytest.fixture
def globex(db):
    org = OrganizationFactory(slug="globex", name="Globex")
    people = {}
    for name, role in (("owner", Role.OWNER), ("admin", Role.ADMIN), ("member", Role.MEMBER), ("viewer", Role.VIEWER)):
        user = UserFactory(handle=f"globex-{name}", email=f"{name}@globex.example")
        MembershipFactory(organization=org, user=user, role=role)
        people[name] = user
    org.people = people
    return org


def allowed(user, action, model):
    return Model.objects.restrict(user, action).filter(pk=model.pk).exists()


def share(world, iris, globex, permission):
    return grant_access(
        obj=iris, actor=world.user("admin"), grantee_type="organization", grantee="globex", permission=permission
    )


def test_without_a_grant_no_one_of_globex_sees_the_private_model(world, iris, globex):
    for person in globex.people.values():
        assert not allowed(person, "view", iris)


def test_a_view_grant_lets_every_member_of_globex_see_it_and_nothing_more(world, iris, globex):
    share(world, iris, globex, "view")
    for person in globex.people.values():
        assert allowed(person, "view", iris)
        assert not allowed(person, "run", iris)
        assert not allowed(person, "change", iris)
        assert not allowed(person, "delete", iris)
        assert not allowed(person, "share", iris)


def test_a_run_grant_lets_globex_members_run_and_its_viewers_only_see(world, iris, globex):
    share(world, iris, globex, "run")
    for role in ("owner", "admin", "member"):
        assert allowed(globex.people[role], "run", iris), role
        assert allowed(globex.people[role], "view", iris), role
        assert not allowed(globex.people[role], "change", iris), role
    assert allowed(globex.people["viewer"], "view", iris)
    assert not allowed(globex.people["viewer"], "run", iris)


def test_a_change_grant_lets_globex_members_change_but_never_delete_or_share(world, iris, globex):
    share(world, iris, globex, "change")
    member = globex.people["member"]
    assert allowed(member, "change", iris)
    assert not allowed(member, "run", iris)
    assert not allowed(member, "delete", iris)
    assert not allowed(globex.people["owner"], "share", iris)
    assert not allowed(globex.people["viewer"], "change", iris)


def test_the_grant_reaches_no_one_outside_globex(world, iris, globex):
    share(world, iris, globex, "run")
    assert not allowed(world.user("outsider"), "view", iris)
    assert not allowed(AnonymousUser(), "view", iris)


def test_revoking_the_grant_removes_access_at_once(world, iris, globex):
    share(world, iris, globex, "run")
    member = globex.people["member"]
    assert allowed(member, "run", iris)
    revoke_access(obj=iris, actor=world.user("admin"), grantee_type="organization", grantee="globex", permission="run")
    assert not allowed(member, "run", iris)
    assert not allowed(member, "view", iris)


def test_leaving_globex_ends_what_its_grant_gave(world, iris, globex):
    share(world, iris, globex, "view")
    member = globex.people["member"]
    globex.memberships.filter(user=member).delete()
    assert not allowed(member, "view", iris)


def test_the_grant_on_the_model_reaches_its_published_versions_and_its_drafts_only_with_change(world, iris, globex):
    member = world.user("member")
    draft = catalog.create_version(model=iris, actor=member, label="1.0.0")
    published = ModelVersion.objects.get(pk=draft.pk)
    ModelVersion.objects.filter(pk=draft.pk).update(status="published")
    share(world, iris, globex, "run")
    them = globex.people["member"]
    assert ModelVersion.objects.restrict(them, "run").filter(pk=published.pk).exists()
    second = catalog.create_version(model=iris, actor=member, label="2.0.0")
    assert not ModelVersion.objects.restrict(them, "view").filter(pk=second.pk).exists()
    share(world, iris, globex, "change")
    assert ModelVersion.objects.restrict(them, "view").filter(pk=second.pk).exists()


def test_a_request_that_excludes_globex_gets_nothing_from_its_grant(world, iris, globex):
    share(world, iris, globex, "view")
    member = globex.people["member"]
    member.access_excluded_organizations = {globex.pk}
    assert not allowed(member, "view", iris)
    member.access_excluded_organizations = {world.org.pk + 10_000}
    assert allowed(member, "view", iris)


def test_a_token_bound_to_globex_does_not_reach_acmes_model(world, iris, globex):
    share(world, iris, globex, "view")
    member = globex.people["member"]
    assert not Model.objects.restrict(member, "view", within_organization=globex.pk).filter(pk=iris.pk).exists()


def test_restrict_with_organization_grants_stays_one_query(world, iris, globex, django_assert_num_queries):
    share(world, iris, globex, "run")
    member = globex.people["member"]
    with django_assert_num_queries(1):
        assert [m.pk for m in Model.objects.restrict(member, "run")] == [iris.pk]
