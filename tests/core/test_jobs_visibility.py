"""Who sees a job: its creator (while a member, or for good when it is theirs alone) and the organization's admins
and owners (restrict() with a creator_field)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from apps.core.jobs import Job
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(world):
    """One job made by the member, one by the admin, one by nobody (a system job), all in acme."""
    make = lambda creator: Job.objects.create(kind="test.sleep", organization=world.org, creator=creator)  # noqa: E731
    return {"member": make(world.user("member")), "admin": make(world.user("admin")), "system": make(None)}


def visible(user, action="view", **kwargs) -> set[int]:
    return set(Job.objects.restrict(user, action, **kwargs).values_list("pk", flat=True))


def test_owners_and_admins_see_every_job_of_their_organization(world, jobs):
    everything = {job.pk for job in jobs.values()}
    assert visible(world.user("owner")) == everything
    assert visible(world.user("admin")) == everything


def test_a_member_sees_only_the_jobs_they_started(world, jobs):
    assert visible(world.user("member")) == {jobs["member"].pk}


def test_viewers_outsiders_and_anonymous_see_no_job_of_others(world, jobs):
    assert visible(world.user("viewer")) == set()
    assert visible(world.user("outsider")) == set()
    assert visible(AnonymousUser()) == set()


def test_being_the_creator_gives_view_and_cancel_and_nothing_more(world, jobs):
    member = world.user("member")
    assert visible(member, "cancel") == {jobs["member"].pk}
    for action in ("change", "delete", "run"):
        assert visible(member, action) == set()
    assert visible(world.user("admin"), "delete") == {job.pk for job in jobs.values()}
    assert visible(world.user("admin"), "cancel") == {job.pk for job in jobs.values()}


def test_a_creator_no_longer_sees_their_job_in_an_organization_they_left(world, jobs):
    member = world.user("member")
    world.org.memberships.filter(user=member).delete()
    assert visible(member) == set()
    assert visible(member, "cancel") == set()


def test_a_creator_keeps_a_job_that_is_their_own_after_leaving(world, jobs):
    member = world.user("member")
    Job.objects.filter(pk=jobs["member"].pk).update(creator_keeps_access=True)
    world.org.memberships.filter(user=member).delete()
    assert visible(member) == {jobs["member"].pk}


def test_a_token_bound_elsewhere_sees_none_of_the_creators_jobs(world, jobs):
    member = world.user("member")
    elsewhere = OrganizationFactory()
    MembershipFactory(organization=elsewhere, user=member)
    assert visible(member, within_organization=elsewhere.pk) == set()
    assert visible(member, within_organization=world.org.pk) == {jobs["member"].pk}


def test_admins_of_another_organization_do_not_see_these_jobs(world, jobs):
    other = OrganizationFactory()
    MembershipFactory(organization=other, user=world.user("outsider"), role=40)
    assert visible(world.user("outsider")) == set()


def test_restrict_on_jobs_is_one_query(world, jobs, django_assert_num_queries):
    with django_assert_num_queries(1):
        list(Job.objects.restrict(world.user("member"), "view"))
    with django_assert_num_queries(1):
        list(Job.objects.restrict(world.user("admin"), "delete", within_organization=world.org.pk))
