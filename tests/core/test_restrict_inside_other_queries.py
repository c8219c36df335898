"""restrict()'s condition is SQL written once per model and action, with the user's values bound and the outer
row's columns as ORM expressions: it must give the same rows wherever Django puts the query (as a subquery with
renamed aliases, OR-ed with another restricted queryset, across a join to the owner) and it must not depend on
who asked first."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from apps.core.access import Visibility
from apps.core.querysets import access_sql
from apps.marketplace.models import Model, ModelVersion, VersionStatus
from apps.organizations.models import Organization
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(world):
    private = Model.objects.create(organization=world.org, name="private-one")
    public = Model.objects.create(organization=world.org, name="public-one", visibility=Visibility.PUBLIC)
    granted = Model.objects.create(organization=world.org, name="granted-one")
    assign_perm("run_model", world.user("outsider"), granted)
    for model in (private, public, granted):
        ModelVersion.objects.create(model=model, label="1.0", status=VersionStatus.PUBLISHED)
        ModelVersion.objects.create(model=model, label="2.0-dev")  # a draft: for those who may change the model
    return {"private": private, "public": public, "granted": granted}


def names(queryset) -> set[str]:
    return set(queryset.values_list("name", flat=True))


def test_as_a_subquery_it_selects_what_it_selects_alone(world, catalog):
    for persona in ("member", "viewer", "outsider"):
        user = world.user(persona)
        alone = names(Model.objects.restrict(user, "run"))

        inside = Model.objects.filter(pk__in=Model.objects.restrict(user, "run").values("pk"))

        assert names(inside) == alone, persona


def test_two_restricted_querysets_nested_keep_their_own_rows(world, catalog):
    outsider = world.user("outsider")

    runnable_versions = ModelVersion.objects.restrict(outsider, "view").filter(
        model__in=Model.objects.restrict(outsider, "run")
    )

    assert {version.model.name for version in runnable_versions} == {"public-one", "granted-one"}


def test_or_of_two_users_restrictions_is_the_union_of_their_rows(world, catalog):
    stranger = UserFactory()
    outsider = world.user("outsider")

    either = Model.objects.restrict(stranger, "run") | Model.objects.restrict(outsider, "run")

    assert names(either) == names(Model.objects.restrict(stranger, "run")) | names(
        Model.objects.restrict(outsider, "run")
    )
    assert names(either) == {"public-one", "granted-one"}


def test_a_version_follows_its_model_through_the_join_to_visibility_organization_and_grants(world, catalog):
    outsider, member = world.user("outsider"), world.user("member")

    assert {v.model.name for v in ModelVersion.objects.restrict(outsider, "view")} == {"public-one", "granted-one"}
    assert {v.model.name for v in ModelVersion.objects.restrict(outsider, "run")} == {"public-one", "granted-one"}
    assert {v.label for v in ModelVersion.objects.restrict(outsider, "view")} == {"1.0"}  # no drafts
    assert {v.model.name for v in ModelVersion.objects.restrict(outsider, "change")} == set()
    assert {v.label for v in ModelVersion.objects.restrict(member, "view")} == {"1.0", "2.0-dev"}
    assert {v.model.name for v in ModelVersion.objects.restrict(member, "change")} == {
        "private-one",
        "public-one",
        "granted-one",
    }


def test_the_condition_is_written_once_and_bound_to_each_user(world, catalog):
    access_sql.cache_clear()
    first, second = world.user("outsider"), world.user("member")

    seen_first = names(Model.objects.restrict(first, "run"))
    seen_second = names(Model.objects.restrict(second, "run"))
    seen_first_again = names(Model.objects.restrict(first, "run"))

    assert access_sql.cache_info().misses == 1
    assert seen_first == seen_first_again == {"public-one", "granted-one"}
    assert seen_second == {"private-one", "public-one", "granted-one"}


def test_an_action_no_rule_allows_selects_nothing(world):
    # Memberships take no grants and have no role for "run": nothing can allow it, not even for the owner.
    from apps.organizations.models import Membership

    assert not Membership.objects.restrict(world.user("owner"), "run").exists()
    assert Organization.objects.restrict(world.user("owner"), "view").filter(slug="acme").exists()
