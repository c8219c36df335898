"""Usage events: recorded per use, and "has this user used it before" for the yank rule."""

from __future__ import annotations

import pytest

from apps.analytics.models import UsageEvent
from apps.analytics.services import has_used, record_usage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_recorded_use_is_found_for_its_actor_only(world):
    user, other = UserFactory(), UserFactory()
    record_usage(kind="download", organization=world.org, subject=world.org, actor=user, bytes_sent=10)
    assert has_used(actor=user, subject=world.org)
    assert not has_used(actor=other, subject=world.org)


def test_anonymous_use_is_recorded_without_an_actor_and_never_counts_as_pinned(world):
    from django.contrib.auth.models import AnonymousUser

    event = record_usage(kind="download", organization=world.org.pk, subject=world.org, actor=AnonymousUser())
    assert event.actor is None
    assert event.subject_id == str(world.org.uuid)
    assert not has_used(actor=AnonymousUser(), subject=world.org)


def test_a_not_modified_answer_does_not_count_as_a_download(world):
    user = UserFactory()
    record_usage(kind="download", organization=world.org, subject=world.org, actor=user, status_code=304)
    assert not has_used(actor=user, subject=world.org)


def test_usage_events_are_for_the_organizations_admins(world):
    record_usage(kind="download", organization=world.org, subject=world.org)
    assert UsageEvent.objects.restrict(world.user("admin"), "view").count() == 1
    assert UsageEvent.objects.restrict(world.user("member"), "view").count() == 0
    assert UsageEvent.objects.restrict(world.user("outsider"), "view").count() == 0
