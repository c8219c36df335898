"""Durable jobs are recorded once each when their outcome is committed: who, which organization, how long, how it
ended; work on an inference queue counts its run time as compute seconds on that queue's device. Pulls through a
registry and the drain and rollup tasks are covered too (the tasks through Celery's own call path)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.analytics import quotas, tasks, usage
from apps.analytics.models import UsageEvent, UsageRollup
from apps.core.job_services import claim_job, fail_job, finish_job
from apps.core.jobs import Job, JobStatus
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db


def _running_job(world, *, queue="default", kind="audit.export"):
    job = Job.objects.create(kind=kind, organization=world.org, creator=world.user("admin"), queue=queue)
    claimed = claim_job(job.pk)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=2))
    claimed.started_at = timezone.now() - timedelta(seconds=2)
    return claimed


def test_a_finished_job_is_recorded_once_with_its_duration(world, django_capture_on_commit_callbacks):
    job = _running_job(world)
    with django_capture_on_commit_callbacks(execute=True):
        assert finish_job(job, {"ok": True}) == JobStatus.SUCCEEDED
    drain_now()
    event = UsageEvent.objects.get()
    assert (event.kind, event.organization, event.actor, event.outcome) == ("job", world.org, world.user("admin"), "ok")
    assert event.latency_ms >= 2000
    assert event.metadata == {"job_kind": "audit.export"}
    assert event.compute_seconds == 0.0  # not inference work


def test_a_failed_inference_job_counts_its_compute_on_the_queues_device(world, django_capture_on_commit_callbacks):
    job = _running_job(world, queue="inference.gpu")
    with django_capture_on_commit_callbacks(execute=True):
        assert fail_job(job, error="boom")
    assert quotas.compute_used(world.org.pk)["gpu"] >= 2.0
    drain_now()
    event = UsageEvent.objects.get()
    assert (event.outcome, event.device) == ("error", "gpu")
    assert event.compute_seconds >= 2.0


def test_a_job_that_ran_twice_is_counted_once(world, django_capture_on_commit_callbacks):
    job = _running_job(world)
    with django_capture_on_commit_callbacks(execute=True):
        finish_job(job, {})
    from apps.analytics.job_usage import record_job_usage

    record_job_usage(job, JobStatus.SUCCEEDED, timezone.now())  # the same attempt reported again
    drain_now()
    assert UsageEvent.objects.count() == 1


def test_the_periodic_tasks_drain_and_roll_up(world, django_capture_on_commit_callbacks):
    job = _running_job(world)
    with django_capture_on_commit_callbacks(execute=True):
        finish_job(job, {})
    usage.flush()  # a worker does it after each task (task_postrun)
    assert tasks.drain_usage_events.apply().get()["inserted"] == 1
    settings_refresh = tasks.roll_up_usage.apply().get()
    assert settings_refresh["hours"] == 1
    assert UsageRollup.objects.get(granularity="hour", scope="org").events == 1
    assert tasks.prune_usage_events.apply().get() == 0
