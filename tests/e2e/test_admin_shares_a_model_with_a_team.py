"""Issue #14 item 4 in a browser: an organization's admin shares a private model with a team from the model's Access
panel, and a member of that team, a viewer of the organization who could not run it before, runs it and reads the
answer; then the admin revokes the grant and the Run button is gone at once. The admin works on a desktop, the team
member on a 390 px phone; the iris classifier of the demo (``seed_demo``) answers from a real prefork Celery worker.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.core.access import Role, Visibility
from apps.marketplace.models import Model
from apps.organizations import services as org_services
from apps.organizations.models import Organization
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.inference.conftest import running_inference_worker, use_inference_storage

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
MODEL = "/models/demo/iris-classifier/"


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-sharing")


@pytest.fixture(autouse=True)
def _inference_storage(settings, inference_root):
    use_inference_storage(settings, inference_root, VAR_DIR=inference_root / "var")


@pytest.fixture(scope="module")
def worker(inference_root, django_db_setup, django_db_blocker):
    with running_inference_worker(inference_root, django_db_blocker, prefetch=8) as process:
        yield process


@pytest.fixture
def demo(worker):
    """The demo with its iris classifier made private; Ada is an admin of the demo organization, Vik a viewer in its
    team "analysts"."""
    call_command("seed_demo", verbosity=0)
    organization = Organization.objects.get(slug="demo")
    Model.objects.filter(organization=organization, name="iris-classifier").update(visibility=Visibility.PRIVATE)
    ada = UserFactory(email="ada@example.com", handle="ada", name="Ada Admin")
    vik = UserFactory(email="vik@example.com", handle="vik", name="Vik Viewer")
    MembershipFactory(organization=organization, user=ada, role=Role.ADMIN)
    MembershipFactory(organization=organization, user=vik, role=Role.VIEWER)
    team = org_services.create_team(actor=ada, organization=organization, slug="analysts", name="Analysts")
    org_services.add_team_member(actor=ada, team=team, user=vik)
    return organization


def sign_in(page, live_server, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}{next_url}")


def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def panel_shot(page, screenshot, name: str, selector: str = "#access") -> None:
    """One part of the page alone (the Access panel, the try-it card), beside the full-page screenshots: a phone's
    full page is too tall to read."""
    screenshot.count += 1
    path = screenshot.folder / f"{screenshot.count:02d}-{name}.png"
    page.locator(selector).screenshot(path=str(path))
    screenshot.taken.append(path)


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"


def test_an_admin_shares_a_model_with_a_team_and_a_member_of_it_runs_it(browser, live_server, page, screenshot, demo):
    vik_context, vik = phone(browser)
    try:
        # Before: Vik, a viewer, sees the private model but may not run it; Vik has no Access panel either.
        sign_in(vik, live_server, "vik@example.com", MODEL)
        assert vik.locator("#try-it-form").count() == 0
        assert vik.locator("#access").count() == 0
        vik.locator("#try-it").scroll_into_view_if_needed()
        screenshot(vik, "phone-viewer-may-not-run-yet")
        panel_shot(vik, screenshot, "phone-viewer-try-it-card-before", "#try-it")

        # Ada finds the model on the organization's Models tab and grants run to the team.
        sign_in(page, live_server, "ada@example.com", "/orgs/demo/")
        page.locator("#tab-models").click()
        page.wait_for_selector("#model-list")
        assert "iris-classifier" in page.inner_text("#model-list")
        screenshot(page, "admin-organization-models-tab")
        page.get_by_role("link", name="demo / iris-classifier").first.click()
        page.wait_for_selector("#access")
        assert "No grants yet." in page.inner_text("#access")
        panel_shot(page, screenshot, "admin-access-panel")
        page.select_option("#grant-grantee-type", "team")
        page.fill("#grant-grantee", "analysts")
        page.select_option("#grant-permission", "run")
        page.locator("#access").scroll_into_view_if_needed()
        screenshot(page, "admin-access-panel-filled-in")
        page.click("#grant-submit")
        page.wait_for_selector("#grant-list")
        assert "Granted: team Analysts (demo/analysts) sees and runs it (run)." in page.inner_text("#access-message")
        granted = page.locator('#grant-list li[data-grantee="demo/analysts"][data-permission="run"]')
        assert granted.count() == 1
        page.locator("#access").scroll_into_view_if_needed()
        screenshot(page, "admin-team-granted")
        panel_shot(page, screenshot, "admin-access-panel-granted")

        # Vik, on the phone, now runs the model and reads the species.
        vik.reload()
        vik.wait_for_selector("#try-it-form")
        vik.click("#try-it-run")
        vik.wait_for_selector("#try-it .answer-label", timeout=60_000)
        assert vik.inner_text("#try-it .answer-label") == "setosa"
        vik.locator("#try-it").scroll_into_view_if_needed()
        no_sideways_scroll(vik)
        screenshot(vik, "phone-team-member-ran-it")
        panel_shot(vik, screenshot, "phone-team-member-answer", "#try-it")

        # Ada revokes the grant: Vik's next page has no Run button.
        page.locator('#grant-list li[data-grantee="demo/analysts"] button').click()
        page.wait_for_selector("#no-grants")
        assert "no longer has run access" in page.inner_text("#access-message")
        screenshot(page, "admin-grant-revoked")
        vik.reload()
        vik.wait_for_selector("#try-it")
        assert vik.locator("#try-it-form").count() == 0
    finally:
        vik_context.close()


def test_the_access_panel_fits_a_phone(browser, live_server, screenshot, demo):
    context, page = phone(browser)
    try:
        sign_in(page, live_server, "ada@example.com", MODEL)
        page.select_option("#grant-grantee-type", "organization")
        page.fill("#grant-grantee", "nobody-here")
        page.click("#grant-submit")
        page.wait_for_selector(".alert")
        # The refusal is in the panel, where the page returns to, not at the top of a long page.
        assert "grantee: No organization has the slug “nobody-here”." in page.inner_text("#access-message")
        assert page.locator("#messages .alert").count() == 0
        no_sideways_scroll(page)
        screenshot(page, "phone-admin-access-panel-refusal")
        panel_shot(page, screenshot, "phone-access-panel-refusal")
        page.select_option("#grant-grantee-type", "team")
        page.fill("#grant-grantee", "analysts")
        page.click("#grant-submit")
        page.wait_for_selector("#grant-list")
        panel_shot(page, screenshot, "phone-access-panel-granted")
        page.goto(f"{live_server.url}/orgs/demo/models/")
        no_sideways_scroll(page)
        screenshot(page, "phone-organization-models-tab")
    finally:
        context.close()
