"""What inference adds to the catalog's model and version pages (apps/marketplace/extensions.py): the newest
performance card of the version, the "try it" card and "run on a file"."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.marketplace.extensions import AFTER_SIGNATURE, AFTER_USAGE, VersionPanel


def performance_card_context(request: HttpRequest, version: Any, *, may_run: bool) -> dict[str, Any]:
    """``performance_card``: the version's newest card, or None (templates/inference/performance_card.html)."""
    from apps.inference.performance import latest_card

    return {"performance_card": latest_card(version) if version is not None else None}


def try_it_panel_context(request: HttpRequest, version: Any, *, may_run: bool) -> dict[str, Any]:
    """``try_it`` (templates/inference/try_it.html). The page code is imported only when a page asks for it: a
    worker never does."""
    from apps.inference.views import try_it_context

    return try_it_context(request, version, may_run=may_run)


def run_on_file_panel_context(request: HttpRequest, version: Any, *, may_run: bool) -> dict[str, Any]:
    """``run_file`` comes with the "try it" panel's context (offered where "try it" is)."""
    return {}


PANELS = (
    VersionPanel("performance_card", AFTER_SIGNATURE, "inference/performance_card.html", performance_card_context),
    VersionPanel("try_it", AFTER_USAGE, "inference/try_it.html", try_it_panel_context),
    VersionPanel("run_on_file", AFTER_USAGE, "inference/run_on_file.html", run_on_file_panel_context),
)
