"""The 403 and 404 pages in headless Chromium, on a desktop and a 390 px phone: inside the layout, saying who may
do what (the refusal's own words) or that the page does not exist or is private, with a way back that works."""

from __future__ import annotations

import pytest

from tests.e2e.support import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_member_meets_the_403_and_404_pages_and_finds_the_way_back(browser, live_server, screenshot, world, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(context, live_server, world.user("member"))
        page.goto(f"{live_server.url}/orgs/acme/")
        response = page.goto(f"{live_server.url}/orgs/acme/audit/")
        assert response.status == 403
        assert page.inner_text("#error-title") == "You may not do this"
        reason = page.inner_text("#error-reason")
        assert "admin" in reason and "acme" in reason
        assert page.locator("link[rel=icon]").get_attribute("href") == "/static/portal/favicon.svg"
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= VIEWPORTS[viewport]["width"], "the page fits the screen"
        screenshot(page, f"{viewport}-403")
        page.click("#error-back")
        page.wait_for_url(f"{live_server.url}/orgs/acme/")

        response = page.goto(f"{live_server.url}/models/acme/no-such-model/")
        assert response.status == 404
        assert page.inner_text("#error-title") == "Page not found"
        assert "/models/acme/no-such-model/" in page.inner_text("#error-page")
        screenshot(page, f"{viewport}-404")
        page.get_by_role("link", name="Browse models").click()
        page.wait_for_url(f"{live_server.url}/models/")
    finally:
        context.close()


def test_a_visitor_gets_the_404_page_with_a_sign_in_link(page, live_server, screenshot, db):
    response = page.goto(f"{live_server.url}/jobs/00000000-0000-0000-0000-000000000000/progress/nothing/")
    assert response.status == 404
    link = page.locator("#error-page").get_by_role("link", name="sign in")
    assert "/accounts/login/?next=" in link.get_attribute("href")
    screenshot(page, "visitor-404")
