"""Errors on pages are the portal's own pages inside its layout (navigation, footer, the favicon): 403 says who may
do what in the refusal's own words, 404 says the page does not exist or is private, 500 says the details went to
the log, and each offers a way back. Django's technical pages only with DEBUG=true, which is off unless set. The
API keeps its JSON errors (tests/core/test_api_errors_django_level.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


def client_for(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def branded(response, status: int) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'id="error-page"' in page and f'id="error-status">Error {status}<' in page
    assert 'class="navbar-brand"' in page and "<footer" in page, "inside the layout"
    assert 'rel="icon" href="/static/portal/favicon.svg"' in page
    ways_back = page[page.index('id="error-ways-back"') :]
    assert 'href="/"' in ways_back and 'href="/models/"' in ways_back and "history.back()" in ways_back
    return page


def test_a_page_that_does_not_exist_answers_the_portals_404(world):
    page = branded(client_for(world.user("member")).get("/no-such-page/"), 404)
    assert "Page not found" in page and "/no-such-page/" in page
    assert "ask its organization to share it with you" in page
    assert "Your dashboard" in page


def test_a_visitor_is_told_to_sign_in_for_what_may_be_private(db):
    page = branded(Client().get("/models/nobody/nothing/versions/9.9.9/nope/"), 404)
    assert 'href="/accounts/login/?next=' in page


def test_a_refusal_says_who_may_do_it_in_its_own_words(world):
    page = branded(client_for(world.user("member")).get("/orgs/acme/audit/"), 403)
    reason = re.search(r'id="error-reason">([^<]+)<', page).group(1)
    assert "admin" in reason and "acme" in reason, reason
    assert "admins also manage members, teams, invitations and tokens" in page
    assert "ask an admin or an owner of the organization" in page


@pytest.mark.urls("tests.core.urls_django_errors")
def test_an_unexpected_failure_answers_the_portals_500_without_its_details(db):
    page = branded(Client(raise_request_exception=False).get("/test-errors/fails"), 500)
    assert "Something went wrong on our side" in page
    assert "unexpected failure" not in page and "Traceback" not in page


def test_a_form_sent_without_its_csrf_token_answers_the_portals_page(world):
    client = client_for(world.user("member"), enforce_csrf_checks=True)
    page = branded(client.post("/orgs/new/", {"slug": "x", "name": "X"}), 403)
    assert "This form has expired" in page and "Nothing was changed" in page


def test_the_favicon_is_served_and_favicon_ico_leads_to_it(db):
    assert Client().get("/favicon.ico")["Location"] == "/static/portal/favicon.svg"
    icon = Client().get("/static/portal/favicon.svg")
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)


@pytest.mark.parametrize(("environment", "debug"), [({}, "False"), ({"DEBUG": "true"}, "True")])
def test_django_technical_pages_only_when_debug_is_asked_for(environment, debug):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ENV"}}
    env.update(environment)
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "gpux_portal.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == debug
