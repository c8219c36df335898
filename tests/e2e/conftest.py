"""Headless Chromium (Debian's ``chromium``) driven by Playwright's sync API against pytest-django's live_server.

Never ``playwright install``: it downloads a browser. Install Debian's: ``apt-get install -y chromium``.
Screenshots go to ``test-artifacts/e2e/`` (gitignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium's own background connections fail noisily on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@pytest.fixture(scope="module")
def _async_unsafe_allowed():
    """Playwright's sync API runs an event loop in this thread; the test also reads the database and the mail
    outbox in it, which Django refuses inside a running loop unless told it is safe (it is: one thread uses the
    ORM). Set for the browser tests only, and removed after them: `check --deploy` rightly refuses it, and the
    production settings test runs manage.py in subprocesses that inherit this environment."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (or set CHROMIUM_PATH)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


class Screenshots:
    """Numbered full-page screenshots of one test: ``test-artifacts/e2e/<test>/01-signup.png``..."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.taken: list[Path] = []

    def __call__(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        # A full page (the ReDoc reference is tens of thousands of pixels tall) on a loaded 2-core machine took
        # longer than the browser's 15 s default once, in a full run; the shot is evidence, not what is tested.
        page.screenshot(path=str(path), full_page=True, timeout=60_000)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshot(request) -> Screenshots:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Screenshots(folder)


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    """Mail stays in django.core.mail.outbox, in this process (the live server runs in a thread of it)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    """A fresh in-process cache per browser test: allauth's rate limits (one confirmation mail per address
    every 3 minutes) live in the cache, and a shared Redis would carry them over from the previous run."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"e2e-{request.node.name}",
        }
    }
