"""What the browser tests share besides their fixtures (tests/e2e/conftest.py): signing a user in by a session cookie,
and whether a page fits its viewport's width."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client


def sign_in(target: Any, live_server: Any, user: Any) -> None:
    """Give ``target`` (a Playwright page, or a browser context) ``user``'s session: a cookie from a forced login,
    for tests whose subject is not the sign-in form itself."""
    context = getattr(target, "context", target)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def fits_the_screen(page: Any) -> bool:
    """No sideways scroll: the document is no wider than the viewport."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
