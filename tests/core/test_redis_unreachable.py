"""Redis unreachable (the cache, the broker and the result channel point at a closed port): reads keep working, a
write that needs the queue answers 503 with Retry-After and its job starts once Redis is back, sign-in fails safe
(503 until the cache answers again; sessions go on), and nothing answers 500."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.job_services import reap_stale_jobs, start_job
from apps.core.jobs import Job, JobStatus
from tests.conftest import api_client_for
from tests.factories import PASSWORD
from tests.jobs_support import a_closed_port, job_in, purge_broker, redis_at, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    with redis_at(f"redis://127.0.0.1:{a_closed_port()}/0", settings):
        yield


@pytest.fixture
def job(world) -> Job:
    return start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), queue="sync")


def test_api_reads_with_a_token_keep_working(world, job, redis_down):
    client = api_client_for(world.user("admin"))
    for url in (
        reverse("api:job-list"),
        reverse("api:job-detail", kwargs={"uuid": job.uuid}),
        reverse("api:org-detail", kwargs={"org_slug": "acme"}),
        reverse("api:org-member-list", kwargs={"org_slug": "acme"}),
        "/api/v1/models/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])


def test_api_reads_with_a_session_and_anonymous_keep_working(world, job, redis_down):
    session = Client()
    session.force_login(world.user("admin"))
    assert session.get(reverse("api:job-detail", kwargs={"uuid": job.uuid})).status_code == 200
    assert Client().get("/api/v1/models/").status_code == 200


def test_pages_keep_working(world, job, redis_down):
    client = Client()
    client.force_login(world.user("admin"))
    for url in (reverse("home"), reverse("org-overview", args=["acme"]), reverse("job-detail", args=[job.uuid])):
        assert client.get(url).status_code == 200, url


def test_a_wrong_token_is_still_refused_401(world, redis_down):
    client = Client(HTTP_AUTHORIZATION="Bearer gpux_nothere_secret")
    response = client.get(reverse("api:job-list"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_sign_in_answers_503_with_retry_after_and_signs_nobody_in(world, redis_down):
    client = Client()
    response = client.post(reverse("account_login"), {"login": world.user("member").email, "password": PASSWORD})

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Sign-in is paused" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_signed_in_session_goes_on_while_sign_in_is_paused(world, redis_down):
    client = Client()
    client.force_login(world.user("member"))
    assert client.get(reverse("account-profile")).status_code == 200


def test_sign_in_works_again_once_the_cache_answers(world, settings):
    with redis_at(f"redis://127.0.0.1:{a_closed_port()}/0", settings):
        assert Client().post(reverse("account_login"), {"login": "x@y.z", "password": "x"}).status_code == 503
    client = Client()
    response = client.post(reverse("account_login"), {"login": world.user("member").email, "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_starting_a_job_answers_503_with_retry_after_and_the_job_starts_when_redis_is_back(
    world, settings, worker_processes
):
    body = {"kind": "audit.export", "organization": "acme", "params": {"format": "csv"}}
    with redis_at(f"redis://127.0.0.1:{a_closed_port()}/0", settings):
        response = api_client_for(world.user("admin")).post(reverse("api:job-list"), body, format="json")

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "30"
    answer = response.json()
    assert answer["code"] == "queue_unavailable"
    assert answer["job_url"] == reverse("api:job-detail", kwargs={"uuid": answer["job"]})
    assert "follow it at" in answer["detail"]
    job = Job.objects.get(uuid=answer["job"])
    assert job.status == JobStatus.QUEUED
    assert job.progress_message.startswith("Waiting for the job queue")

    # Redis is back: the reaper's next pass sends the job, a worker runs it.
    purge_broker()
    worker_processes(queues=("default",)).wait_ready()
    assert [resent.pk for resent in reap_stale_jobs().resent] == [job.pk]
    done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the export")
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 1
