"""The deployment predict route's lane (apps/inference/api/predict_lane.py) answers exactly as the route does.

A request takes the lane only when this process already let its token through and holds the caller's run decision
for the deployment; everything else goes to the route. Each test below makes the lane's answer and the route's
answer to the same request and compares them, and checks which of the two answered (``lane_answers`` counts the
lane's). Asynchronous requests need no worker: the job is written and queued, nothing runs. The online path on a
real worker takes the lane in tests/inference/test_online_predictions_on_a_real_worker.py and the other tests that
send a token twice.
"""

from __future__ import annotations

import os
import time

import pytest
from django.urls import Resolver404, resolve
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from apps.accounts.models import TokenScope
from apps.core.jobs import Job
from apps.inference import services as inference
from apps.inference.api import predict_lane
from tests.factories import make_token
from tests.inference.edge_models import iris_version
from tests.jobs_support import wait_for

pytestmark = pytest.mark.django_db
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}
ROUTE_NAME = "api:deployment-predict"


@pytest.fixture(autouse=True)
def listening_for_invalidations():
    """This process listens for other processes' invalidations before the first decision is kept: the listener
    forgets every decision when it starts (apps/core/shortlived.py), which would drop the first one kept."""
    from apps.core import shortlived

    listener = shortlived._listener
    if listener is not None and listener[0] == os.getpid() and listener[1].is_alive():
        return
    before = shortlived.generation()
    shortlived.ensure_listener()
    wait_for(lambda: shortlived.generation() != before, timeout=10, what="the invalidation listener")


@pytest.fixture
def lane_answers(monkeypatch) -> list[str]:
    """The paths the lane answered, in order."""
    answered: list[str] = []
    serve = predict_lane.PredictLane.serve

    def counting(self, request, *args, **kwargs):
        answered.append(request.path)
        return serve(self, request, *args, **kwargs)

    monkeypatch.setattr(predict_lane.PredictLane, "serve", counting)
    return answered


@pytest.fixture
def deployment(runnable, world):
    version = iris_version(runnable)
    return inference.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="prod", version=version
    )


def url(deployment, query: str = "async=1") -> str:
    path = f"/api/v1/orgs/{deployment.organization.slug}/deployments/{deployment.slug}/predict"
    return f"{path}?{query}" if query else path


def client_with(raw: str | None) -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, deployment, body=IRIS, *, query: str = "async=1", **extra):
    if isinstance(body, (bytes, str)):
        return client.post(url(deployment, query), body, content_type="application/json", **extra)
    return client.post(url(deployment, query), body, format="json", **extra)


def comparable(response) -> dict:
    """What a client reads of an answer, less what differs from one request to the next (the job's id)."""
    body = response.json()
    if response.status_code == 202:
        body = {**body, "job": "<job>", "url": body["url"].rsplit("/", 2)[0]}
    headers = {
        name: response.headers.get(name)
        for name in (
            "Content-Type",
            "Allow",
            "Vary",
            "X-Frame-Options",
            "X-Content-Type-Options",
            "Referrer-Policy",
            "Cross-Origin-Opener-Policy",
            "Retry-After",
            "Content-Length",
            "Set-Cookie",
        )
    }
    return {"status": response.status_code, "body": body, "headers": headers}


LANE_ROUTES = {"api:deployment-predict", "api:model-version-predict", "api:model-predict"}


