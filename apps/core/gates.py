"""Organization gates: rules an organization sets on its members' sessions (two-factor authentication, single
sign-on), enforced by the identity app (apps/accounts) and asked for by core's page mixins and API, which do not
know them.

An app registers a gate in its ``AppConfig.ready()``; each of a gate's hooks answers None to let the request
through. API tokens are decided by their token, not by a session: the gates look at sessions only.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse


class OrganizationGate:
    """One rule. Override the hooks it needs."""

    def page_redirect_for_slug(self, request: HttpRequest, slug: str) -> HttpResponse | None:
        """A page under ``/orgs/<slug>/``, before the organization is looked up: where to send the member instead."""
        return None

    def page_redirect(self, request: HttpRequest, organization: Any) -> HttpResponse | None:
        """A page of the organization or of one of its objects, for a signed-in user: where to send them instead."""
        return None

    def api_refusal(self, request: HttpRequest, organization: Any) -> tuple[str, str] | None:
        """An API route whose organization is known once its object is found (``/api/v1/jobs/<uuid>/``): the
        refusal's message and code (403), or None."""
        return None


_gates: list[OrganizationGate] = []


def register_organization_gate(gate: OrganizationGate) -> None:
    """Add ``gate`` (once per class: ``ready()`` may run more than once in tests)."""
    if not any(type(existing) is type(gate) for existing in _gates):
        _gates.append(gate)


def gate_redirect_for_slug(request: HttpRequest, slug: str) -> HttpResponse | None:
    for gate in _gates:
        redirect = gate.page_redirect_for_slug(request, slug)
        if redirect is not None:
            return redirect
    return None


def gate_redirect(request: HttpRequest, organization: Any) -> HttpResponse | None:
    """Where a gate of ``organization`` sends this signed-in user instead of its page, or None."""
    for gate in _gates:
        redirect = gate.page_redirect(request, organization)
        if redirect is not None:
            return redirect
    return None


def gate_refusal(request: HttpRequest, organization: Any) -> tuple[str, str] | None:
    """(message, code) of the first gate of ``organization`` that refuses this API call, or None."""
    for gate in _gates:
        refusal = gate.api_refusal(request, organization)
        if refusal is not None:
            return refusal
    return None
