"""A public deployment of a private organization, run by an outsider on a real inference worker: the REST predict
answer and the KServe v2 infer answer name the deployment and its revision, never the private model or its
versions (as the deployment's REST detail and KServe metadata do, test_whose_prediction_it_is.py); acme's members
get the model's name and version; the run counts against acme, whose admins see it."""

from __future__ import annotations

import json

import pytest

from apps.analytics.models import UsageEvent
from apps.core.access import Visibility
from apps.inference import services
from tests.conftest import api_client_for
from tests.usage_support import drained

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MODEL = "hush-iris"
FLOWER = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}
V2_FLOWER = {"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture
def deployment(runnable, world, tmp_path, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    version = runnable.iris(tmp_path, name=MODEL)
    return services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="species",
        version=version,
        visibility=Visibility.PUBLIC,
    )


def test_the_outsiders_rest_and_kserve_answers_name_the_deployment_and_its_revision(
    world, deployment, inference_worker
):
    outsider = api_client_for(world.user("outsider"))
    rest = outsider.post("/api/v1/orgs/acme/deployments/species/predict", FLOWER, format="json")
    assert rest.status_code == 200, rest.content
    answer = rest.json()
    assert answer["status"] == "succeeded" and answer["outputs"]["label"] == [0]
    assert answer["model"] is None and answer["version"] is None
    assert answer["deployment"] == "acme/species" and answer["revision"] == 1
    assert MODEL not in rest.content.decode()
    v2 = outsider.generic(
        "POST", "/v2/models/acme--deployments--species/infer", json.dumps(V2_FLOWER), "application/json"
    )
    assert v2.status_code == 200, v2.content
    body = v2.json()
    assert body["model_name"] == "acme--deployments--species" and body["model_version"] == "r1"
    assert MODEL not in v2.content.decode()
    # Served online: no job rows; both requests count against the deployment's organization in the usage records.
    events = drained(UsageEvent).filter(organization=world.org, actor=world.user("outsider"), kind="prediction")
    assert events.count() == 2


def test_a_member_gets_the_models_name_and_version_in_both_answers(world, deployment, inference_worker):
    member = api_client_for(world.user("member"))
    rest = member.post("/api/v1/orgs/acme/deployments/species/predict", FLOWER, format="json").json()
    assert rest["model"] == f"acme/{MODEL}" and rest["version"] == "1.0.0" and rest["revision"] == 1
    v2 = member.generic(
        "POST", "/v2/models/acme--deployments--species/infer", json.dumps(V2_FLOWER), "application/json"
    ).json()
    assert v2["model_version"] == "1.0.0"
