"""An org admin adds an HTTP-index registry in a real browser, tests its connection, syncs it on a real Celery
worker (``sync`` queue), watches the progress bar (htmx polling) finish, and finds its models in the catalog
under the source facet."""

from __future__ import annotations

import os

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.test import Client

from apps.marketplace.models import Model
from tests import jobs_support
from tests.peers.faulty_registry import FaultyRegistry

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def sync_thread_worker(django_db_setup):
    """A solo worker in a thread of this process, on the ``sync`` queue only, for this module."""
    from gpux_portal.celery import app

    if not django_settings.REDIS_URL:
        pytest.skip("the worker tests need Redis as the broker (REDIS_URL), as in CI")
    os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
    jobs_support.purge_broker()
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=["sync"], loglevel="WARNING", shutdown_timeout=30
    ) as worker:
        yield worker
    jobs_support.purge_broker()


def test_an_admin_adds_syncs_and_browses_a_registry(
    live_server, page, screenshot, world, settings, tmp_path, sync_thread_worker
):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.MEDIA_ROOT = tmp_path / "media"
    client = Client()
    client.force_login(world.user("admin"))
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])

    with FaultyRegistry(page_size=2) as server:
        for number in range(1, 9):
            server.add_model(f"bank/fraud-model-{number}", summary=f"Fraud scoring model {number}", tags=["tabular"])
        server.faults.hang = 0.3  # slow pages: the progress bar has time to show

        page.goto(f"{live_server.url}/orgs/acme/registries/")
        screenshot(page, "empty-list")
        page.get_by_role("link", name="Add a registry").click()
        page.get_by_role("link", name="HTTP index").click()
        page.fill("input[name=name]", "Bank index")
        page.fill("input[name=slug]", "bank")
        page.fill("input[name=config__url]", server.url)
        page.select_option("select[name=model_visibility]", "internal")
        screenshot(page, "form")
        page.get_by_role("button", name="Add registry").click()
        page.wait_for_selector("#registry-title")
        assert "Bank index" in page.inner_text("#registry-title")

        page.get_by_role("button", name="Test connection").click()
        page.wait_for_selector("text=Connected")
        page.get_by_role("button", name="Sync now").click()
        page.wait_for_selector("#active-sync .progress")
        screenshot(page, "syncing")
        # When the sync ends the page reloads: its history and counts then agree with it.
        page.wait_for_function(
            "!document.querySelector('#active-sync') && document.querySelector('#sync-history')"
            " && document.querySelector('#sync-history').innerText.includes('succeeded')",
            timeout=60_000,
        )
        screenshot(page, "synced")
        page.reload()
        history = page.inner_text("#sync-history")
        assert "succeeded" in history and "8" in history

        page.click("#registry-models")
        page.wait_for_selector("text=fraud-model-3")
        screenshot(page, "catalog")
        assert page.locator("select[name=source] option:checked").inner_text().startswith("bank")

    assert Model.objects.filter(source_registry="bank", visibility="internal").count() == 8
