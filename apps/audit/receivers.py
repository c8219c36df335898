"""Sign-ins, sign-outs and failed sign-ins go to the platform chain (DESIGN.md, "Audit trail").

Django sends these signals from ``login()``, ``logout()`` and ``authenticate()``; allauth's views go through
them too. A failed sign-in records the login that was tried (``actor_label``), never the password: Django has
already masked it in ``credentials``, and nothing here reads that key anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest

from apps.audit.context import context_from_request, current_request
from apps.audit.services import record_event

LOGIN = "auth.login"
LOGOUT = "auth.logout"
LOGIN_FAILED = "auth.login_failed"

# The credential keys that name who tried to sign in, by backend: allauth (email / username / login), Django's
# ModelBackend (the USERNAME_FIELD, here email), django-auth-ldap (username).
_LOGIN_KEYS = ("email", "login", "username", "handle")


@contextmanager
def _request_context(request: HttpRequest | None) -> Iterator[None]:
    """The request's IP and user agent, when the signal comes from outside AuditContextMiddleware."""
    if request is None or current_request.get() is not None or not hasattr(request, "META"):
        yield
        return
    token = current_request.set(context_from_request(request))
    try:
        yield
    finally:
        current_request.reset(token)


def _backend(user: Any) -> dict[str, str]:
    backend = getattr(user, "backend", None)
    return {"backend": backend} if backend else {}


def record_login(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_in``: auth.login on the platform chain."""
    if user is None:
        return
    with _request_context(request):
        record_event(action=LOGIN, actor=user, target=user, metadata=_backend(user))


def record_logout(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out``: auth.logout on the platform chain (nothing when nobody was signed in)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    with _request_context(request):
        record_event(action=LOGOUT, actor=user, target=user)


def record_login_failed(
    sender: Any, credentials: dict[str, Any] | None = None, request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """``user_login_failed``: auth.login_failed with the login that was tried as ``actor_label``."""
    credentials = credentials or {}
    attempted = next((str(credentials[k]) for k in _LOGIN_KEYS if credentials.get(k)), "")
    with _request_context(request):
        record_event(action=LOGIN_FAILED, actor_label=attempted.strip()[:254])


def record_job_event(
    sender: Any, *, action: str, organization: Any, actor: Any, job: Any, metadata: dict, **kwargs: Any
) -> None:
    """A job started or cancelled (core's ``job_event``): an event in its organization's chain, in the same
    transaction."""
    record_event(action=action, organization=organization, actor=actor, target=job, metadata=metadata)
