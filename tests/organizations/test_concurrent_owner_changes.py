"""Two owners acting at the same moment never leave an organization without an owner: the services lock the
organization's row, so the second change sees the first one's result."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(*calls) -> list[str]:
    """Start every call in its own thread (and database connection) at the same moment; their outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call):
        try:
            barrier.wait()
            call()
            outcomes.append("done")
        except ValidationError as exc:
            outcomes.append(next(iter(exc.error_dict.values()))[0].code)
        except PermissionDenied:
            outcomes.append("permission_denied")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


@pytest.fixture
def two_owners():
    first, second = UserFactory(handle="first-owner"), UserFactory(handle="second-owner")
    organization = services.create_organization(creator=first, slug="duo", name="Duo")
    MembershipFactory(organization=organization, user=second, role=Role.OWNER)
    return organization, first, second


def owners(organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def test_two_owners_leaving_at_once_leave_one_owner(two_owners):
    organization, first, second = two_owners
    outcomes = run_at_once(
        lambda: services.leave_organization(user=first, organization=organization),
        lambda: services.leave_organization(user=second, organization=organization),
    )
    assert outcomes == ["done", "last_owner"]
    assert owners(organization) == 1


def test_two_owners_demoting_each_other_at_once_leave_one_owner(two_owners):
    organization, first, second = two_owners
    first_membership = Membership.objects.get(organization=organization, user=first)
    second_membership = Membership.objects.get(organization=organization, user=second)
    outcomes = run_at_once(
        lambda: services.change_member_role(actor=first, membership=second_membership, role=Role.ADMIN),
        lambda: services.change_member_role(actor=second, membership=first_membership, role=Role.ADMIN),
    )
    # One demotion wins; the other owner is then an admin and may no longer touch the remaining owner.
    assert outcomes == ["done", "permission_denied"]
    assert owners(organization) == 1
