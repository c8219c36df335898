"""EXPERIMENT, not the portal: the deployment predict route answered before Django's handler, its middleware and
DRF's dispatch, to measure what they cost an online prediction (benchmarks/experiments/lean_predict.py runs it).

It handles only ``POST /api/v1/orgs/{org}/deployments/{slug}/predict`` with a Bearer token, a JSON body, no query
string, and a run decision this process already holds (``apps.inference.online.access``, made by the portal's own
route through ``restrict()``, keyed by the token and its scope, so only a token the portal's route let through). It
calls the portal's own functions for the rest: the token check, the input checks against the signature, the online
round trip with its usage record. Everything else, a missing decision or any error included, goes to the portal's
application, which answers it as always.

What it leaves out, and a route built this way for real would have to keep: the predict rate limit's windows (it
passes none to the admission script), the HTTP metrics and the security headers the middleware adds, the bounded
JSON parser (depth, lone surrogates), the request size limit before the body is read, the API's error format, and a
fall-back that never runs a request twice (here an error after the request was sent would send it again).
"""

from __future__ import annotations

import io
import re

import bench_wsgi  # noqa: F401 - sets Django up (and the benchmark's URLs) before the imports below
import orjson
from bench_wsgi import application as portal
from django.core.serializers.json import DjangoJSONEncoder

from apps.accounts.authentication import BearerTokenAuthentication
from apps.core import shortlived
from apps.inference import services
from apps.inference.api.views import online_answer, run_online
from apps.inference.online import access
from apps.inference.predictions import read_json_request, require_runnable, sync_timeout

ROUTE = re.compile(r"^/api/v1/orgs/([^/.]+)/deployments/([^/.]+)/predict$")
AUTHENTICATION = BearerTokenAuthentication()
ENCODER = DjangoJSONEncoder()


class LeanRequest:
    """What the portal's functions read of a request: its WSGI environ, path, user and token."""

    def __init__(self, environ: dict) -> None:
        self.META = environ
        self.path = environ.get("PATH_INFO", "")
        self.method = "POST"
        self.user = None
        self.auth = None


def application(environ: dict, start_response):
    route = None
    if environ.get("REQUEST_METHOD") == "POST" and not environ.get("QUERY_STRING"):
        route = ROUTE.match(environ.get("PATH_INFO", ""))
    header = environ.get("HTTP_AUTHORIZATION", "")
    json_body = environ.get("CONTENT_TYPE", "").startswith("application/json")
    if route is None or not header.startswith("Bearer ") or not json_body:
        return portal(environ, start_response)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = LeanRequest(environ)
        request.user, request.auth = AUTHENTICATION.authenticate_token(header[len("Bearer ") :], request)
        token = request.auth
        key = (request.user.pk, token.pk, token.organization_id, token.scope, "deployment", *route.groups())
        decided = access._decisions.get(key)
        if decided is shortlived.MISSING:
            return portal(environ, start_response)
        deployment, shows_model = decided
        version = services.serving_choice(deployment)
        require_runnable(version)
        data = orjson.loads(body)
        prediction = read_json_request(version, data)
        served = run_online(
            request,
            version,
            arrays=prediction.arrays,
            raw=prediction.raw,
            outputs=prediction.options.get("outputs"),
            items=prediction.items,
            deployment=deployment,
            shows_model=shows_model,
            timeout=sync_timeout(data.get("timeout")),
            throttles=[],
        )
        if served is None:
            return portal(environ, start_response)
        answer = online_answer(
            version, *served, deployment=deployment, shows_model=shows_model, encoding=prediction.encoding
        )
        out = orjson.dumps(answer, default=ENCODER.default, option=orjson.OPT_SERIALIZE_NUMPY)
    except Exception:  # the experiment's shortcut: the portal answers it (see the docstring)
        environ["wsgi.input"].seek(0)
        return portal(environ, start_response)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
