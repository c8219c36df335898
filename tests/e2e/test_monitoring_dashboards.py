"""The live dashboards in headless Chromium, with data: predictions served online (the default path: no job row) by
a real prefork inference worker with a metrics port (its heartbeat carries its metrics), a failed job, and a GPU
worker's heartbeat written by the test (mocked: no GPU exists here). Staff watch /operations/ refresh without
reloading and draw its charts; acme's admin watches the organization's page count the online predictions from their
usage records. Screenshots at desktop width and at 390 px, where nothing scrolls sideways."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from apps.core import metrics
from apps.core.jobs import Job, JobStatus
from apps.inference import services
from tests.conftest import api_client_for
from tests.e2e.support import sign_in
from tests.factories import UserFactory
from tests.inference.conftest import Runnable, running_inference_worker, use_inference_storage
from tests.inference.online_support import predictions_written, wait_for_serving_loop
from tests.metrics_support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-monitoring")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root)


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    env = {
        "GPUX_WORKER_METRICS_PORT": str(free_port()),
        "GPUX_METRICS_DIR": str(inference_root / "metrics"),
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    with running_inference_worker(inference_root, django_db_blocker, prefetch=16, env=env) as process:
        yield process


def _predict(client, url: str, row: list[float]) -> None:
    try:
        response = client.post(url, {"inputs": {"float_input": [row]}}, format="json")
        assert response.status_code == 200, response.content
    finally:
        connection.close()


def _mocked_gpu_worker() -> None:
    """A GPU worker's heartbeat as a real one writes it, with two devices (mocked: no GPU exists here)."""
    metrics.write_heartbeat(
        {
            "name": "gpu-worker@mocked", "host": "mocked", "pid": 1, "queues": ["inference.gpu"], "at": time.time(),
            "started_at": time.time(), "metrics_port": None, "metrics": {},
            "gpus": [
                {"gpu": "0", "name": "NVIDIA H100 80GB HBM3", "utilization": 0.62, "memory_used": 51 * 1024**3,
                 "memory_total": 80 * 1024**3},
                {"gpu": "1", "name": "NVIDIA H100 80GB HBM3", "utilization": 0.08, "memory_used": 9 * 1024**3,
                 "memory_total": 80 * 1024**3},
            ],
        }
    )  # fmt: skip


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways at {width[1]} px: {width[0]} px wide"


def _charts_drawn(page, ids: list[str]) -> None:
    page.wait_for_selector("body[data-dashboard-drawn]")
    for chart_id in ids:
        drawn = page.evaluate(f"() => !!Chart.getChart(document.getElementById('{chart_id}'))")
        assert drawn, f"chart {chart_id} was not drawn"


def test_staff_and_an_org_admin_watch_their_dashboards(page, browser, live_server, screenshot, worker, world, tmp_path):
    # The predictions go the default way, online (no job row): the operations page sees them through the worker's
    # metrics, the organization's page through their usage records.
    wait_for_serving_loop()
    version = Runnable(world=world).iris(tmp_path)
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="flowers", version=version,
        max_batch_size=4, max_delay_ms=50,
    )  # fmt: skip
    client = api_client_for(world.user("member"))
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    rows = [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5]] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda row: _predict(client, url, row), rows))
    assert not predictions_written(), "answered online: no prediction job"
    Job.objects.create(
        kind="audit.export", organization=world.org, creator=world.user("admin"), status=JobStatus.FAILED,
        error="Disk full while writing the export.", heartbeat_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    _mocked_gpu_worker()

    staff = UserFactory(handle="operator", email="operator@example.com", is_staff=True)
    sign_in(page, live_server, staff)
    page.goto(f"{live_server.url}/operations/")
    page.wait_for_selector("#queue-table")
    _charts_drawn(page, ["chart-throughput", "chart-latency", "chart-queues", "chart-gpus"])
    assert page.locator("#worker-table").inner_text().count("@") >= 2
    # The page is not reloaded: the live part refreshes itself, and a window appears from the second refresh on.
    page.evaluate("() => { window.notReloaded = true; }")
    for row in rows[:3]:
        _predict(client, url, row)
    _mocked_gpu_worker()
    page.wait_for_function(
        "() => document.getElementById('kpi-request-rate').textContent.trim() !== '—'", timeout=20_000
    )
    assert page.evaluate("() => window.notReloaded === true")
    page.wait_for_function(
        "() => document.getElementById('slowest-models') && "
        "document.getElementById('slowest-models').textContent.includes('acme/iris')",
        timeout=20_000,
    )
    assert "Disk full" in page.locator("#failures").inner_text()
    assert "NVIDIA H100" in page.locator("#gpu-table").inner_text()
    screenshot(page, "operations-desktop")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    sign_in(mobile, live_server, staff)
    mobile.goto(f"{live_server.url}/operations/")
    mobile.wait_for_selector("#queue-table")
    _charts_drawn(mobile, ["chart-throughput", "chart-queues"])
    _no_sideways_scroll(mobile)
    screenshot(mobile, "operations-390px")

    admin = world.user("admin")
    org_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(org_page, live_server, admin)
    org_page.goto(f"{live_server.url}/orgs/acme/monitoring/")
    org_page.wait_for_selector("#slowest-models")
    _charts_drawn(org_page, ["chart-predictions", "chart-org-latency"])
    assert "acme/iris" in org_page.locator("#slowest-models").inner_text()
    assert org_page.locator("#kpi-predictions").inner_text().strip() == str(len(rows) + 3)  # all of them, online
    assert "flowers" in org_page.locator("#slowest-models").inner_text()
    assert "still being written" not in org_page.locator("#predictions-freshness").inner_text()
    assert not predictions_written()
    assert "Disk full" in org_page.locator("#failures").inner_text()
    screenshot(org_page, "organization-desktop")

    mobile_admin = phone.new_page()
    phone.clear_cookies()
    sign_in(mobile_admin, live_server, admin)
    mobile_admin.goto(f"{live_server.url}/orgs/acme/monitoring/")
    mobile_admin.wait_for_selector("#slowest-models")
    _charts_drawn(mobile_admin, ["chart-predictions"])
    _no_sideways_scroll(mobile_admin)
    screenshot(mobile_admin, "organization-390px")
    phone.close()
    metrics.withdraw_heartbeat("gpu-worker@mocked")
