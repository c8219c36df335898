"""Claiming and recording are conditional updates: one claim per delivery, one outcome per job."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.core.job_services import (
    JobClaimLost,
    ProgressReporter,
    cancel_job,
    claim_job,
    claim_jobs,
    fail_job,
    finish_job,
    start_job,
)
from apps.core.jobs import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(world):
    return start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 1})


@pytest.fixture(params=["update returning", "orm update"])
def claim_path(request, monkeypatch):
    """Claims take one UPDATE ... RETURNING on PostgreSQL and the ORM's update() elsewhere (SQLite in make run):
    both are held to the same promises."""
    if request.param == "orm update":
        from django.db import connection

        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


@pytest.mark.usefixtures("claim_path")
def test_a_job_claimed_twice_is_handed_out_once(queued_job):
    first = claim_job(queued_job.pk)
    second = claim_job(queued_job.pk)

    assert first is not None and first.status == JobStatus.RUNNING and first.attempts == 1
    assert second is None
    assert Job.objects.get(pk=queued_job.pk).attempts == 1


@pytest.mark.usefixtures("claim_path")
def test_a_claimed_job_comes_back_as_stored_with_its_previous_attempt_cleared(world, queued_job):
    Job.objects.filter(pk=queued_job.pk).update(
        attempts=1, progress=0.5, progress_message="half way", error="the worker died", traceback="Traceback ..."
    )

    job = claim_job(queued_job.pk)

    stored = Job.objects.get(pk=queued_job.pk)
    assert job.pk == stored.pk and job.uuid == stored.uuid
    assert (job.status, job.attempts, job.progress, job.progress_message) == (JobStatus.RUNNING, 2, 0.0, "")
    assert (job.error, job.traceback, job.finished_at) == ("", "", None)
    assert job.started_at == stored.started_at == stored.heartbeat_at is not None
    assert job.params == {"steps": 1}  # JSON decoded, as the ORM gives it
    assert job.organization == world.org and job.creator == world.user("admin")


@pytest.mark.usefixtures("claim_path")
def test_claiming_many_hands_out_only_the_queued_ones_once(world, queued_job):
    other = start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 2})
    finished = start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"))
    Job.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCEEDED)

    claimed = claim_jobs([queued_job.pk, other.pk, finished.pk])
    again = claim_jobs([queued_job.pk, other.pk])

    assert sorted(job.pk for job in claimed) == sorted([queued_job.pk, other.pk])
    assert {job.pk: job.params for job in claimed} == {queued_job.pk: {"steps": 1}, other.pk: {"steps": 2}}
    assert all(job.status == JobStatus.RUNNING and job.attempts == 1 for job in claimed)
    assert again == []
    assert Job.objects.get(pk=finished.pk).status == JobStatus.SUCCEEDED


def test_starting_a_job_writes_the_row_and_an_audit_event_and_sends_on_commit(
    world, django_capture_on_commit_callbacks
):
    from apps.audit.models import AuditEvent

    with django_capture_on_commit_callbacks() as callbacks:
        job = start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"))

    assert len(callbacks) == 1
    assert (job.status, job.attempts, job.queue) == (JobStatus.QUEUED, 0, "default")
    event = AuditEvent.objects.get(action="job.created", target_id=str(job.uuid))
    assert event.organization_id == world.org.pk and event.metadata["kind"] == "test.sleep"


def test_an_attempt_that_lost_its_job_records_nothing(queued_job, media_root):
    stale_attempt = claim_job(queued_job.pk)
    # The reaper re-queued it and another worker claimed it again.
    Job.objects.filter(pk=queued_job.pk).update(status=JobStatus.QUEUED)
    current_attempt = claim_job(queued_job.pk)
    assert current_attempt.attempts == 2

    stale_attempt.result_file.save("late.txt", ContentFile(b"late"), save=False)
    assert finish_job(stale_attempt, {"from": "the stale attempt"}) is None
    assert not default_storage.exists(stale_attempt.result_file.name)  # its orphan file is removed
    assert fail_job(stale_attempt, error="late failure") is False
    with pytest.raises(JobClaimLost):
        ProgressReporter(stale_attempt, interval=0)(0.5, "still here?")

    assert finish_job(current_attempt, {"from": "the current attempt"}) == JobStatus.SUCCEEDED
    done = Job.objects.get(pk=queued_job.pk)
    assert (done.status, done.result, done.attempts) == (JobStatus.SUCCEEDED, {"from": "the current attempt"}, 2)
    assert finish_job(current_attempt, {"again": True}) is None
    assert Job.objects.get(pk=queued_job.pk).result == {"from": "the current attempt"}


def test_progress_is_clamped_and_throttled(queued_job):
    job = claim_job(queued_job.pk)
    progress = ProgressReporter(job, interval=3600)

    progress(1.7, "past the end")  # clamped to 1.0, which always goes through
    assert Job.objects.get(pk=job.pk).progress == 1.0
    progress(0.25, "too soon to write")
    stored = Job.objects.get(pk=job.pk)
    assert (stored.progress, stored.progress_message) == (1.0, "past the end")


def test_a_result_that_is_not_json_fails_the_job_with_a_clear_error(queued_job):
    job = claim_job(queued_job.pk)

    assert finish_job(job, {"value": object()}) == JobStatus.FAILED

    failed = Job.objects.get(pk=job.pk)
    assert failed.status == JobStatus.FAILED
    assert failed.error.startswith("The job's result is not JSON")


def test_a_cancelled_job_is_not_claimed_and_a_running_one_stops_reporting(world, queued_job):
    assert cancel_job(job=queued_job, actor=world.user("admin")) is True
    assert claim_job(queued_job.pk) is None
    assert cancel_job(job=queued_job, actor=world.user("admin")) is False  # already finished

    other = start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"))
    running = claim_job(other.pk)
    cancel_job(job=other, actor=world.user("admin"))
    with pytest.raises(JobClaimLost):
        ProgressReporter(running, interval=0)(0.5)
    assert finish_job(running, {}) is None
    assert Job.objects.get(pk=other.pk).status == JobStatus.CANCELLED


def test_an_unknown_kind_is_refused_naming_the_kind(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        start_job(kind="no.such.kind", organization=world.org, creator=world.user("admin"))
    assert "kind" in caught.value.message_dict
    assert not Job.objects.exists()


def test_deleting_a_job_deletes_its_file(queued_job, media_root, django_capture_on_commit_callbacks):
    queued_job.result_file.save("export.csv", ContentFile(b"a,b\n"), save=True)
    name = queued_job.result_file.name
    assert default_storage.exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.filter(pk=queued_job.pk).delete()

    assert not default_storage.exists(name)
