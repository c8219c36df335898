"""An organization's monitoring page counts its online predictions (no job row: their usage records, drained by the
page itself when they still wait in the stream) and its durable ones (their job rows), each once: a durable
prediction whose usage record of kind ``job`` is in the database too is not counted twice. Another organization's
predictions never show.

The online predictions are recorded as the serving path records them (apps.inference.api.views ``_record_online``),
the durable ones as a worker finishes them; real runs are the browser test's (tests/e2e/test_monitoring_dashboards.py).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.analytics import dashboards, usage
from apps.analytics.job_usage import record_job_usage
from apps.analytics.models import UsageEvent
from apps.core.jobs import Job, JobQueue, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.marketplace.models import Model, ModelVersion, ValidationStatus, VersionStatus
from tests.factories import OrganizationFactory
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db


def online(organization, version, *, latency_ms: float, outcome="ok", deployment=None, ago=timedelta(seconds=30)):
    return usage.record(
        "prediction",
        organization_id=organization.pk,
        model_id=version.model_id,
        version_id=version.pk,
        deployment_id=deployment.pk if deployment is not None else None,
        latency_ms=latency_ms,
        outcome=outcome,
        status_code=200 if outcome == "ok" else 422,
        occurred_at=(timezone.now() - ago).timestamp(),
        metadata={"online": True},
    )


def durable(organization, version, *, seconds: float, status=JobStatus.SUCCEEDED) -> Job:
    now = timezone.now()
    job = Job.objects.create(
        kind="inference.predict", organization=organization, status=status, queue=JobQueue.INFERENCE_CPU,
        created_at=now - timedelta(seconds=seconds), started_at=now - timedelta(seconds=seconds), finished_at=now,
    )  # fmt: skip
    InferenceJob.objects.create(job=job, version=version, inputs=b"")
    return job


@pytest.fixture
def iris(world):
    model = Model.objects.create(organization=world.org, name="iris")
    return ModelVersion.objects.create(
        model=model, label="1.0.0", status=VersionStatus.PUBLISHED, validation_status=ValidationStatus.PASSED
    )


def test_online_predictions_show_on_the_page_from_their_usage_records(world, iris):
    deployment = services.create_deployment(
        organization=world.org, model=iris.model, actor=world.user("member"), slug="flowers", version=iris
    )
    for latency in (10.0, 20.0, 30.0):
        online(world.org, iris, latency_ms=latency, deployment=deployment)
    online(world.org, iris, latency_ms=5.0, outcome="error", deployment=deployment)
    online(world.org, iris, latency_ms=1.0, ago=timedelta(hours=2))  # outside the hour
    assert not UsageEvent.objects.exists(), "still in the stream: the page drains it"

    admin = Client()
    admin.force_login(world.user("admin"))
    html = admin.get("/orgs/acme/monitoring/live/").content.decode()
    assert re.search(r'id="kpi-predictions">4<', html)
    assert "acme/iris" in html and "flowers" in html
    assert "still being written" not in html, "the page drained every waiting record"

    overview = dashboards.organization_overview(world.org)
    assert overview["predictions"]["count"] == 4
    assert overview["predictions"]["p50"] == pytest.approx(20.0)
    assert overview["predictions"]["error_ratio"] == pytest.approx(0.25)
    slowest = overview["slowest_models"][0]
    assert (slowest["model"], slowest["count"], slowest["errors"], slowest["deployments"]) == (
        "acme/iris", 3, 1, ["flowers"],
    )  # fmt: skip
    assert sum(overview["chart_data"]["series"]["succeeded"]) == 3
    assert sum(overview["chart_data"]["series"]["failed"]) == 1


def test_a_durable_prediction_counts_once_with_its_job_row_and_its_usage_record(world, iris):
    job = durable(world.org, iris, seconds=0.040)
    record_job_usage(job, JobStatus.SUCCEEDED, job.finished_at)  # what the worker records when it ends
    drain_now()
    assert UsageEvent.objects.filter(kind="job", subject_id=str(job.uuid)).count() == 1
    online(world.org, iris, latency_ms=20.0)

    overview = dashboards.organization_overview(world.org)
    assert overview["predictions"]["count"] == 2, "one durable (its row, not its record) and one online"
    assert overview["predictions"]["p50"] == pytest.approx(30.0, abs=1)
    assert overview["slowest_models"][0]["count"] == 2


def test_another_organizations_online_predictions_never_show(world, iris):
    other = OrganizationFactory(slug="globex")
    secret = ModelVersion.objects.create(model=Model.objects.create(organization=other, name="secret-model"), label="1")
    online(other, secret, latency_ms=9.0)
    online(world.org, iris, latency_ms=3.0)

    admin = Client()
    admin.force_login(world.user("admin"))
    html = admin.get("/orgs/acme/monitoring/live/").content.decode()
    assert "acme/iris" in html and "secret-model" not in html and "globex" not in html
    assert dashboards.organization_overview(world.org)["predictions"]["count"] == 1
    assert dashboards.organization_overview(other)["predictions"]["count"] == 1


def test_a_backlog_past_one_drain_batch_is_left_to_the_periodic_drain(world, iris, settings):
    """The drain is behind: a page polled by every viewer must not each add its second of draining; it shows what is
    in the database and says how many records wait."""
    settings.USAGE_DRAIN_BATCH_SIZE = 2
    for latency in (10.0, 20.0, 30.0):
        online(world.org, iris, latency_ms=latency)
    admin = Client()
    admin.force_login(world.user("admin"))
    html = admin.get("/orgs/acme/monitoring/live/").content.decode()
    assert not UsageEvent.objects.exists(), "the page drained a backlog larger than one batch"
    assert "still being written" in html
    drain_now()
    html = admin.get("/orgs/acme/monitoring/live/").content.decode()
    assert re.search(r'id="kpi-predictions">3<', html)
