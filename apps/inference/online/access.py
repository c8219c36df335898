"""Who may run what, remembered for a moment: the online routes' decisions, per caller and route.

A predict route resolves what its URL names and checks the caller's right to run it through ``restrict()`` (one
query, and one more for whether answers may name the model). For a caller with an API token the outcome (the
deployment or version, ready to run, and whether the model may be named) is kept in this process for at most
``SHORT_LIVED_CACHE_SECONDS`` and until a change to what it read (apps/core/shortlived.py): a membership removed, a
grant withdrawn or a deployment made private is refused within that bound everywhere, at once in the process that
made the change. Refusals (404, 403) are not kept; requests signed in with a session are decided every time (their
single sign-on state is per session). When a decision expires under load, one thread of the process decides again
and the others asking meanwhile wait for its outcome (``ShortLivedCache.get_or_compute``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.core import shortlived

_decisions = shortlived.ShortLivedCache("online-run-decisions")


def _key(user: Any, token: Any, route: tuple) -> tuple:
    return (user.pk, token.pk, token.organization_id, token.scope, *route)


def remembered(request: Any, route: tuple, decide: Callable[[], Any]) -> Any:
    """``decide()``'s outcome for this caller and ``route``, from the cache when it is fresh."""
    token = getattr(request, "auth", None)
    if token is None or not hasattr(token, "prefix"):
        return decide()
    return _decisions.get_or_compute(_key(request.user, token, route), decide)


def held(user: Any, token: Any, route: tuple) -> Any:
    """The outcome ``remembered`` keeps for this caller with this API token and ``route`` while it is fresh, else
    ``shortlived.MISSING`` (nothing decided, nothing read)."""
    return _decisions.get(_key(user, token, route))
