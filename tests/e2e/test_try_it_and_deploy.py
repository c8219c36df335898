"""A member tries the iris classifier from its model page in a real browser (the answer comes from a real prefork
Celery worker on Redis), sees a wrong input refused on its field, deploys the model from the page, watches the
deployment's live status count the requests sent to it online (htmx polling), serves a second version, rolls back
with one click, and finds the try-it prediction in the jobs list; then embeds a sentence with MiniLM."""

from __future__ import annotations

import json
import re

import pytest

from apps.core.jobs import Job
from apps.inference import services
from apps.inference.models import Deployment
from tests.conftest import api_client_for
from tests.e2e.support import sign_in
from tests.inference.conftest import Runnable, running_inference_worker, use_inference_storage
from tests.inference.online_support import wait_for_serving_loop

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-inference")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root)


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=8) as process:
        yield process


def test_a_member_tries_deploys_and_rolls_back_the_iris_classifier(
    live_server, page, screenshot, world, tmp_path, worker
):
    runnable = Runnable(world=world)
    first = runnable.iris(tmp_path)
    member = world.user("member")
    sign_in(page, live_server, member)

    # Try it on the model page: four numbers in, the species out, from the worker.
    page.goto(f"{live_server.url}/models/acme/iris/")
    form = page.locator("#try-it-form")
    field = form.locator("textarea").first
    assert "float32" in form.inner_text() and "[?, 4]" in form.inner_text()
    field.fill("[[5.1, 3.5, 1.4, 0.2]]")
    screenshot(page, "model-page-try-it")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-it .answer-label", timeout=60_000)
    assert page.inner_text("#try-it .answer-label") == "setosa"
    assert "CPUExecutionProvider" in page.inner_text("#try-it .answer-provider")
    assert "versicolor" in page.inner_text("#try-it .answer-scores")
    page.locator("#try-it").scroll_into_view_if_needed()
    screenshot(page, "try-it-answer")

    # A wrong shape: refused before anything runs, the reason next to the field.
    page.locator("#try-it-form textarea").first.fill("[[5.1, 3.5]]")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-it .invalid-feedback")
    error = page.inner_text("#try-it .invalid-feedback")
    assert "4" in error and "2" in error, error
    screenshot(page, "try-it-refused")

    # Deploy from the model page: the form comes filled in with the model and the version.
    page.click("#deploy-link")
    assert page.input_value("input[name=version]") == "1.0.0"
    assert page.locator("select[name=model] option:checked").inner_text() == "iris"
    page.fill("input[name=slug]", "iris-prod")
    page.fill("input[name=description]", "Species for the greenhouse app")
    screenshot(page, "deployment-form")
    page.get_by_role("button", name="Create deployment").click()
    page.wait_for_selector("#deployment-title")
    assert "iris-prod" in page.inner_text("#deployment-title")
    deployment = Deployment.objects.get(slug="iris-prod")
    assert deployment.revision == 1

    # Two requests through the API, served online (the default path: no job row): the live panel (polled every few
    # seconds) counts them from their usage records.
    wait_for_serving_loop()
    api = api_client_for(member)
    for sample in ([[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3]]):
        answer = api.post(
            "/api/v1/orgs/acme/deployments/iris-prod/predict", {"inputs": {"float_input": sample}}, format="json"
        )
        assert answer.status_code == 200, answer.content
    assert not Job.objects.filter(inference__deployment=deployment).exists(), "answered online: no job row"
    page.wait_for_function("document.querySelector('#live-requests').textContent.trim() === '2'", timeout=20_000)
    assert "ms" in page.inner_text("#live-p50")
    recent = page.inner_text("#recent-requests")
    assert "1.0.0" in recent and "succeeded" in recent and recent.count("online") == 2
    screenshot(page, "deployment-live")

    # A second version, served through the edit form (revision 2), then one click back to revision 1.
    second = runnable.iris(tmp_path, model=first.model, label="2.0.0")
    page.get_by_role("link", name="Edit").click()
    page.fill("input[name=version]", second.label)
    page.fill("input[name=reason]", "new training data")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Saved as revision 2")
    assert page.inner_text("#deployment-serves") == "2.0.0"
    page.get_by_role("button", name="Roll back to r1").click()
    page.wait_for_selector("text=Rolled back")
    assert page.inner_text("#deployment-serves") == "1.0.0"
    history = page.inner_text("#revision-history")
    assert "r3" in history and "rollback to revision 1" in history and "new training data" in history
    screenshot(page, "deployment-rolled-back")
    deployment.refresh_from_db()
    assert (deployment.revision, deployment.version_id) == (3, first.pk)
    assert services.current_revision(deployment).config["version"]["label"] == "1.0.0"

    # The organization's deployments: what each serves and its requests of the last hour.
    page.goto(f"{live_server.url}/orgs/acme/deployments/")
    row = page.inner_text("#deployment-table tbody tr")
    assert "iris-prod" in row and "1.0.0" in row and "active" in row and row.rstrip().endswith("2"), row
    screenshot(page, "deployments")

    # The jobs list: the page's prediction (the try-it form runs as a job); the deployment's two were served online,
    # without a job, and are on the deployment's page only.
    page.goto(f"{live_server.url}/inference/jobs/")
    table = page.inner_text("#inference-job-table")
    assert table.count("acme/iris@1.0.0") == 1, table
    assert "iris-prod" not in table and "CPUExecutionProvider" in table and "succeeded" in table
    # A run's times as the page writes them (human_duration): "8.4 ms" below 10 ms, "11 ms" from there (a loaded
    # machine's iris run can take that long).
    assert re.search(r"\t\d+(\.\d)? ms\t", table), table
    screenshot(page, "jobs")
    page.locator("#inference-job-table tbody tr").last.locator("a").first.click()
    page.wait_for_selector("#job-title")
    assert page.inner_text(".answer-label") == "setosa"
    screenshot(page, "job-detail")


def test_a_member_embeds_a_sentence_and_copies_the_vector(live_server, page, screenshot, world, worker):
    Runnable(world=world).minilm()
    sign_in(page, live_server, world.user("member"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.goto(f"{live_server.url}/models/acme/minilm/versions/1.0.0/")
    assert page.locator("#try-it").get_attribute("data-kind") == "text"
    page.fill("#try-it-form textarea[name=text]", "I play the guitar.")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-it .answer-embedding", timeout=60_000)
    assert "384 dimensions" in page.inner_text("#try-it .answer-embedding")
    page.get_by_role("button", name="Copy vector").click()
    page.wait_for_selector("text=Copied")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert len(copied) == 384
    assert abs(sum(value * value for value in copied) - 1.0) < 1e-3  # pooled and L2-normalized
    page.locator("#try-it").scroll_into_view_if_needed()
    screenshot(page, "embedding")
