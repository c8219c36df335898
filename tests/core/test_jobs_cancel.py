"""Cancelling a job: its creator and the organization's admins, through the API and the job page; a queued job never
starts, a running one stops at its next progress report on a real worker; the cancel is audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import TokenScope
from apps.audit.models import AuditEvent
from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = pytest.mark.django_db


def cancel_url(job: Job) -> str:
    return reverse("api:job-cancel", kwargs={"uuid": job.uuid})


def queued(world, persona: str = "member", **kwargs) -> Job:
    """A job of acme started by ``persona``; no worker serves the ``sync`` queue in these tests."""
    return start_job(
        kind="test.sleep", organization=world.org, creator=world.user(persona), queue="sync", params={}, **kwargs
    )


def test_the_creator_cancels_their_queued_job(api_client, world):
    job = queued(world, "member")

    response = api_client(world.user("member")).post(cancel_url(job))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    event = AuditEvent.objects.get(action="job.cancelled")
    assert event.actor_id == world.user("member").pk
    assert event.metadata == {"kind": "test.sleep", "status_before": "queued"}


@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_the_organizations_admins_cancel_a_members_job(api_client, world, persona):
    job = queued(world, "member")

    response = api_client(world.user(persona)).post(cancel_url(job))

    assert response.status_code == 200, response.content
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_others_get_404_and_the_job_stays_queued(api_client, world, persona):
    job = queued(world, "member")

    response = api_client(world.user(persona)).post(cancel_url(job))

    assert response.status_code == 404
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED
    assert not AuditEvent.objects.filter(action="job.cancelled").exists()


def test_a_finished_job_answers_409_job_finished(api_client, world):
    job = queued(world, "admin")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)

    response = api_client(world.user("admin")).post(cancel_url(job))

    assert response.status_code == 409
    assert response.json()["code"] == "job_finished"
    assert "already succeeded" in response.json()["detail"]
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_a_read_token_may_not_cancel(api_client, world):
    job = queued(world, "admin")

    response = api_client(world.user("admin"), scope=TokenScope.READ).post(cancel_url(job))

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_the_job_page_shows_the_cancel_button_to_those_who_may_cancel(client, world):
    job = queued(world, "member")
    page = reverse("job-detail", kwargs={"uuid": job.uuid})
    client.force_login(world.user("member"))
    assert "Cancel job" in client.get(page).content.decode()

    client.force_login(world.user("owner"))
    assert "Cancel job" in client.get(page).content.decode()

    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert "Cancel job" not in client.get(page).content.decode()


def test_the_cancel_button_answers_htmx_with_the_cancelled_progress(client, world):
    job = queued(world, "member")
    client.force_login(world.user("member"))

    response = client.post(reverse("job-cancel", kwargs={"uuid": job.uuid}), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-status="cancelled"' in body
    assert "Cancel job" not in body
    assert "hx-trigger" not in body  # finished: htmx stops polling
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_the_cancel_form_without_htmx_goes_back_to_the_job_page(client, world):
    job = queued(world, "member")
    client.force_login(world.user("admin"))

    response = client.post(reverse("job-cancel", kwargs={"uuid": job.uuid}), follow=True)

    assert response.redirect_chain[-1][0] == reverse("job-detail", kwargs={"uuid": job.uuid})
    assert "The job was cancelled." in response.content.decode()


# --- on a real worker -------------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_queued_job_is_never_run_by_the_worker_that_gets_its_message(api_client, world, worker_processes):
    job = queued(world, "member", time_limit=30)
    assert api_client(world.user("member")).post(cancel_url(job)).status_code == 200

    # The message is still in the queue: the worker takes it, finds nothing to claim and skips it.
    worker = worker_processes().wait_ready()
    wait_for(lambda: "'skipped'" in worker.log(), timeout=30, what="the worker to skip the cancelled job")

    job.refresh_from_db()
    assert (job.status, job.attempts, job.started_at, job.result) == (JobStatus.CANCELLED, 0, None, None)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_job_stops_at_its_next_progress_report_when_cancelled(api_client, world, worker_processes):
    worker = worker_processes().wait_ready()
    job = start_job(
        kind="test.sleep",
        organization=world.org,
        creator=world.user("member"),
        queue="sync",
        params={"steps": 400, "pause": 0.05},  # 20 s if nobody stops it
    )
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress__gt=0).exists(),
        what="the job to report progress",
    )

    response = api_client(world.user("admin")).post(cancel_url(job))

    assert response.status_code == 200, response.content
    wait_for(lambda: "lost its claim" in worker.log(), timeout=15, what="the worker to stop the job")
    stopped = Job.objects.get(pk=job.pk)
    assert stopped.status == JobStatus.CANCELLED
    assert 0 < stopped.progress < 1
    assert stopped.result is None
    # The worker is free again: the next job runs to its end.
    nxt = start_job(
        kind="test.sleep", organization=world.org, creator=world.user("admin"), queue="sync", params={"steps": 2}
    )
    done = wait_for(job_in(nxt, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=30, what="the next job")
    assert done.status == JobStatus.SUCCEEDED
    assert Job.objects.get(pk=job.pk).progress == stopped.progress  # the cancelled one moved no further