def test_the_lane_takes_only_paths_that_django_resolves_to_one_of_its_routes():
    paths = [
        "/api/v1/orgs/acme/deployments/prod/predict",
        "/api/v1/orgs/a.b/deployments/c-d_e/predict",
        "/api/v1/orgs/acme/deployments/prod/predict/",
        "/api/v1/orgs/acme/deployments/prod/predict/x",
        "/api/v1/orgs/acme/deployments//predict",
        "/api/v1/orgs/acme/x/deployments/prod/predict",
        "/api/v1/orgs/acme/deployments/prod/predictx",
        "/api/v2/orgs/acme/deployments/prod/predict",
        "/api/v1/orgs/%20/deployments/é/predict",
        "/api/v1/orgs/acme/deployments/prod/",
        "/api/v1/models/acme/iris/predict",
        "/api/v1/models/acme/iris/versions/1.0.0/predict",
        "/api/v1/models/acme/iris/versions/1.0.0/predict/",
        "/api/v1/models/acme/iris/versions//predict",
        "/api/v1/models/acme/versions/predict",
        "/api/v1/models/acme/iris/files/predict",
        "/api/v1/models/acme/predict",
        "/api/v1/models/acme/iris/x/y/z/predict",
        "/api/v1/v2/models/iris/infer",
    ]
    for path in paths:
        try:
            name = resolve(path).view_name
        except Resolver404:
            name = None
        matched = [route for route in predict_lane.ROUTES if route.pattern.match(path)]
        assert len(matched) <= 1, path
        if matched:
            assert name == resolve(matched[0].example).view_name, path
        assert bool(matched) == (name in LANE_ROUTES), path


def test_each_lane_route_remembers_its_decision_under_its_views_key():
    assert [resolve(route.example).view_name for route in predict_lane.ROUTES] == [
        "api:deployment-predict",
        "api:model-version-predict",
        "api:model-predict",
    ]


def test_a_tokens_second_request_takes_the_lane_and_gets_the_routes_answer(world, deployment, lane_answers):
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    first = post(client, deployment)
    assert lane_answers == []  # the route decided: nothing was held yet
    second = post(client, deployment)
    assert len(lane_answers) == 1
    assert first.status_code == second.status_code == 202
    assert comparable(first) == comparable(second)
    assert second.headers["Location"] == second.json()["url"]
    assert Job.objects.filter(uuid=second.json()["job"]).exists()


@pytest.mark.parametrize(
    ("case", "body", "query", "extra"),
    [
        ("accepted", IRIS, "async=1", {}),
        ("accepted with a Prefer header", IRIS, "", {"HTTP_PREFER": "respond-async"}),
        ("a wrong dtype", {"inputs": {"float_input": [["a", "b", "c", "d"]]}}, "async=1", {}),
        ("a wrong shape", {"inputs": {"float_input": [1.0, 2.0]}}, "async=1", {}),
        ("an unknown input", {"inputs": {"nope": [[1.0]]}}, "async=1", {}),
        ("an unknown field", {**IRIS, "extra": 1}, "async=1", {}),
        ("no inputs", {}, "async=1", {}),
        ("not an object", [1, 2], "async=1", {}),
        ("malformed JSON", b'{"inputs": ', "async=1", {}),
        ("JSON nested too deep", b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", "async=1", {}),
        ("a lone surrogate", b'{"inputs": {"float_input": "\\ud83d"}}', "async=1", {}),
        ("a bad timeout", {**IRIS, "timeout": "soon"}, "", {}),
        ("a bad webhook", {**IRIS, "webhook_url": "ftp://x"}, "async=1", {}),
        ("a bad encoding", {**IRIS, "encoding": "rot13"}, "async=1", {}),
    ],
)
def test_the_lane_answers_each_request_as_the_route_does(
    world, deployment, lane_answers, settings, case, body, query, extra
):
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    assert post(client, deployment).status_code == 202  # the route decides; the lane now holds the decision
    settings.INFERENCE_PREDICT_LANE = False
    by_route = post(client, deployment, body, query=query, **extra)
    settings.INFERENCE_PREDICT_LANE = True
    jobs_before = Job.objects.count()
    by_lane = post(client, deployment, body, query=query, **extra)
    assert lane_answers == [url(deployment, "")], case
    assert comparable(by_lane) == comparable(by_route), case
    if by_lane.status_code >= 400:
        assert Job.objects.count() == jobs_before, case  # a refused request leaves nothing behind


@pytest.mark.parametrize("route", ["a version named", "the latest published version"])
@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("accepted", IRIS),
        ("a wrong dtype", {"inputs": {"float_input": [["a", "b", "c", "d"]]}}),
        ("an unknown field", {**IRIS, "extra": 1}),
        ("malformed JSON", b'{"inputs": '),
    ],
)
def test_a_models_routes_take_the_lane_with_the_routes_answers(
    world, runnable, lane_answers, settings, route, case, body
):
    version = iris_version(runnable)
    path = f"/api/v1/models/{world.org.slug}/{version.model.name}"
    path += f"/versions/{version.label}/predict" if route == "a version named" else "/predict"

    def send(client):
        if isinstance(body, bytes):
            return client.post(f"{path}?async=1", body, content_type="application/json")
        return client.post(f"{path}?async=1", body, format="json")

    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    # the route decides; the lane now holds the decision
    assert client.post(f"{path}?async=1", IRIS, format="json").status_code == 202
    settings.INFERENCE_PREDICT_LANE = False
    by_route = send(client)
    settings.INFERENCE_PREDICT_LANE = True
    lane_answers.clear()
    by_lane = send(client)
    assert lane_answers == [path], case
    assert comparable(by_lane) == comparable(by_route), case


