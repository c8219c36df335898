"""The predict lane (apps/inference/api/predict_lane.py) under a real gunicorn with the portal's own configuration
(one process of four threads, requests sent four at a time): every persona gets the route's answer every time,
whether the lane or the route gave it; each accepted request wrote one job, no more; a refused one wrote none. The
lane's debug log line (``LOG_LEVEL=DEBUG``) says which requests took it: only those of callers who may run the
deployment, once the route had decided for them. Asynchronous requests: no worker is needed, the jobs wait queued.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.accounts.models import TokenScope
from apps.core.jobs import Job
from apps.inference import services as inference
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests import jobs_support
from tests.factories import make_token
from tests.inference.edge_models import iris_version

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
THREADS = 4
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}
# Who may run a private deployment, from the role table (docs/admin/roles.md).
EXPECTED = {"owner": 202, "admin": 202, "member": 202, "viewer": 403, "outsider": 404, "anonymous": 401}


def post(url: str, token: str | None, body: dict) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_under_gunicorn_every_persona_gets_the_routes_answer_and_each_accepted_request_one_job(
    runnable, world, tmp_path
):
    version = iris_version(runnable)
    deployment = inference.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="prod", version=version
    )
    tokens = {
        persona: None if persona == "anonymous" else make_token(world.user(persona), scope=TokenScope.RUN)
        for persona in EXPECTED
    }
    log = tmp_path / "web.log"
    server, base = jobs_support.serve_portal(tmp_path / "web", threads=THREADS, log=log, env={"LOG_LEVEL": "DEBUG"})
    url = f"{base}/api/v1/orgs/{world.org.slug}/deployments/{deployment.slug}/predict?async=1"
    try:
        jobs_support.wait_for_portal(base)
        answers: dict[str, list[tuple[int, dict]]] = {}
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for persona, token in tokens.items():
                answers[persona] = list(pool.map(lambda _, token=token: post(url, token, IRIS), range(THREADS * 3)))
            refused = list(
                pool.map(lambda _: post(url, tokens["member"], {"inputs": {"nope": [[1.0]]}}), range(THREADS))
            )
    finally:
        jobs_support.stop_portal(server)

    for persona, expected in EXPECTED.items():
        assert [status for status, _ in answers[persona]] == [expected] * THREADS * 3, persona
        if expected != 202:
            assert len({json.dumps(body, sort_keys=True) for _, body in answers[persona]}) == 1, persona
    accepted = {body["job"] for persona in EXPECTED for status, body in answers[persona] if status == 202}
    assert len(accepted) == 3 * THREADS * 3
    assert Job.objects.filter(uuid__in=accepted).count() == len(accepted)
    # nothing written twice, nothing written for a refusal
    assert Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).count() == len(accepted)
    assert [status for status, _ in refused] == [400] * THREADS
    assert all("nope" in json.dumps(body) for _, body in refused)
    lane_lines = [line for line in log.read_text().splitlines() if "predict lane: POST" in line]
    # Each runner's first requests are decided by the route; the rest, and the refused ones, take the lane.
    assert THREADS * 3 <= len(lane_lines) <= 3 * THREADS * 3 + THREADS, len(lane_lines)
