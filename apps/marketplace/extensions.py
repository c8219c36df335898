"""The catalog's extension points: what other apps add to it without the catalog importing them (apps that build on
the catalog, such as inference, import it; never the other way: tests/test_import_graph_keeps_the_layers.py).

* ``version_published``: sent inside the transaction that publishes a version, with ``version`` and ``actor``
  (inference queues the version's performance card once it commits);
* version panels: a model's page and a version's page show, about the version they show, the panels other apps
  register (inference: the performance card after the signature, "try it" after "how to use").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

version_published = Signal()

# Where on a model's or version's page a panel goes.
AFTER_SIGNATURE = "after_signature"
AFTER_USAGE = "after_usage"
SLOTS = (AFTER_SIGNATURE, AFTER_USAGE)


@dataclass(frozen=True)
class VersionPanel:
    """A panel about one version: ``template`` is included at ``slot`` (with ``version`` set to the version), with
    the page's context and what ``context(request, version, may_run=...)`` adds to it (``version`` may be None on a
    model's page without a version; ``may_run``: whether the caller may run the model)."""

    name: str
    slot: str
    template: str
    context: Callable[..., dict[str, Any]]


_panels: dict[str, VersionPanel] = {}


def register_version_panel(panel: VersionPanel) -> None:
    """Add ``panel`` to the model and version pages (registering a name again replaces it)."""
    if panel.slot not in SLOTS:
        raise ValueError(f"{panel.slot!r} is not a place on the version pages; use one of {', '.join(SLOTS)}.")
    _panels[panel.name] = panel


def version_panels_context(request: HttpRequest, version: Any, *, may_run: bool) -> dict[str, Any]:
    """The context the registered panels need, and ``version_panels``: for each slot, the templates to include."""
    context: dict[str, Any] = {}
    slots: dict[str, list[str]] = {slot: [] for slot in SLOTS}
    for panel in _panels.values():
        context.update(panel.context(request, version, may_run=may_run))
        slots[panel.slot].append(panel.template)
    context["version_panels"] = slots
    return context
