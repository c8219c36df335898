"""The deployments list (status, what each serves, canary split, batching, requests of the last hour) and a
deployment's live status panel, which htmx polls: requests, errors, p50/p95 latency from the InferenceJob rows of
the last hour, the latest requests with the version and revision that served them.

The requests are written by ``start_prediction`` and finished as a worker records them, at chosen times, so the
latencies are known: the runs themselves are the worker tests'."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.jobs import Job, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.inference.predictions import PredictionInput, start_prediction
from apps.marketplace import services as catalog

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def request_at(deployment, version, *, ago: timedelta, took_ms: float | None, status=JobStatus.SUCCEEDED, error=""):
    """One request to ``deployment``, created ``ago`` before now, that took ``took_ms`` (None: still queued)."""
    job = start_prediction(
        version=version,
        request=PredictionInput(arrays=None, raw={"text": "x"}),
        user=deployment.created_by,
        organization=deployment.organization,
        deployment=deployment,
        revision=services.current_revision(deployment),
    )
    created = timezone.now() - ago
    finished = created + timedelta(milliseconds=took_ms) if took_ms is not None else None
    Job.objects.filter(pk=job.pk).update(
        created_at=created,
        finished_at=finished,
        status=status if took_ms is not None else JobStatus.QUEUED,
        error=error,
    )
    InferenceJob.objects.filter(job=job).update(
        created_at=created, provider="CPUExecutionProvider" if took_ms else "", timings={"queued_ms": 2.0}
    )
    return job


@pytest.fixture
def iris_prod(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="iris-prod", version=version
    )


def test_the_list_shows_status_serving_canary_batching_and_requests_of_the_last_hour(runnable, world, tmp_path):
    member = world.user("member")
    first = runnable.iris(tmp_path)
    second = runnable.iris(tmp_path, model=first.model, label="2.0.0")
    catalog.set_alias(model=first.model, actor=member, name="production", version=first)
    canary = services.create_deployment(
        organization=world.org, model=first.model, actor=member, slug="canary", version=first,
        canary_version=second, canary_percent=10, max_batch_size=8, max_delay_ms=4,
    )  # fmt: skip
    services.create_deployment(
        organization=world.org, model=first.model, actor=member, slug="by-alias", alias="production", status="paused"
    )
    request_at(canary, first, ago=timedelta(minutes=5), took_ms=30)
    request_at(canary, second, ago=timedelta(minutes=50), took_ms=30)
    request_at(canary, first, ago=timedelta(hours=2), took_ms=30)  # outside the hour
    page = client_for(world.user("viewer")).get("/orgs/acme/deployments/").content.decode()
    table = page[page.index('id="deployment-table"') :]
    rows = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    by_alias, canary_row = rows[1], rows[2]
    assert by_alias.startswith("by-alias") and "production → 1.0.0" in by_alias and "paused" in by_alias
    assert "off" in by_alias and by_alias.endswith(" 0")
    assert canary_row.startswith("canary") and "2.0.0 at 10 %" in canary_row and "up to 8 in 4 ms" in canary_row
    assert "active" in canary_row and canary_row.endswith(" 2")
    assert "New deployment" not in page, "viewers do not create deployments"


def test_an_organization_without_deployments_shows_the_empty_state_and_the_way_to_make_one(world):
    page = client_for(world.user("member")).get("/orgs/acme/deployments/").content.decode()
    assert "No deployments yet" in page
    assert 'href="/orgs/acme/deployments/new/"' in page


def test_the_live_panel_counts_the_last_hour_with_latency_percentiles_and_errors(iris_prod, world):
    version = iris_prod.version
    for took in (100, 200, 300):
        request_at(iris_prod, version, ago=timedelta(minutes=10), took_ms=took)
    request_at(iris_prod, version, ago=timedelta(minutes=3), took_ms=50, status=JobStatus.FAILED, error="Load failed.")
    request_at(iris_prod, version, ago=timedelta(seconds=5), took_ms=None)
    request_at(iris_prod, version, ago=timedelta(hours=3), took_ms=9000)  # outside the hour: not counted
    page = client_for(world.user("viewer")).get("/orgs/acme/deployments/iris-prod/").content.decode()
    assert re.search(r'id="live-requests">5<', page)
    assert re.search(r'id="live-p50">200\.0 ms<', page), "the median of 100, 200 and 300 ms; failures left out"
    assert re.search(r'id="live-errors">1<', page)
    assert "Load failed." in page
    recent = page[page.index('id="recent-requests"') :]
    assert recent.count("1.0.0") >= 5 and "(r1)" in recent and "CPUExecutionProvider" in recent
    assert 'hx-trigger="every 3s"' in page


def test_the_live_fragment_answers_the_panel_alone_for_htmx_to_swap(iris_prod, world):
    request_at(iris_prod, iris_prod.version, ago=timedelta(minutes=1), took_ms=80)
    response = client_for(world.user("member")).get("/orgs/acme/deployments/iris-prod/live/")
    fragment = response.content.decode()
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="deployment-live"') and "<html" not in fragment
    assert re.search(r'id="live-requests">1<', fragment) and re.search(r'id="live-p50">80\.0 ms<', fragment)
    assert 'hx-get="/orgs/acme/deployments/iris-prod/live/"' in fragment


def test_a_deployment_with_no_requests_says_so(iris_prod, world):
    page = client_for(world.user("member")).get("/orgs/acme/deployments/iris-prod/").content.decode()
    assert re.search(r'id="live-requests">0<', page) and re.search(r'id="live-p50">—<', page)
    assert "No requests yet" in page
