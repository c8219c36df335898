"""API permission: signed-in for writes, and the token's scope must cover the action.

Object-level rights are not decided here: restrict() decides them in the base viewsets.
"""

from __future__ import annotations

from rest_framework import exceptions, permissions

from apps.core.access import TokenScope, request_token

# What a token scope must be to perform a restrict() action through the API (read ⊂ write ⊂ run ⊂ admin).
DEFAULT_SCOPE_FOR_ACTION = {
    "view": TokenScope.READ,
    "create": TokenScope.WRITE,
    "change": TokenScope.WRITE,
    "delete": TokenScope.WRITE,
    "run": TokenScope.RUN,
}


def required_scope(view, request) -> TokenScope:
    action = view.get_restrict_action() if hasattr(view, "get_restrict_action") else None
    if action is None:
        action = "view" if request.method in permissions.SAFE_METHODS else "change"
    table = {**DEFAULT_SCOPE_FOR_ACTION, **getattr(view, "scope_for_action", {})}
    return table.get(action, TokenScope.ADMIN)


def require_scope(request, scope: TokenScope, *, doing: str) -> None:
    """403 ``insufficient_scope`` when the request's token (if any) does not reach ``scope`` for ``doing``."""
    token = request_token(request)
    if token is not None and not token.allows(scope):
        raise exceptions.PermissionDenied(
            f"This token's scope is “{token.scope_label()}”; {doing} needs “{scope.label}”.", code="insufficient_scope"
        )


class TokenScopePermission(permissions.BasePermission):
    message = "Your token's scope does not allow this."
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        needs_sign_in = request.method not in permissions.SAFE_METHODS or getattr(view, "requires_signed_in", False)
        if needs_sign_in and not (request.user and request.user.is_authenticated):
            return False
        token = request_token(request)
        if token is None:
            return True
        needed = required_scope(view, request)
        if not token.allows(needed):
            self.message = f"This token's scope is “{token.scope_label()}”; this action needs “{needed.label}”."
            return False
        return True


class SignedIn(permissions.BasePermission):
    """For routes about the caller themself (their profile, their tokens)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)
