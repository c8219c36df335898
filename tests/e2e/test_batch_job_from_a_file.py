"""A member runs the iris classifier on a CSV file from its model page in a real browser: the file goes up with
“Run on a file”, the job's page shows the rows done on a progress bar with numbers until a real prefork worker
has run them all (a bad row counted as failed, the others answered), and the results download as JSON Lines with
the species of each row. At desktop width and at 390 px, where the page never scrolls sideways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.core.jobs import Job
from apps.inference.batch import BATCH_KIND
from tests.e2e.support import fits_the_screen, sign_in
from tests.inference.conftest import Runnable, running_inference_worker, use_inference_storage

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 20
CSV = "sepal_length,sepal_width,petal_length,petal_width\n" + "\n".join(",".join(map(str, row)) for row in ROWS)
CSV_WITH_A_BAD_ROW = CSV + "\n5.0,not a number,1.4,0.2\n"


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-batch")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root)


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=8) as process:
        yield process


@pytest.mark.parametrize("width", [1280, 390])
def test_a_member_runs_the_iris_classifier_on_a_csv_file_and_downloads_the_results(
    live_server, browser, screenshot, world, tmp_path, worker, width
):
    Runnable(world=world).iris(tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, world.user("member"))

    page.goto(f"{live_server.url}/models/acme/iris/")
    card = page.locator("#run-on-file")
    card.scroll_into_view_if_needed()
    card.locator("summary").click()
    assert "float_input_0" in card.inner_text()
    card.locator("input[type=file]").set_input_files(
        {"name": "flowers.csv", "mimeType": "text/csv", "buffer": CSV_WITH_A_BAD_ROW.encode()}
    )
    assert fits_the_screen(page)
    screenshot(page, f"{width}-model-page-run-on-a-file")
    card.get_by_role("button", name="Run on the file").click()

    # The job's page: rows on a progress bar with numbers, then the download.
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    assert "Batch prediction" in page.inner_text("h1")
    assert "acme/iris@1.0.0" in page.inner_text("#job-subject")
    page.wait_for_selector('.job-progress[data-status="succeeded"]', timeout=90_000)
    # The page reloads when the job ends: its facts (finished, duration) agree with the bar's.
    page.wait_for_function("document.querySelector('#job-finished').innerText.trim() !== '—'", timeout=15_000)
    assert page.inner_text("#job-duration") in page.inner_text(".job-duration")
    rows = page.inner_text(".batch-rows")
    assert "61 of 61 rows done" in " ".join(rows.split()) and "1 failed" in rows
    assert page.inner_text(".job-percent") == "100 %"
    assert fits_the_screen(page)
    screenshot(page, f"{width}-batch-job-done")

    with page.expect_download() as download_info:
        page.click("#batch-download")
    download = download_info.value
    assert download.suggested_filename == "flowers-results.jsonl"
    lines = [json.loads(line) for line in Path(download.path()).read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 61
    assert lines[0]["row"] == 0 and "setosa" in json.dumps(lines[0]["answer"])
    assert "virginica" in json.dumps(lines[1]["answer"])
    assert "error" in lines[60] and "answer" not in lines[60]
    assert Job.objects.get(kind=BATCH_KIND).batch.rows_failed == 1
    context.close()
