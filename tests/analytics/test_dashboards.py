"""The monitoring pages: staff see the operations dashboard, its live fragment reads the queues, the workers and the
percentiles of the histograms over the window between two refreshes; an organization's admins see their own
organization's jobs and predictions, never another's."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apps.analytics import dashboards
from apps.core import metrics_snapshot as snap
from apps.core.jobs import Job, JobQueue, JobStatus
from apps.inference.models import InferenceJob
from apps.marketplace.models import Model, ModelVersion
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_ring():
    cache.delete(dashboards.OPS_RING_KEY)
    yield
    cache.delete(dashboards.OPS_RING_KEY)


@pytest.fixture
def staff():
    client = Client()
    client.force_login(UserFactory(handle="operator", email="operator@example.com", is_staff=True))
    return client


def test_staff_see_the_operations_page_with_its_charts(staff):
    response = staff.get("/operations/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="chart-throughput"' in html and 'id="chart-gpus"' in html
    assert "vendor/chartjs-4.5.1/chart.umd.min.js" in html
    assert 'hx-trigger="load, every 5s"' in html


def test_the_live_fragment_shows_every_queue_and_the_window_between_two_refreshes(staff, world):
    first = staff.get("/operations/live/")
    assert first.status_code == 200
    for queue in JobQueue.values:
        assert f'data-queue="{queue}"' in first.content.decode()
    assert "appear from the next refresh" in first.content.decode()
    for _ in range(5):
        Client().get("/healthz")
    ring = cache.get(dashboards.OPS_RING_KEY)
    for sample in ring:  # as if the first refresh were five seconds old
        sample["t"] -= 5
    cache.set(dashboards.OPS_RING_KEY, ring)
    second = staff.get("/operations/live/").content.decode()
    # At least the five seconds moved back, plus however long the second refresh took on a loaded machine.
    window = re.search(r"Over the last (\d+) s", second)
    assert window is not None and int(window.group(1)) >= 5
    overview = second.split('id="kpi-request-rate">', 1)[1].split("<", 1)[0]
    assert float(overview) > 0


def test_recent_failures_link_staff_to_the_job_in_the_admin(staff, world):
    failed = Job.objects.create(
        kind="audit.export", organization=world.org, status=JobStatus.FAILED, error="disk full",
        heartbeat_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    html = staff.get("/operations/live/").content.decode()
    assert f"/admin/core/job/{failed.pk}/change/" in html and "disk full" in html


def _prediction(organization, model: Model, version: ModelVersion, seconds: float, status=JobStatus.SUCCEEDED):
    now = timezone.now()
    job = Job.objects.create(
        kind="inference.predict", organization=organization, status=status,
        created_at=now - timedelta(seconds=seconds), started_at=now - timedelta(seconds=seconds),
        finished_at=now, error="bad input" if status == JobStatus.FAILED else "",
    )  # fmt: skip
    InferenceJob.objects.create(job=job, version=version, inputs=b"")
    return job


def test_an_organizations_page_shows_its_own_predictions_only(world):
    other = OrganizationFactory(slug="globex")
    ours = Model.objects.create(organization=world.org, name="iris")
    theirs = Model.objects.create(organization=other, name="secret-model")
    our_version = ModelVersion.objects.create(model=ours, label="1.0.0")
    their_version = ModelVersion.objects.create(model=theirs, label="1.0.0")
    for seconds in (0.010, 0.020, 0.030, 0.040, 1.0):
        _prediction(world.org, ours, our_version, seconds)
    failed = _prediction(world.org, ours, our_version, 0.5, status=JobStatus.FAILED)
    hidden = _prediction(other, theirs, their_version, 9.0, status=JobStatus.FAILED)

    admin = Client()
    admin.force_login(world.user("admin"))
    assert admin.get("/orgs/acme/monitoring/").status_code == 200
    html = admin.get("/orgs/acme/monitoring/live/").content.decode()
    assert "acme/iris" in html and "secret-model" not in html and "globex" not in html
    assert f"/jobs/{failed.uuid}/" in html and str(hidden.uuid) not in html

    overview = dashboards.organization_overview(world.org)
    assert overview["predictions"]["count"] == 6  # five answered, one failed
    assert overview["predictions"]["p50"] == pytest.approx(30.0, abs=1)
    assert overview["predictions"]["error_ratio"] == pytest.approx(1 / 6, abs=1e-3)
    assert overview["slowest_models"][0]["model"] == "acme/iris"
    assert sum(overview["chart_data"]["series"]["succeeded"]) == 5


def test_percentiles_are_read_from_histogram_buckets_as_prometheus_does():
    histogram = {"buckets": [[0.1, 10.0], [0.5, 90.0], [1.0, 100.0], [math.inf, 100.0]], "sum": 30.0, "count": 100.0}
    assert snap.quantile(0.05, histogram) == pytest.approx(0.05)
    assert snap.quantile(0.5, histogram) == pytest.approx(0.1 + 0.4 * 40 / 80)
    assert snap.quantile(0.95, histogram) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert snap.quantile(0.99, {**histogram, "buckets": [[0.1, 10.0], [math.inf, 100.0]]}) == 0.1
    assert snap.quantile(0.5, {"buckets": [], "sum": 0, "count": 0}) is None


def test_a_restarted_process_counts_from_zero_between_two_snapshots():
    old = {"c": {"type": "counter", "series": {"": 50.0}}}
    assert snap.increase({"c": {"type": "counter", "series": {"": 70.0}}}, old)["c"]["series"][""] == 20.0
    assert snap.increase({"c": {"type": "counter", "series": {"": 3.0}}}, old)["c"]["series"][""] == 3.0
