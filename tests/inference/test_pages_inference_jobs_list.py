"""/inference/jobs/: the inference jobs the caller may see (restrict(): their own, and those counted against
organizations they administer), each with model@version, deployment, status, provider and timings; filtered by
status, paginated, with an empty state; and a job's own page with its answer or its error.

The jobs are written by ``start_prediction`` (the API's service) and finished the way the worker records an
outcome (``finish_job`` / ``fail_job`` with the InferenceJob's provider and timings): this is about the list, the
runs themselves are tests/inference/test_pages_try_it_on_a_real_worker.py's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.job_services import fail_job, finish_job
from apps.core.jobs import Job, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.inference.predictions import PREDICT_KIND, PredictionInput, start_prediction

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def predict(version, user, organization, *, deployment=None) -> Job:
    return start_prediction(
        version=version,
        request=PredictionInput(arrays=None, raw={"text": "x"}),
        user=user,
        organization=organization,
        deployment=deployment,
    )


def claimed(job: Job) -> Job:
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1, started_at=job.created_at)
    job.refresh_from_db()
    return job


def succeed(job: Job, *, total_ms: float = 42.0) -> Job:
    job = claimed(job)
    timings = {"queued_ms": 1.5, "run_ms": 0.25, "post_ms": 0.1, "worker_ms": 3.0}
    finish_job(job, {"provider": "CPUExecutionProvider", "timings": timings, "batch_size": 1})
    InferenceJob.objects.filter(job=job).update(provider="CPUExecutionProvider", timings=timings)
    Job.objects.filter(pk=job.pk).update(finished_at=job.created_at + timedelta(milliseconds=total_ms))
    return Job.objects.get(pk=job.pk)


def rows_of(response) -> list[str]:
    assert response.status_code == 200
    page = response.content.decode()
    if 'id="inference-job-table"' not in page:
        return []
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("<tr>")[1:]]


def test_someone_with_no_inference_jobs_sees_the_empty_state(world):
    page = client_for(world.user("viewer")).get("/inference/jobs/").content.decode()
    assert "No inference jobs yet" in page and "Try it" in page


def test_a_prediction_is_listed_with_its_model_deployment_status_provider_and_timings(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=member, slug="iris-prod", version=version
    )
    succeed(predict(version, member, world.org, deployment=deployment), total_ms=42.0)
    rows = [row for row in rows_of(client_for(member).get("/inference/jobs/")) if "Prediction" in row]
    assert len(rows) == 1
    assert "acme/iris@1.0.0" in rows[0] and "iris-prod" in rows[0] and "succeeded" in rows[0]
    assert "CPUExecutionProvider" in rows[0]
    assert "1.5 ms" in rows[0] and "0.2 ms" in rows[0] and "42 ms" in rows[0]  # durations as people read them


def test_others_predictions_are_not_listed_but_an_admins_organization_ones_are(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    predict(version, world.user("member"), world.org)  # counted against acme
    predict(version, world.user("outsider"), world.org)  # counted against acme too: acme's admins see it
    assert len([r for r in rows_of(client_for(world.user("viewer")).get("/inference/jobs/")) if "Prediction" in r]) == 0
    assert len([r for r in rows_of(client_for(world.user("member")).get("/inference/jobs/")) if "Prediction" in r]) == 1
    assert len([r for r in rows_of(client_for(world.user("admin")).get("/inference/jobs/")) if "Prediction" in r]) == 2


def test_the_list_filters_by_status(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    succeed(predict(version, member, world.org))
    failed = claimed(predict(version, member, world.org))
    fail_job(failed, error="The model needed more memory than the worker's limit.")
    predict(version, member, world.org)  # still queued
    client = client_for(member)
    statuses = [row for row in rows_of(client.get("/inference/jobs/", {"status": "failed"})) if "Prediction" in row]
    assert len(statuses) == 1 and "failed" in statuses[0]
    queued = [row for row in rows_of(client.get("/inference/jobs/", {"status": "queued"})) if "Prediction" in row]
    assert len(queued) == 1 and "queued" in queued[0] and "—" in queued[0]
    nothing = client.get("/inference/jobs/", {"status": "cancelled"}).content.decode()
    assert "No inference jobs match" in nothing


def test_a_status_that_does_not_exist_answers_400_naming_the_filter(world):
    response = client_for(world.user("member")).get("/inference/jobs/", {"status": "exploded"})
    assert response.status_code == 400
    assert "status:" in response.content.decode() and "exploded" in response.content.decode()


def test_jobs_that_are_not_inference_jobs_stay_out(world):
    from apps.core.job_services import start_job

    start_job(kind="audit.export", organization=world.org, creator=world.user("admin"), params={})
    page = client_for(world.user("admin")).get("/inference/jobs/").content.decode()
    assert "audit.export" not in page and "No inference jobs yet" in page


def test_the_list_is_paginated_newest_first(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    jobs = [predict(version, member, world.org) for _ in range(27)]
    for index, job in enumerate(jobs):
        Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=index))
    client = client_for(member)
    first = client.get("/inference/jobs/", {"status": "queued"}).content.decode()
    assert "Page 1 of 2" in first and str(jobs[0].uuid)[:8] in first and str(jobs[26].uuid)[:8] not in first
    second = client.get("/inference/jobs/", {"status": "queued", "page": 2}).content.decode()
    assert str(jobs[26].uuid)[:8] in second


def test_a_failed_prediction_page_shows_the_error_and_the_fields_it_names(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    job = claimed(predict(version, member, world.org))
    fail_job(job, error="inputs.text: this model does not read text")
    InferenceJob.objects.filter(job=job).update(error_fields={"inputs.text": ["this model does not read text"]})
    page = client_for(member).get(f"/inference/jobs/{job.uuid}/").content.decode()
    assert "The prediction failed." in page
    assert "<code>inputs.text</code>: this model does not read text" in page
    assert "hx-get" not in page.split('id="job-title"')[1], "a finished job's answer does not poll"


def test_a_queued_prediction_page_polls_its_answer(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    job = predict(version, member, world.org)
    page = client_for(member).get(f"/inference/jobs/{job.uuid}/").content.decode()
    assert f'hx-get="/inference/jobs/{job.uuid}/answer/"' in page
    assert "Still running (queued)" in page
    assert re.search(r"<code>text</code></td><td[^>]*>x</td>", page), "the readable input is shown as sent"


def test_another_users_prediction_page_answers_404(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    job = predict(version, world.user("member"), world.org)
    assert client_for(world.user("viewer")).get(f"/inference/jobs/{job.uuid}/").status_code == 404
    assert Job.objects.filter(kind=PREDICT_KIND).count() == 1
