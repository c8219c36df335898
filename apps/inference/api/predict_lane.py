"""The predict routes' lane: a request this process already let through is answered without Django's URL
resolution, most of the middleware and DRF's dispatch.

``POST /api/v1/orgs/{org}/deployments/{slug}/predict`` and a model's ``.../predict`` routes (a version named, or the
latest published) are the data plane's busiest routes (issue #15). Each request on them paid for Django's URL
resolution, the middleware for pages and sessions (static files, sessions, CSRF, the session's user, messages,
allauth, sign-in lockout, MFA, single sign-on, axes: none of them acts on a request with a Bearer token and no
session) and DRF's dispatch (its request, content negotiation, the authentication and permission loops) before the
view did anything.

This middleware stands after ``QueueUnavailableMiddleware`` and before all of those (settings.MIDDLEWARE), so what
every answer carries or goes through applies to its answers as to any route's: metrics, security headers,
``X-Frame-Options``, ``Content-Length``, the audit context, the 503 for a Redis that does not answer. The
middleware after it never sees a request the lane answers; a request it does not take goes through all of it. It
takes a request only when it can answer it exactly as the route would, without reading anything first:

* ``POST`` on one of the routes, with ``Authorization: Bearer <token>``, a JSON body, an ``Accept`` that DRF answers
  with JSON, and no ``format`` override;
* a token this process checked within the short-lived bound that is still usable
  (``BearerTokenAuthentication.authenticate_known``);
* the caller's run decision for what the route names, held by this process (``apps.inference.online.access.held``):
  made by ``restrict()`` on the route itself, for this user, token, scope and binding.

It then sets the route's view up as DRF's dispatch would (the token as the request's authentication, the JSON
renderer) and runs its own steps: the permission check, ``post``, the exception handler, ``finalize_response``. So
the inputs, the rate limits, the two paths, the answers and every error are the route's own. Anything else, the
first request of a token in a process included, goes on to the route, which answers it as always. The lane reads
nothing and counts nothing before it decides, so a request it leaves is never counted or sent twice.

``INFERENCE_PREDICT_LANE=false`` turns it off (every request then takes the route; docs/admin/configuration.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from rest_framework.request import Request

from apps.accounts.authentication import BearerTokenAuthentication
from apps.core import shortlived
from apps.core.request_metrics import PrometheusAfterMiddleware
from apps.inference.online import access


class LaneRoute(NamedTuple):
    """A predict route: its URL pattern, a path Django resolves to it, and the run decision it remembers."""

    pattern: re.Pattern
    example: str
    decision: Callable[[dict[str, str]], tuple]


# The routes' URL patterns (apps/inference/api/urls.py, ``str`` converters), under the API's prefix, each with the
# key its view remembers the run decision under (``access.remembered``); tests/inference/test_predict_lane.py checks
# that Django resolves every path one of these matches to that route, and no other.
ROUTES = (
    LaneRoute(
        re.compile(r"^/api/v1/orgs/(?P<org_slug>[^/]+)/deployments/(?P<slug>[^/]+)/predict$"),
        "/api/v1/orgs/o/deployments/d/predict",
        lambda kwargs: ("deployment", kwargs["org_slug"], kwargs["slug"]),
    ),
    LaneRoute(
        re.compile(r"^/api/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/versions/(?P<label>[^/]+)/predict$"),
        "/api/v1/models/o/m/versions/v/predict",
        lambda kwargs: ("version", kwargs["owner"], kwargs["name"], kwargs["label"]),
    ),
    LaneRoute(
        re.compile(r"^/api/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predict$"),
        "/api/v1/models/o/m/predict",
        lambda kwargs: ("version", kwargs["owner"], kwargs["name"], None),
    ),
)
JSON_ACCEPTS = frozenset(("", "*/*", "application/json"))
AUTHENTICATION = BearerTokenAuthentication()
logger = logging.getLogger(__name__)


class PredictLane:
    """Answers the predict routes for requests this process already let through (see the module)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        # The metrics the last middleware records for every answer (django_prometheus's, with the route's name).
        self.metrics = PrometheusAfterMiddleware(get_response)
        self._resolved: dict[str, ResolverMatch] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        answered = self.answer(request) if settings.INFERENCE_PREDICT_LANE else None
        return answered if answered is not None else self.get_response(request)

    def resolved(self, route: LaneRoute) -> ResolverMatch:
        """The route as Django resolves it (its view, name and namespace), once per process."""
        found = self._resolved.get(route.example)
        if found is None:
            found = self._resolved[route.example] = resolve(route.example)
        return found

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        """The route's answer, or None to let the route answer (nothing read, nothing counted)."""
        if request.method != "POST" or not request.path_info.endswith("/predict"):
            return None
        for route in ROUTES:
            matched = route.pattern.match(request.path_info)
            if matched is not None:
                break
        else:
            return None
        meta = request.META
        scheme, _, raw = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not raw or " " in raw.strip():
            return None
        if meta.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
            return None
        if meta.get("HTTP_ACCEPT", "").strip().lower() not in JSON_ACCEPTS or "format" in request.GET:
            return None
        known = AUTHENTICATION.authenticate_known(raw.strip(), request)
        if known is None:
            return None
        user, token = known
        kwargs = matched.groupdict()
        if access.held(user, token, route.decision(kwargs)) is shortlived.MISSING:
            return None
        return self.serve(request, user, token, self.resolved(route), kwargs)

    def serve(
        self, request: HttpRequest, user: Any, token: Any, route: ResolverMatch, kwargs: dict[str, str]
    ) -> HttpResponse:
        """The route's view run as DRF's dispatch runs it, for a caller already authenticated."""
        if logger.isEnabledFor(logging.DEBUG):  # which requests took the lane (LOG_LEVEL=DEBUG)
            logger.debug("predict lane: %s %s", request.method, request.path)
        request.resolver_match = ResolverMatch(
            route.func, (), kwargs, route.url_name, route.app_names, route.namespaces, route.route
        )
        self.metrics.process_request(request)
        self.metrics.process_view(request, route.func, (), kwargs)
        view = route.func.view_class(**route.func.view_initkwargs)
        view.args, view.kwargs, view.format_kwarg = (), kwargs, None
        drf_request = Request(
            request,
            parsers=view.get_parsers(),
            authenticators=(AUTHENTICATION,),
            negotiator=view.get_content_negotiator(),
            parser_context={"view": view, "args": (), "kwargs": kwargs},
        )
        drf_request._authenticator = AUTHENTICATION
        drf_request.user, drf_request.auth = user, token
        renderer = view.get_renderers()[0]  # the API's JSON renderer: the one DRF picks for these Accept values
        drf_request.accepted_renderer, drf_request.accepted_media_type = renderer, renderer.media_type
        drf_request.version, drf_request.versioning_scheme = None, None
        view.request, view.headers = drf_request, view.default_response_headers
        try:
            try:
                view.check_permissions(drf_request)
                view.check_throttles(drf_request)
                response = view.post(drf_request, **kwargs)
            except Exception as exc:
                response = view.handle_exception(exc)  # the API's errors; anything else is raised again
            response = view.finalize_response(drf_request, response, **kwargs)
            response.render()
        except Exception as exc:  # counted as the route's would be, then Django's handler answers it (500)
            self.metrics.process_exception(request, exc)
            raise
        return self.metrics.process_response(request, response)
