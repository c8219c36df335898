"""A member builds a two-step pipeline on its page in a real browser (the iris classifier, then ArgMax over its
probabilities), the builder checking each change and mapping the second step's input to the first one's output by
itself; saves it, runs it on three flowers from its page, and reads the run's page: each step's version, provider,
timing and outputs, the class index of each flower, from a real prefork worker. At desktop width and at 390 px,
where no page scrolls sideways."""

from __future__ import annotations

import pytest

from tests.e2e.support import fits_the_screen, sign_in
from tests.inference.conftest import running_inference_worker, use_inference_storage
from tests.inference.pipeline_models import iris_bytes, make_version, model_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-pipelines")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root)


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=8) as process:
        yield process


def checked(page, action) -> None:
    """Do ``action`` and wait for the builder to come back checked."""
    with page.expect_response(lambda response: response.url.endswith("/pipelines/new/check/")):
        action()
    page.wait_for_timeout(100)  # htmx settles the swap


@pytest.mark.parametrize("width", [1280, 390])
def test_a_member_builds_a_pipeline_on_its_page_and_runs_it(live_server, browser, screenshot, world, worker, width):
    make_version(world, "iris", iris_bytes())
    make_version(world, "argmax", model_bytes("argmax"))
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, world.user("member"))

    page.goto(f"{live_server.url}/orgs/acme/pipelines/")
    assert "No pipelines yet" in page.inner_text("main")
    page.click("#new-pipeline")
    checked(page, lambda: page.select_option("#steps-0-version", "acme/iris@1.0.0"))
    assert "float_input" in page.inner_text("#pipeline-steps")
    checked(page, lambda: page.click("#add-step"))
    checked(page, lambda: page.select_option("#steps-1-version", "acme/argmax@1.0.0"))
    # The second step's input is mapped to the first step's output of its type and shape, and it fits.
    assert page.eval_on_selector("#steps-1-in-probabilities", "e => e.value") == "step1.probabilities"
    assert "The steps fit together" in page.inner_text("#pipeline-check")
    # A mapping that does not fit is marked as you go.
    checked(page, lambda: page.select_option("#steps-1-in-probabilities", "step1.label"))
    assert "int64" in page.inner_text("#pipeline-steps") and "Fix the fields" in page.inner_text("#pipeline-check")
    checked(page, lambda: page.select_option("#steps-1-in-probabilities", "step1.probabilities"))
    page.fill("#pipeline-slug", "species")
    assert fits_the_screen(page)
    screenshot(page, f"{width}-builder")
    page.click("#save-pipeline")

    page.wait_for_url(f"{live_server.url}/orgs/acme/pipelines/species/")
    page.fill("#input-float_input", "[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]")
    assert fits_the_screen(page)
    screenshot(page, f"{width}-pipeline-page")
    page.click("#run-pipeline")

    page.wait_for_url(f"{live_server.url}/orgs/acme/pipelines/species/runs/*/")
    page.wait_for_selector("#run-outputs", timeout=60_000)  # the page reloads when the run ends
    steps = page.inner_text("#run-steps")
    assert "acme/iris@1.0.0" in steps and "acme/argmax@1.0.0" in steps and "CPUExecutionProvider" in steps
    assert "probabilities" in steps and "index" in steps and " ms" in steps
    outputs = page.inner_text("#run-outputs")
    assert "0, 2, 1" in outputs
    assert fits_the_screen(page)
    screenshot(page, f"{width}-run")
    context.close()
