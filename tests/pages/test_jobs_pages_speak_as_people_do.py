"""The jobs pages name jobs as people do ("Validation", "Benchmark", "Prediction"), give durations in s/min/h and
progress as a bar with its number, and offer one list per organization with a select for the kind; a job's page
shows no raw JSON nor a server path."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.job_services import kind_choices, kind_label, kinds_like
from apps.core.jobs import Job, JobStatus

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def job(world, kind: str, *, status=JobStatus.SUCCEEDED, seconds: float | None = 266.68, **fields) -> Job:
    now = timezone.now()
    started = now - timedelta(seconds=seconds) if seconds is not None else None
    return Job.objects.create(
        kind=kind,
        organization=world.org,
        creator=world.user("admin"),
        status=status,
        started_at=started,
        finished_at=now if status == JobStatus.SUCCEEDED and started else None,
        **fields,
    )


def test_every_kind_people_meet_has_a_human_label():
    assert kind_label("marketplace.validate_version") == "Validation"
    assert kind_label("inference.performance") == "Benchmark"
    assert kind_label("inference.predict") == kind_label("inference.predict_batched") == "Prediction"
    assert kind_label("inference.batch") == "Batch prediction"
    assert kind_label("inference.pipeline") == "Pipeline run"
    assert kind_label("registries.sync") == "Registry sync"
    assert kind_label("some.unknown_kind") == "Unknown kind"


def test_the_kind_select_offers_each_label_once_and_a_choice_takes_the_kinds_that_share_it():
    labels = [label for _kind, label in kind_choices()]
    assert labels.count("Prediction") == 1 and "Validation" in labels and "Benchmark" in labels
    assert kinds_like("inference.predict") == ["inference.predict", "inference.predict_batched"]


def test_the_organization_jobs_list_shows_labels_durations_and_progress_numbers(world):
    job(world, "marketplace.validate_version", params={"version": "00000000-0000-0000-0000-000000000000"})
    job(world, "audit.export", status=JobStatus.RUNNING, seconds=3, progress=0.437)
    page = client_for(world.user("admin")).get("/orgs/acme/jobs/").content.decode()
    assert "marketplace.validate_version" not in visible_text(page.split('id="job-table"')[1])
    assert "Validation" in page and "Audit trail export" in page
    assert "4 min 27 s" in page
    assert "44 %" in page
    assert '<select id="job-kind" name="kind"' in page
    assert "266679" not in page


def test_the_kind_select_filters_the_list_and_a_prediction_includes_batched_ones(world):
    job(world, "inference.predict_batched")
    job(world, "marketplace.validate_version")
    client = client_for(world.user("admin"))
    page = client.get("/orgs/acme/jobs/", {"kind": "inference.predict"}).content.decode()
    assert 'data-kind="inference.predict_batched"' in page
    assert 'data-kind="marketplace.validate_version"' not in page


def test_a_kind_that_is_not_in_the_select_answers_400_naming_the_kind(world):
    response = client_for(world.user("admin")).get("/orgs/acme/jobs/", {"kind": "audit.expor"})
    assert response.status_code == 400
    assert "kind:" in response.content.decode()


def test_a_job_page_shows_facts_and_a_duration_not_raw_json_or_server_paths(world):
    done = job(
        world,
        "marketplace.validate_version",
        params={"version": "00000000-0000-0000-0000-000000000000", "main_file": "model.onnx"},
        result={"output": "inference/batch-results/x/results.jsonl", "rows_done": 1200, "provider": "CPU", "n": {}},
    )
    page = client_for(world.user("admin")).get(f"/jobs/{done.uuid}/").content.decode()
    assert "Validation" in page and "4 min 27 s" in page
    assert "1,200" in page and "Rows done" in page
    assert "batch-results" not in page and "main_file" not in page and "{&#x27;" not in page
