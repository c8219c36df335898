"""Durable predictions on a batching deployment (``?async=1``) while a serving loop is up: the job's row is written
first as always, then its id goes to the loop through the queue's Redis list instead of a broker message; the loop
claims the jobs it takes in bulk and runs them merged. A message lost there (the loop died holding it) is sent again
by the reaper from the job's row, and the job runs once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs
from apps.core.jobs import Job, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.inference.online import gateway, messages
from apps.inference.tasks import PredictBatched
from tests.conftest import api_client_for
from tests.inference.online_support import forget_online_requests, queued, wait_for_serving_loop
from tests.jobs_support import wait_for

SENTENCES = [
    "I play the guitar every evening.",
    "Rain is expected tomorrow.",
    "A short one.",
    "The model runs on a GPU worker.",
    "Paris is the capital of France.",
    "The bass player tuned it.",
]


def no_broker(*args, **kwargs):
    raise AssertionError("a durable prediction went through the broker while a serving loop was up")


def deploy(world, version):
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="embed", version=version,
        max_batch_size=16, max_delay_ms=50,
    )  # fmt: skip


def post(user, url: str, text: str) -> dict:
    try:
        response = api_client_for(user).post(url, {"inputs": {"text": text}}, format="json")
        assert response.status_code in (200, 202), response.content
        return response.json()
    finally:
        connection.close()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_async_predictions_go_to_the_loop_and_run_merged(runnable, inference_worker, world, monkeypatch):
    forget_online_requests()
    wait_for_serving_loop()
    monkeypatch.setattr(PredictBatched, "apply_async", no_broker)
    deployment = deploy(world, runnable.minilm())
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    member = world.user("member")
    alone = {text: post(member, url, text) for text in SENTENCES[:2]}  # online, one at a time
    with ThreadPoolExecutor(max_workers=len(SENTENCES)) as pool:
        accepted = list(pool.map(lambda text: post(member, url + "?async=1", text), SENTENCES))
    assert all(answer["status"] == "queued" for answer in accepted), accepted
    uuids = [answer["job"] for answer in accepted]
    wait_for(lambda: Job.objects.filter(uuid__in=uuids, status=JobStatus.SUCCEEDED).count() == len(uuids),
             timeout=60, what="the durable jobs to succeed")  # fmt: skip
    client = api_client_for(member)
    for text, uuid in zip(SENTENCES, uuids, strict=True):
        answer = client.get(f"/api/v1/predictions/{uuid}/").json()
        assert answer["status"] == "succeeded" and answer["deployment"] == "acme/embed"
        if text in alone:
            got, single = answer["answer"]["embeddings"][0], alone[text]["answer"]["embeddings"][0]
            assert np.allclose(np.asarray(got), np.asarray(single), atol=1e-4), text
    rows = InferenceJob.objects.filter(job__uuid__in=uuids)
    assert max(rows.values_list("batch_size", flat=True)) > 1, "no durable job was merged with another"
    assert set(Job.objects.filter(uuid__in=uuids).values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_a_job_the_loop_lost_is_sent_again_by_the_reaper(
    runnable, world, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """No worker: a loop seems up, takes the message and dies before claiming the job (the list is emptied)."""
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    forget_online_requests()
    monkeypatch.setattr(gateway, "loop_up", lambda queue: True)
    monkeypatch.setattr(PredictBatched, "apply_async", no_broker)
    deployment = deploy(world, runnable.minilm())
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict?async=1"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(world.user("member")).post(url, {"inputs": {"text": SENTENCES[0]}}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    assert job.status == JobStatus.QUEUED and queued() == 1
    header, _ = messages.unpack(gateway._client().lpop(messages.queue_key("inference.cpu")))
    assert header == {"job": job.pk, "max": 16, "delay_ms": 50}  # an id, not the inputs: the row holds them
    assert queued() == 0  # the loop that took it is gone
    with django_capture_on_commit_callbacks(execute=True):
        report = reap_stale_jobs(now=job.resend_at + timezone.timedelta(seconds=1))
    assert job.pk in {resent.pk for resent in report.resent}
    assert queued() == 1  # sent again, from its row
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.resends == 1
    forget_online_requests()
