"""The meta-test: every URL pattern of the project is in a permission matrix or exempted with a reason.

A new route without a matrix entry fails here, listing the uncovered routes; so does a method a view answers
(a viewset action, a class-based view's handler) that the matrix does not try, a matrix entry naming a route
that no longer exists, and an exemption that matches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

from tests.permissions.matrix import API_ROUTES, EXEMPT, PAGE_ROUTES

IGNORED_METHODS = {"head", "options", "trace"}  # answered by the framework for every route


@dataclass(frozen=True)
class Pattern:
    name: str  # "api:org-detail", "account_login", or "" for an unnamed pattern
    namespace: str  # "api:", "admin:", or ""
    route: str  # the full pattern, for the failure message
    module: str  # the view's module, e.g. "allauth.account.views"
    methods: frozenset[str] | None  # the HTTP methods the view handles, when the view says so

    def label(self) -> str:
        return f"{self.name or '<unnamed>'} ({self.route}) in {self.module}"


def view_methods(callback) -> frozenset[str] | None:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return None  # a function view: the methods it answers are in its code, not in its signature
    names = getattr(view_class, "http_method_names", [])
    actions = getattr(callback, "actions", None)  # a DRF viewset bound to {method: action}
    if actions:
        return frozenset(m.upper() for m in actions if m not in IGNORED_METHODS and m in names)
    return frozenset(m.upper() for m in names if m not in IGNORED_METHODS and hasattr(view_class, m))


def all_patterns() -> list[Pattern]:
    found: list[Pattern] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = f"{namespace}{entry.namespace}:"
                walk(entry.url_patterns, route, inner)
            elif isinstance(entry, URLPattern):
                callback = entry.callback
                view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
                module = (view_class or callback).__module__
                name = f"{namespace}{entry.name}" if entry.name else ""
                found.append(
                    Pattern(name=name, namespace=namespace, route=route, module=module, methods=view_methods(callback))
                )

    walk(get_resolver().url_patterns, "", "")
    return found


def exemption_for(pattern: Pattern) -> str | None:
    for key in EXEMPT:
        if key.startswith("route:") and pattern.route.startswith(key.removeprefix("route:")):
            return key
        if key.endswith(":") and pattern.namespace.startswith(key):
            return key
        if key.endswith(".") and pattern.module.startswith(key):
            return key
        if key == pattern.name:
            return key
    return None


def matrix_methods() -> dict[str, set[str]]:
    methods: dict[str, set[str]] = {}
    for route in [*API_ROUTES, *PAGE_ROUTES]:
        methods.setdefault(route.name, set()).add(route.method)
    return methods


def test_every_url_pattern_is_in_a_matrix_or_exempt_with_a_reason():
    in_matrix = matrix_methods()
    uncovered = [p.label() for p in all_patterns() if p.name not in in_matrix and exemption_for(p) is None]
    assert not uncovered, "URL patterns in no permission matrix (add them to tests/permissions/matrix.py, or to " + (
        "EXEMPT with a reason):\n  " + "\n  ".join(sorted(uncovered))
    )


def test_every_method_a_route_answers_is_in_the_matrix():
    in_matrix = matrix_methods()
    missing = []
    for pattern in all_patterns():
        if pattern.name not in in_matrix or pattern.methods is None:
            continue
        for method in sorted(pattern.methods - in_matrix[pattern.name]):
            missing.append(f"{method} {pattern.label()}")
    assert not missing, "methods the views answer that no matrix case tries:\n  " + "\n  ".join(missing)


def test_every_matrix_route_exists():
    names = {p.name for p in all_patterns()}
    stale = sorted(set(matrix_methods()) - names)
    assert not stale, f"matrix entries for URL names that no pattern has: {stale}"


def test_every_exemption_matches_a_route_and_gives_a_reason():
    used = {exemption_for(p) for p in all_patterns()}
    unused = sorted(set(EXEMPT) - used)
    assert not unused, f"exemptions that match no URL pattern (remove them): {unused}"
    assert all(reason.strip() for reason in EXEMPT.values())


def test_no_route_is_both_in_the_matrix_and_exempt():
    in_matrix = matrix_methods()
    both = sorted(p.label() for p in all_patterns() if p.name in in_matrix and exemption_for(p) is not None)
    assert not both, f"routes both in the matrix and exempt (drop the exemption): {both}"


def test_the_walk_sees_api_routes_pages_and_third_party_routes_with_their_methods():
    """Guards the meta-test itself: a walk that saw nothing would pass vacuously."""
    patterns = {p.name: p for p in all_patterns() if p.name}
    assert patterns["api:org-detail"].methods == {"GET", "PATCH", "DELETE"}
    assert patterns["api:org-team-member-detail"].methods == {"DELETE"}
    assert "org-overview" in patterns
    assert patterns["account_login"].module.startswith("allauth.")
    assert exemption_for(patterns["account_login"]) == "allauth."
    assert exemption_for(patterns["admin:index"]) == "admin:"
    assert exemption_for(patterns["api:org-detail"]) is None
