"""A visitor who is not signed in finds the demo's public models (the demo of ``make run``, seeded by
``seed_demo``), signs in from the model's "try it" card, comes back to the model, runs the example the form
starts with and reads the answer in words and numbers: the iris classifier's class name and score on a desktop,
MiniLM's sentence embedding on a 390 px phone, both from a real prefork Celery worker on Redis."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.factories import PASSWORD, UserFactory
from tests.inference.conftest import running_inference_worker, use_inference_storage

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-visitor")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root, VAR_DIR=inference_root / "var")


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=8) as process:
        yield process


@pytest.fixture
def demo(worker):
    call_command("seed_demo", verbosity=0)
    return UserFactory(email="visitor@example.com", handle="visitor")


def sign_in_from_the_card(page, screenshot, name: str) -> None:
    card = page.locator("#try-it")
    assert "Sign in to run this model" in card.inner_text()
    card.get_by_role("link", name="Sign in").click()
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", "visitor@example.com")
    page.fill("input[name=password]", PASSWORD)
    screenshot(page, f"{name}-sign-in")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_selector("#try-it-form")


def test_a_visitor_finds_the_iris_classifier_signs_in_runs_it_and_reads_the_species(
    live_server, page, screenshot, demo
):
    page.goto(f"{live_server.url}/")
    featured = page.locator("#featured-models")
    assert "iris-classifier" in featured.inner_text() and "all-minilm-l6-v2-int8" in featured.inner_text()
    screenshot(page, "landing")

    page.get_by_role("link", name="demo / iris-classifier").first.click()
    page.wait_for_selector("#try-it")
    screenshot(page, "model-page-signed-out")
    sign_in_from_the_card(page, screenshot, "iris")
    assert page.url.startswith(f"{live_server.url}/models/demo/iris-classifier/")

    # The form starts with a flower the gpux.yml gives: one click answers.
    assert page.input_value("#try-it-form textarea") == "[[5.1, 3.5, 1.4, 0.2]]"
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-it .answer-label", timeout=60_000)
    assert page.inner_text("#try-it .answer-label") == "setosa"
    assert page.inner_text("#try-it .answer-top-score") == "0.98"
    assert "versicolor" in page.inner_text("#try-it .answer-scores")
    raw = page.locator("#try-it details")
    assert raw.get_attribute("open") is None  # the raw tensors are one click away
    page.locator("#try-it").scroll_into_view_if_needed()
    screenshot(page, "iris-answer")
    raw.locator("summary").click()
    assert "probabilities" in page.inner_text("#try-it .answer-tensors")
    screenshot(page, "iris-raw-tensors")


def test_on_a_phone_a_visitor_searches_the_catalog_and_embeds_a_sentence(browser, live_server, screenshot, demo):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/")
        page.fill("#landing-q", "sentence")
        page.press("#landing-q", "Enter")
        page.wait_for_selector("#model-list")
        assert "all-minilm-l6-v2-int8" in page.inner_text("#model-list")
        assert "1 model" in page.inner_text("#catalog-count")
        screenshot(page, "phone-catalog-search")
        page.locator("#model-list a").first.click()
        page.wait_for_selector("#try-it")
        sign_in_from_the_card(page, screenshot, "phone-minilm")

        assert page.input_value("#try-it-form textarea[name=text]") == "GPUX Portal runs ONNX models on GPU workers."
        page.get_by_role("button", name="Run", exact=True).click()
        page.wait_for_selector("#try-it .answer-embedding", timeout=60_000)
        embedding = page.inner_text("#try-it .answer-embedding")
        assert "384 dimensions" in embedding and "Copy vector" in embedding
        page.locator("#try-it .answer-embedding").scroll_into_view_if_needed()
        screenshot(page, "phone-minilm-answer")
        width = page.evaluate("document.querySelector('#try-it').getBoundingClientRect().width")
        assert width <= PHONE["width"], "the answer card fits the phone's screen"
    finally:
        context.close()