def test_the_lane_counts_the_rate_limit_once_per_request(world, deployment, lane_answers, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "predict": "3/minute"},
    }
    from apps.inference.api.views import PredictThrottle

    rates = PredictThrottle.THROTTLE_RATES  # put back as it was: api_settings holds the test's rates until teardown
    PredictThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    try:
        client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
        answers = [post(client, deployment).status_code for _ in range(4)]
    finally:
        PredictThrottle.THROTTLE_RATES = rates
    assert answers == [202, 202, 202, 429]
    assert len(lane_answers) == 3  # the second request on: the fourth is refused by the lane, as the route would


def answered(status: str) -> float:
    labels = {"status": status, "view": ROUTE_NAME, "method": "POST"}
    return REGISTRY.get_sample_value("django_http_responses_total_by_status_view_method_total", labels) or 0.0


def test_the_lanes_answers_are_counted_in_the_routes_metrics(world, deployment, lane_answers):
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    post(client, deployment)
    before = answered("202"), answered("400")
    post(client, deployment)
    post(client, deployment, {"inputs": {"nope": [[1.0]]}})
    assert len(lane_answers) == 2
    assert (answered("202"), answered("400")) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("case", "extra", "query"),
    [
        ("an Accept that DRF answers in HTML", {"HTTP_ACCEPT": "text/html"}, "async=1"),
        ("a format override", {}, "async=1&format=json"),
    ],
)
def test_requests_the_lane_cannot_answer_the_same_way_go_to_the_route(
    world, deployment, lane_answers, case, extra, query
):
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    post(client, deployment)
    response = post(client, deployment, query=query, **extra)
    assert lane_answers == [], case
    assert response.status_code == 202, case


def test_a_session_never_takes_the_lane(world, deployment, lane_answers):
    client = APIClient()
    client.force_login(world.user("member"))
    assert [post(client, deployment).status_code for _ in range(2)] == [202, 202]
    assert lane_answers == []


def test_a_revoked_token_is_refused_by_the_route_at_once(world, deployment, lane_answers):
    from apps.accounts.models import ApiToken
    from apps.accounts.services import revoke_api_token

    raw = make_token(world.user("member"), scope=TokenScope.RUN)
    client = client_with(raw)
    post(client, deployment)
    assert post(client, deployment).status_code == 202
    assert len(lane_answers) == 1
    revoke_api_token(token=ApiToken.objects.get(user=world.user("member")), by=world.user("member"))
    response = post(client, deployment)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert len(lane_answers) == 1  # the route refused it: the revocation made this process forget the token


