"""Operators see jobs in the Django admin (read-only), filter them, cancel them and reap stale ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.jobs import Job, JobStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:core_job_changelist")


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def jobs(world):
    make = lambda **kw: Job.objects.create(kind="test.sleep", organization=world.org, **kw)  # noqa: E731
    stale = timezone.now() - timedelta(hours=2)
    return {
        "queued": make(creator=world.user("admin")),
        "failed": make(status=JobStatus.FAILED, error="RuntimeError: disk full"),
        "stale": make(status=JobStatus.RUNNING, attempts=1, time_limit=60, heartbeat_at=stale, started_at=stale),
    }


def test_the_changelist_lists_and_filters_jobs(operator_client, jobs):
    everything = operator_client.get(CHANGELIST)
    assert everything.status_code == 200
    for job in jobs.values():
        assert str(job.uuid) in everything.content.decode()

    failed = operator_client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert str(jobs["failed"].uuid) in failed and str(jobs["queued"].uuid) not in failed

    found = operator_client.get(CHANGELIST, {"q": "disk full"}).content.decode()
    assert str(jobs["failed"].uuid) in found and str(jobs["stale"].uuid) not in found


def test_a_job_page_is_read_only(operator_client, jobs):
    url = reverse("admin:core_job_change", args=[jobs["failed"].pk])
    page = operator_client.get(url)
    assert page.status_code == 200
    assert "RuntimeError: disk full" in page.content.decode()
    assert operator_client.post(url, {"status": "succeeded"}).status_code == 403
    assert Job.objects.get(pk=jobs["failed"].pk).status == JobStatus.FAILED
    assert operator_client.get(reverse("admin:core_job_add")).status_code == 403


def test_the_cancel_action_cancels_only_unfinished_jobs_and_is_audited(operator_client, jobs):
    selected = [jobs["queued"].pk, jobs["failed"].pk]
    response = operator_client.post(
        CHANGELIST, {"action": "cancel_selected", "_selected_action": selected}, follow=True
    )
    assert response.status_code == 200
    assert Job.objects.get(pk=jobs["queued"].pk).status == JobStatus.CANCELLED
    assert Job.objects.get(pk=jobs["failed"].pk).status == JobStatus.FAILED
    assert AuditEvent.objects.filter(action="job.cancelled", target_id=str(jobs["queued"].uuid)).count() == 1


def test_the_reap_action_requeues_stale_running_jobs(operator_client, jobs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        operator_client.post(CHANGELIST, {"action": "reap_stale", "_selected_action": [jobs["stale"].pk]})
    assert Job.objects.get(pk=jobs["stale"].pk).status == JobStatus.QUEUED
