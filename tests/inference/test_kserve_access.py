"""Who may use the v2 routes, as the REST API decides (DESIGN.md's role table through restrict()): metadata and
readiness need ``view``, infer needs ``run`` and a token with the ``run`` scope; a deployment is judged on its own
rights; a public model is read by anyone and run by anyone signed in, counted against their own organization."""

from __future__ import annotations

import json

import pytest

from apps.accounts.models import TokenScope
from apps.core.access import Visibility
from apps.inference import services
from apps.inference.models import InferenceJob
from apps.organizations.models import Organization
from tests.conftest import api_client_for

IRIS_BODY = {"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def infer(client, name: str, body: dict | None = None):
    return client.generic("POST", f"/v2/models/{name}/infer", json.dumps(body or IRIS_BODY), "application/json")


@pytest.fixture
def deployment(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="species", version=version
    )


def test_anyone_reads_a_public_models_metadata_but_running_it_needs_a_token(runnable, tmp_path):
    runnable.iris(tmp_path, visibility=Visibility.PUBLIC)
    anonymous = api_client_for(None)
    assert anonymous.get("/v2/models/acme--iris").json()["inputs"][0]["name"] == "float_input"
    assert anonymous.get("/v2/models/acme--iris/ready").json() == {"name": "acme--iris", "ready": True}
    response = infer(anonymous, "acme--iris")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"] == "Authentication credentials were not provided."
    assert not InferenceJob.objects.exists()


def test_an_outsider_runs_a_public_model_counted_against_their_own_organization(runnable, world, tmp_path):
    runnable.iris(tmp_path, visibility=Visibility.PUBLIC)
    outsider = world.user("outsider")
    body = {**IRIS_BODY, "parameters": {"timeout": 0}}  # answer at once: no worker runs in this test
    response = infer(api_client_for(outsider), "acme--iris", body)
    assert response.status_code == 504, response.content
    inference = InferenceJob.objects.select_related("job__organization").get()
    assert f"/api/v1/predictions/{inference.job.uuid}/" in response.json()["error"]
    assert inference.job.organization == Organization.objects.get(personal_owner=outsider)
    assert inference.job.creator == outsider


def test_a_deployment_is_viewed_by_a_viewer_run_by_a_member_and_hidden_from_an_outsider(deployment, world):
    viewer = api_client_for(world.user("viewer"))
    assert viewer.get("/v2/models/acme--deployments--species").status_code == 200
    response = infer(viewer, "acme--deployments--species")
    assert response.status_code == 403
    assert response.json()["error"] == "You may view the deployment acme/species but not run it."
    outsider = api_client_for(world.user("outsider"))
    assert outsider.get("/v2/models/acme--deployments--species/ready").status_code == 404
    assert infer(outsider, "acme--deployments--species").status_code == 404
    assert not InferenceJob.objects.exists()


def test_a_deployment_picks_its_own_version(deployment, world):
    response = infer(api_client_for(world.user("member")), "acme--deployments--species/versions/1.0.0")
    assert response.status_code == 400
    assert "model_version: a deployment picks its own version" in response.json()["error"]


def test_a_read_token_reads_metadata_and_a_token_bound_elsewhere_sees_nothing_of_acme(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    owner = world.user("owner")
    read_only = api_client_for(owner, scope=TokenScope.READ)
    assert read_only.get("/v2/models/acme--iris").status_code == 200
    response = infer(read_only, "acme--iris")
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    elsewhere = api_client_for(owner, organization=Organization.objects.get(personal_owner=owner))
    assert elsewhere.get("/v2/models/acme--iris").status_code == 404
    assert infer(elsewhere, "acme--iris").status_code == 404


def test_health_and_server_metadata_ignore_credentials_even_bad_ones(db):
    client = api_client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer gpux_nothing_wrong")
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").json()["name"] == "gpux-portal"
