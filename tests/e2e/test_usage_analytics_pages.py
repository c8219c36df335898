"""The usage analytics pages in headless Chromium, with real usage: online predictions answered by a real prefork
inference worker, file downloads through the API, all recorded to the usage stream,
drained and rolled up as the periodic jobs do. acme's admin sees the organization's, the model's and the CI token's
pages draw their charts with those numbers, changes the period and the filters, downloads the CSV and JSON exports
and finds in them what the page shows; an organization with no usage says so plainly. Screenshots at desktop width
and at 390 px, where nothing scrolls sideways."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.analytics.models import UsageEvent
from apps.analytics.rollups import roll_up_pending
from apps.core.access import Role
from tests.conftest import api_client_for
from tests.e2e.support import sign_in
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.inference.conftest import Runnable, running_inference_worker, use_inference_storage
from tests.inference.online_support import wait_for_serving_loop
from tests.usage_support import drain_now

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
PREDICTIONS = 5
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-usage")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root, INFERENCE_PERFORMANCE_CARD_ON_PUBLISH=False)


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=16) as process:
        yield process


@pytest.fixture
def used(worker, world, tmp_path):
    """acme's usage, made for real: PREDICTIONS online predictions with the member's CI token (and a request whose
    inputs the web refuses, which is no run); the model file downloaded by the viewer and the admin; then drained
    and rolled up."""
    wait_for_serving_loop()
    version = Runnable(world=world).iris(tmp_path)
    ci = api_client_for(world.user("member"), organization=world.org, kind="ci")
    predict = f"/api/v1/models/acme/iris/versions/{version.label}/predict"
    for index in range(PREDICTIONS):
        answer = ci.post(predict, {"inputs": {"float_input": [ROWS[index % 3]]}}, format="json")
        assert answer.status_code == 200, answer.content
    refused = ci.post(predict, {"inputs": {"float_input": [[5.1, 3.5, 1.4]]}}, format="json")
    assert refused.status_code == 400, refused.content
    for persona in ("viewer", "admin"):
        download = api_client_for(world.user(persona)).get("/api/v1/models/acme/iris/versions/1.0.0/files/model.onnx")
        assert download.status_code == 200, download.content
        if download.streaming:  # the download is recorded as its body is sent
            b"".join(download.streaming_content)
    drain_now()
    counted = {
        kind: UsageEvent.objects.filter(organization=world.org, kind=kind).count()
        for kind in ("prediction", "download")
    }
    assert counted == {"prediction": PREDICTIONS, "download": 2}  # inputs refused by the web's checks are no run
    roll_up_pending(now=timezone.now() + timedelta(days=1))  # today's day bucket too, as once the day is over
    return {"ci": ApiToken.objects.get(organization=world.org, kind="ci")}


def chart_sums(page) -> dict[str, float]:
    """Each drawn chart's datasets, summed: {"chart-usage-runs/runs": 6, ...} (Chart.js' own data)."""
    return page.evaluate(
        """() => {
          const out = {};
          for (const canvas of document.querySelectorAll('#usage-charts canvas')) {
            const chart = Chart.getChart(canvas);
            if (!chart) continue;
            for (const set of chart.data.datasets) {
              out[canvas.id + '/' + set.label] = set.data.reduce((a, b) => a + (b || 0), 0);
            }
            out[canvas.id + '/buckets'] = chart.data.labels.length;
          }
          return out;
        }"""
    )


def no_sideways_scroll(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways at {width[1]} px: {width[0]} px wide"


def export(page, link: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(link)
    download = info.value
    return download.suggested_filename, open(download.path(), encoding="utf-8").read()


def test_an_admin_reads_charts_changes_the_period_and_exports_the_usage(
    page, browser, live_server, screenshot, world, used
):
    sign_in(page, live_server, world.user("admin"))
    page.goto(f"{live_server.url}/orgs/acme/analytics/?period=24h")
    page.wait_for_selector("#chart-usage-runs")
    sums = chart_sums(page)
    assert sums["chart-usage-runs/runs"] == PREDICTIONS
    assert sums["chart-usage-runs/downloads"] == 2
    assert sums["chart-usage-users/errors"] == 0
    assert sums["chart-usage-users/users"] == 3  # the member (predictions), the viewer and the admin (downloads)
    assert page.locator("#total-users").inner_text() == "3"
    assert sums["chart-usage-runs/buckets"] == 24
    assert sums["chart-usage-latency/mean"] > 0
    assert page.locator("#total-runs").inner_text() == str(PREDICTIONS)
    assert page.locator("#total-downloads").inner_text() == "2"
    assert page.locator('tr[data-token-kind="ci"]').inner_text().split() == ["token:", "ci", str(PREDICTIONS)]
    screenshot(page, "organization-24h-desktop")

    # Another period and granularity from the form: days over a week, the same totals.
    page.select_option("#period", "7d")
    page.select_option("#granularity", "day")
    page.click("#usage-filters button[type=submit]")
    page.wait_for_url("**period=7d**")
    page.wait_for_selector("#chart-usage-runs")
    sums = chart_sums(page)
    assert sums["chart-usage-runs/buckets"] in (7, 8)  # a week of days, today's included
    assert (sums["chart-usage-runs/runs"], sums["chart-usage-runs/downloads"]) == (PREDICTIONS, 2)
    assert "by day" in page.locator("body").inner_text()
    assert page.locator("#total-users").inner_text() == "3"

    # The exports carry the page's period and filters.
    name, text = export(page, "#export-csv")
    assert name.startswith("acme-usage-") and name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == sums["chart-usage-runs/buckets"]
    assert sum(int(row["runs"]) for row in rows) == PREDICTIONS
    assert sum(int(row["downloads"]) for row in rows) == 2
    name, text = export(page, "#export-json")
    report = json.loads(text)
    assert name.endswith(".json")
    assert (report["period"]["name"], report["period"]["granularity"]) == ("7d", "day")
    assert (report["totals"]["runs"], report["totals"]["downloads"], report["totals"]["errors"]) == (PREDICTIONS, 2, 0)

    # A filter: downloads only.
    page.select_option("#kind", "download")
    page.click("#usage-filters button[type=submit]")
    page.wait_for_url("**kind=download**")
    page.wait_for_selector("#chart-usage-runs")
    sums = chart_sums(page)
    assert (sums["chart-usage-runs/runs"], sums["chart-usage-runs/downloads"]) == (0, 2)
    _name, text = export(page, "#export-json")
    assert (json.loads(text)["totals"]["events"], json.loads(text)["totals"]["users"]) == (2, 2)

    # The model's page and the CI token's page, from the organization's.
    page.goto(f"{live_server.url}/orgs/acme/analytics/?period=24h")
    page.click("#usage-models >> text=iris")
    page.wait_for_url("**/analytics/models/iris/**")
    page.wait_for_selector("#chart-usage-runs")
    assert "Usage of the model acme/iris" in page.locator("#usage-title").inner_text()
    sums = chart_sums(page)
    assert (sums["chart-usage-runs/runs"], sums["chart-usage-runs/downloads"]) == (PREDICTIONS, 2)
    _name, text = export(page, "#export-csv")
    assert sum(int(row["runs"]) for row in csv.DictReader(io.StringIO(text))) == PREDICTIONS
    screenshot(page, "model-desktop")

    page.goto(f"{live_server.url}/orgs/acme/analytics/?period=24h")
    page.click(f"#usage-tokens a[href*='{used['ci'].uuid}']")
    page.wait_for_url(f"**/analytics/tokens/{used['ci'].uuid}/**")
    page.wait_for_selector("#chart-usage-runs")
    sums = chart_sums(page)
    assert (sums["chart-usage-runs/runs"], sums["chart-usage-runs/downloads"]) == (PREDICTIONS, 0)
    name, text = export(page, "#export-json")
    assert name.startswith(f"acme-token-{used['ci'].prefix}")
    assert json.loads(text)["totals"]["runs"] == PREDICTIONS
    screenshot(page, "token-desktop")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        mobile = phone.new_page()
        sign_in(mobile, live_server, world.user("admin"))
        mobile.goto(f"{live_server.url}/orgs/acme/analytics/?period=24h")
        mobile.wait_for_selector("#chart-usage-runs")
        assert chart_sums(mobile)["chart-usage-runs/runs"] == PREDICTIONS
        no_sideways_scroll(mobile)
        screenshot(mobile, "organization-390px")
        mobile.goto(f"{live_server.url}/orgs/acme/analytics/tokens/{used['ci'].uuid}/?period=24h")
        mobile.wait_for_selector("#chart-usage-runs")
        no_sideways_scroll(mobile)
        screenshot(mobile, "token-390px")
    finally:
        phone.close()


def test_an_organization_with_no_usage_says_so(page, browser, live_server, screenshot, world, used):
    quiet = OrganizationFactory(slug="quiet", name="Quiet")
    admin = UserFactory(handle="quiet-admin", email="admin@quiet.example")
    MembershipFactory(organization=quiet, user=admin, role=Role.ADMIN)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/orgs/quiet/analytics/")
    empty = page.locator("#usage-empty")
    assert "No usage in this period" in empty.inner_text()
    assert "Nothing was recorded for the organization quiet" in empty.inner_text()
    assert page.locator("#usage-charts").count() == 0 and page.locator("#usage-totals").count() == 0
    assert page.locator("#export-csv").is_visible()
    _name, text = export(page, "#export-json")
    assert json.loads(text)["totals"]["events"] == 0  # acme's usage is not quiet's
    screenshot(page, "empty-desktop")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    try:
        mobile = phone.new_page()
        sign_in(mobile, live_server, admin)
        mobile.goto(f"{live_server.url}/orgs/quiet/analytics/")
        mobile.wait_for_selector("#usage-empty")
        no_sideways_scroll(mobile)
        screenshot(mobile, "empty-390px")
    finally:
        phone.close()
