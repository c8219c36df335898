"""At 390 px (a phone) no main page scrolls sideways: ``document.documentElement.scrollWidth <= innerWidth`` on
each, signed out and as the organization's owner, with a model, a version, a deployment, a pipeline, a batch job, a
registry and its sync in place. Tables scroll inside their own container, never the page. A screenshot of each
page is kept (test-artifacts/e2e/)."""

from __future__ import annotations

import pytest

from apps.core.access import Visibility
from apps.inference import services
from apps.inference.pipelines import save_pipeline
from tests.e2e.support import sign_in
from tests.inference.conftest import MEDIA, Runnable
from tests.inference.pipeline_models import ref

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SIGNED_OUT = ["/", "/models/", "/models/acme/iris/", "/accounts/login/", "/accounts/signup/", "/nowhere/"]
SIGNED_IN = [
    "/",
    "/models/",
    "/models/acme/iris/",
    "/models/acme/iris/versions/1.0.0/",
    "/inference/jobs/",
    "/orgs/acme/",
    "/orgs/acme/models/",
    "/orgs/acme/members/",
    "/orgs/acme/teams/",
    "/orgs/acme/invitations/",
    "/orgs/acme/tokens/",
    "/orgs/acme/audit/",
    "/orgs/acme/jobs/",
    "/orgs/acme/deployments/",
    "/orgs/acme/deployments/new/",
    "/orgs/acme/deployments/iris-prod/",
    "/orgs/acme/pipelines/",
    "/orgs/acme/pipelines/new/",
    "/orgs/acme/pipelines/species/",
    "/orgs/acme/registries/",
    "/orgs/acme/registries/new/",
    "/orgs/acme/monitoring/",
    "/orgs/acme/analytics/",
    "/orgs/acme/quotas/",
    "/orgs/acme/sso/",
    "/orgs/acme/settings/",
    "/orgs/new/",
    "/settings/profile/",
    "/settings/tokens/",
]


@pytest.fixture(autouse=True)
def _inference_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / MEDIA
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"
    settings.INFERENCE_CACHE_DIR = tmp_path / "cache"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0


def overflow(page) -> str:
    """Empty when the page fits; else its width and the widest elements that stick out."""
    return page.evaluate(
        """() => {
        const width = window.innerWidth, doc = document.documentElement;
        if (doc.scrollWidth <= width) return "";
        const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 1)
          .filter(e => !e.closest('.table-responsive, .overflow-x-auto, pre'))
          .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.'));
        return `scrollWidth ${doc.scrollWidth} > ${width}: ${wide.join(', ')}`;
    }"""
    )


def sweep(page, live_server, screenshot, paths: list[str], who: str) -> list[str]:
    problems = []
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        screenshot(page, f"{who}{path.strip('/').replace('/', '-') or '-home'}")
        found = overflow(page)
        if found:
            problems.append(f"{path}: {found}")
    return problems


def test_no_main_page_scrolls_sideways_at_390_px(live_server, browser, screenshot, world, tmp_path):
    runnable = Runnable(world=world)
    version = runnable.iris(tmp_path, visibility=Visibility.PUBLIC)
    owner = world.user("owner")
    services.create_deployment(
        organization=world.org, model=version.model, actor=owner, slug="iris-prod", version=version
    )
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[{"name": "classify", "version": ref(version), "inputs": {"float_input": "input.features"}}],
        actor=owner,
    )
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = sweep(page, live_server, screenshot, SIGNED_OUT, "out-")
    sign_in(page, live_server, owner)
    problems += sweep(page, live_server, screenshot, SIGNED_IN, "owner-")
    context.close()
    assert not problems, "\n".join(problems)
