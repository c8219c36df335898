"""Publishing a version queues its performance card once the publication commits, when
``INFERENCE_PERFORMANCE_CARD_ON_PUBLISH`` is on (off in tests, where the catalog publishes many versions); a
failure to queue it never fails the publication. The model and version pages show the newest card, or say that
none was measured yet."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.core.jobs import Job, JobQueue
from apps.inference.models import PerformanceCard
from apps.inference.performance import PERFORMANCE_KIND
from apps.marketplace import services as catalog
from apps.marketplace.models import VersionStatus
from tests.inference.pipeline_models import make_version, model_bytes

pytestmark = pytest.mark.django_db


def publish_draft(world, name: str = "argmax"):
    draft = make_version(world, name, model_bytes("argmax"), publish=False)
    return catalog.publish_version(version=draft, actor=world.user("member"))


def test_publishing_queues_one_measuring_job_on_commit_when_the_setting_is_on(
    settings, world, django_capture_on_commit_callbacks
):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = True
    with django_capture_on_commit_callbacks() as callbacks:
        version = publish_draft(world)
    assert not Job.objects.filter(kind=PERFORMANCE_KIND).exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    job = Job.objects.get(kind=PERFORMANCE_KIND)
    assert job.params["version"] == str(version.uuid)
    assert job.queue == JobQueue.CHECKS
    assert job.organization_id == world.org.pk
    assert job.creator == world.user("member")


def test_publishing_queues_nothing_when_the_setting_is_off(settings, world, django_capture_on_commit_callbacks):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    with django_capture_on_commit_callbacks(execute=True):
        publish_draft(world)
    assert not Job.objects.filter(kind=PERFORMANCE_KIND).exists()


def test_a_job_that_cannot_be_queued_does_not_undo_the_publication(
    settings, world, django_capture_on_commit_callbacks, caplog
):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = True
    settings.INFERENCE_FORCE_QUEUE = "no-such-queue"  # start_job refuses it
    with django_capture_on_commit_callbacks() as callbacks:
        version = publish_draft(world)
    for callback in callbacks:
        callback()
    version.refresh_from_db()
    assert version.status == VersionStatus.PUBLISHED
    assert not Job.objects.filter(kind=PERFORMANCE_KIND).exists()
    assert "Could not queue the performance card" in caplog.text


def card_for(version, **figures) -> PerformanceCard:
    values = {
        "provider": "CPUExecutionProvider",
        "device": "AMD EPYC",
        "latency_p50_ms": 0.0123,
        "latency_p95_ms": 0.0456,
        "best_batch_size": 32,
        "best_batch_p50_ms": 0.0789,
        "best_batch_p95_ms": 0.0999,
        "throughput": 405_000.0,
        "memory_mb": 1.5,
        "details": {"sizes": [{"batch_size": 1, "p50_ms": 0.0123, "p95_ms": 0.0456, "throughput": 81300, "runs": 200}]},
    }
    return PerformanceCard.objects.create(version=version, **{**values, **figures})


def page(world, version, path: str = "") -> str:
    client = Client()
    client.force_login(world.user("viewer"))
    response = client.get(f"/models/acme/{version.model.name}/{path}")
    assert response.status_code == 200
    return response.content.decode()


def test_the_model_and_version_pages_show_the_newest_card(world):
    version = make_version(world, "argmax", model_bytes("argmax"))
    card_for(version, throughput=1000.0)
    card_for(version, throughput=405_000.0)
    for html in (page(world, version), page(world, version, f"versions/{version.label}/")):
        assert 'id="performance-card"' in html
        assert "405,000 items/s" in html
        assert "p50 0.012 ms" in html
        assert "<code>CPUExecutionProvider</code> (AMD EPYC)" in html
        assert "1,000 items/s" not in html


def test_a_version_not_measured_yet_says_so(world):
    version = make_version(world, "argmax", model_bytes("argmax"))
    html = page(world, version, f"versions/{version.label}/")
    assert 'id="performance-none"' in html
    assert "Not measured yet" in html