def test_a_token_revoked_behind_the_portals_back_is_refused_within_the_bound(world, deployment, lane_answers, settings):
    from django.db import connection
    from django.utils import timezone

    from apps.accounts.models import ApiToken

    settings.SHORT_LIVED_CACHE_SECONDS = 0.6
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    post(client, deployment)
    with connection.cursor() as cursor:  # no signal, no invalidation: only the bound ends the remembered check
        cursor.execute(f"UPDATE {ApiToken._meta.db_table} SET revoked_at = %s", [timezone.now()])
    assert post(client, deployment).status_code == 202  # remembered, as the bound allows
    assert len(lane_answers) == 1
    time.sleep(0.7)
    response = post(client, deployment)
    assert (response.status_code, response.json()["code"]) == (401, "token_revoked")
    assert len(lane_answers) == 1


def test_the_setting_turns_the_lane_off(world, deployment, lane_answers, settings):
    settings.INFERENCE_PREDICT_LANE = False
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    assert [post(client, deployment).status_code for _ in range(3)] == [202, 202, 202]
    assert lane_answers == []


# Who may run a private deployment, from the role table (docs/admin/roles.md): members and above run it, a viewer
# sees it but may not run it, an outsider does not see it, anonymous callers must sign in.
EXPECTED = {"owner": 202, "admin": 202, "member": 202, "viewer": 403, "outsider": 404, "anonymous": 401}


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_each_persona_gets_the_same_answer_twice_and_only_runners_take_the_lane(
    world, deployment, lane_answers, persona
):
    raw = None if persona == "anonymous" else make_token(world.user(persona), scope=TokenScope.RUN)
    client = client_with(raw)
    answers = [post(client, deployment) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [EXPECTED[persona]] * 3
    assert len({str(comparable(answer)) for answer in answers}) == 1
    assert len(lane_answers) == (2 if EXPECTED[persona] == 202 else 0)


def test_a_read_scoped_token_is_refused_every_time(world, deployment, lane_answers):
    client = client_with(make_token(world.user("member"), scope=TokenScope.READ))
    answers = [post(client, deployment) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [403, 403]
    assert answers[1].json()["code"] == "insufficient_scope"
    assert lane_answers == []


def test_the_lane_stands_after_what_every_answer_needs_and_before_the_page_middleware(settings):
    """settings.MIDDLEWARE: the metrics, security headers, X-Frame-Options, Content-Length, the audit context and the
    Redis-outage answer run for the lane's answers; the middleware for pages and sessions (none of which acts on a
    Bearer request) runs only for what the lane leaves to the routes."""
    order = list(settings.MIDDLEWARE)
    lane = order.index("apps.inference.api.predict_lane.PredictLane")
    before = {
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "django.middleware.common.CommonMiddleware",
        "apps.audit.middleware.AuditContextMiddleware",
        "apps.core.middleware.QueueUnavailableMiddleware",
    }
    after = {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "allauth.account.middleware.AccountMiddleware",
        "axes.middleware.AxesMiddleware",
    }
    assert set(order[:lane]) == before
    assert after <= set(order[lane + 1 :])
    assert order[-1] == "apps.core.request_metrics.PrometheusAfterMiddleware"


def test_a_lane_answer_sets_no_cookie_and_varies_on_nothing_a_session_would(world, deployment, lane_answers):
    """A Bearer request that also carries a session cookie and a CSRF cookie: the lane answers it (the token decides,
    as the route's authentication does) without reading or renewing either cookie."""
    client = client_with(make_token(world.user("member"), scope=TokenScope.RUN))
    assert post(client, deployment).status_code == 202
    client.cookies["sessionid"] = "not-a-session"
    client.cookies["csrftoken"] = "x" * 32
    answered = post(client, deployment)
    assert lane_answers == [url(deployment, "")]
    assert answered.status_code == 202
    assert "Set-Cookie" not in answered.headers
    assert "Cookie" not in answered.headers.get("Vary", "")
    assert answered.headers["X-Frame-Options"] == "DENY"
    assert int(answered.headers["Content-Length"]) == len(answered.content)
