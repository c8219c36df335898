"""The deployments list (status, what each serves, canary split, batching, requests of the last hour) and a
deployment's live status panel, which htmx polls: requests, errors, p50/p95 latency of the last hour, the latest
requests with the version and revision that served them. Durable requests count from their InferenceJob rows,
online ones (no job row) from their usage records, each once.

The durable requests are written by ``start_prediction`` and finished as a worker records them, the online ones
recorded as the serving path records them, at chosen times, so the latencies are known: the runs themselves are the
worker tests' (and tests/e2e/test_try_it_and_deploy.py's, online end to end)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.analytics import usage
from apps.analytics.job_usage import record_job_usage
from apps.analytics.models import UsageEvent
from apps.core.jobs import Job, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.inference.predictions import PredictionInput, start_prediction
from apps.marketplace import services as catalog
from tests.usage_support import drain_now, drained

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


def online_request(deployment, version, *, ago: timedelta, took_ms: float, outcome="ok", error=None):
    """One online prediction on ``deployment`` as the serving path records it (apps.inference.api.views's
    ``_record_online``: its usage record, no job row), ``ago`` before now; left in the stream, not drained."""
    metadata = {"online": True, "revision": deployment.revision, "provider": "CPUExecutionProvider", "batch_size": 3}
    if error:
        metadata["error"] = error
    return usage.record(
        "prediction",
        organization_id=deployment.organization_id,
        user_id=deployment.created_by_id,
        model_id=version.model_id,
        version_id=version.pk,
        deployment_id=deployment.pk,
        latency_ms=took_ms,
        outcome=outcome,
        status_code=200 if outcome == "ok" else 422,
        occurred_at=(timezone.now() - ago).timestamp(),
        metadata=metadata,
    )


def test_online_predictions_count_on_the_live_panel_from_their_usage_records(iris_prod, world):
    version = iris_prod.version
    for took in (10, 20, 30):
        online_request(iris_prod, version, ago=timedelta(minutes=2), took_ms=took)
    online_request(iris_prod, version, ago=timedelta(minutes=1), took_ms=5, outcome="error", error="Run failed: OOM.")
    online_request(iris_prod, version, ago=timedelta(hours=2), took_ms=900)  # outside the hour
    request_at(iris_prod, version, ago=timedelta(minutes=4), took_ms=40)  # one durable, from its job row
    assert not UsageEvent.objects.exists(), "the records wait in the stream: the page drains them"
    page = client_for(world.user("viewer")).get("/orgs/acme/deployments/iris-prod/").content.decode()
    assert re.search(r'id="live-requests">5<', page)
    assert re.search(r'id="live-p50">25\.0 ms<', page), "the median of 10, 20, 30 (online) and 40 ms (durable)"
    assert re.search(r'id="live-errors">1<', page) and "Run failed: OOM." in page
    recent = page[page.index('id="recent-requests"') :]
    assert recent.count(">online</span>") == 5 and "CPUExecutionProvider" in recent and "(r1)" in recent
    assert recent.count("/inference/jobs/") == 1, "only the durable one has a job page"


def test_a_durable_prediction_with_its_job_row_and_its_usage_record_counts_once(iris_prod, world):
    job = request_at(iris_prod, iris_prod.version, ago=timedelta(minutes=3), took_ms=60)
    job.refresh_from_db()
    record_job_usage(job, JobStatus.SUCCEEDED, job.finished_at)  # what the worker records when the job ends
    assert drained(UsageEvent).filter(kind="job", deployment_id=iris_prod.pk).count() == 1
    viewer = client_for(world.user("viewer"))
    assert re.search(r'id="live-requests">1<', viewer.get("/orgs/acme/deployments/iris-prod/live/").content.decode())
    rows = re.findall(r"<tr>(.*?)</tr>", viewer.get("/orgs/acme/deployments/").content.decode(), re.S)
    assert re.sub(r"<[^>]+>|\s+", " ", rows[1]).strip().endswith(" 1")


def test_the_list_counts_online_and_durable_requests_in_one_query_however_many_deployments(runnable, world, tmp_path):
    member = world.user("member")
    version = runnable.iris(tmp_path)
    made = [
        services.create_deployment(
            organization=world.org, model=version.model, actor=member, slug=slug, version=version
        )
        for slug in ("a-one", "b-two", "c-three")
    ]
    for index, deployment in enumerate(made):
        for _ in range(index + 1):
            online_request(deployment, version, ago=timedelta(minutes=5), took_ms=10)
        request_at(deployment, version, ago=timedelta(minutes=5), took_ms=10)
    drain_now()
    viewer = client_for(world.user("viewer"))
    viewer.get("/orgs/acme/deployments/")  # the session and the caches warm

    def queries_of_the_list() -> tuple[int, list[str]]:
        with CaptureQueriesContext(connection) as captured:
            page = viewer.get("/orgs/acme/deployments/").content.decode()
        table = page[page.index('id="deployment-table"') :]
        rows = [re.sub(r"<[^>]+>|\s+", " ", row).strip() for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)][1:]
        return len([q for q in captured.captured_queries if "analytics_usageevent" in q["sql"]]), rows

    usage_queries, rows = queries_of_the_list()
    assert [row.split(" ")[0] for row in rows] == ["a-one", "b-two", "c-three"]
    assert [row.rsplit(" ", 1)[1] for row in rows] == ["2", "3", "4"], "online ones plus the durable one"
    assert usage_queries == 1, "the usage records are counted in the list's query, not per deployment"
    with CaptureQueriesContext(connection) as three:
        viewer.get("/orgs/acme/deployments/")
    services.create_deployment(
        organization=world.org, model=version.model, actor=member, slug="d-four", version=version
    )
    with CaptureQueriesContext(connection) as four:
        viewer.get("/orgs/acme/deployments/")
    assert len(four.captured_queries) == len(three.captured_queries), "no query per deployment"
