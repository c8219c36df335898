"""KServe v2 model metadata and readiness, read by ``tritonclient.http`` from a live portal: the signature in the
protocol's terms (datatypes, -1 for dynamic dimensions), the versions, and 200 / 4xx readiness with the reason."""

from __future__ import annotations

import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from apps.inference import services
from apps.inference.models import DeploymentStatus
from apps.marketplace import services as catalog
from tests.factories import make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server):
    with triton.InferenceServerClient(url=live_server.url.removeprefix("http://")) as client:
        yield client


@pytest.fixture
def auth(world) -> dict:
    return {"Authorization": f"Bearer {make_token(world.user('viewer'))}"}


def test_iris_metadata_has_an_fp32_input_with_a_dynamic_batch_and_its_two_outputs(runnable, client, auth, tmp_path):
    runnable.iris(tmp_path)
    metadata = client.get_model_metadata("acme--iris", headers=auth)
    assert metadata["name"] == "acme--iris"
    assert metadata["versions"] == ["1.0.0"]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]


def test_minilm_metadata_has_three_int64_inputs_and_its_hidden_states(runnable, client, auth):
    runnable.minilm()
    metadata = client.get_model_metadata("acme--minilm", model_version="1.0.0", headers=auth)
    assert metadata["versions"] == ["1.0.0"]
    assert metadata["inputs"] == [
        {"name": name, "datatype": "INT64", "shape": [-1, -1]}
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    assert metadata["outputs"] == [{"name": "last_hidden_state", "datatype": "FP32", "shape": [-1, -1, 384]}]


def test_metadata_lists_published_versions_newest_first_and_one_version_when_named(
    runnable, client, auth, world, tmp_path
):
    first = runnable.iris(tmp_path)
    runnable.iris(tmp_path, model=first.model, label="1.1.0")
    catalog.create_version(model=first.model, actor=world.user("member"), label="2.0.0")  # a draft
    assert client.get_model_metadata("acme--iris", headers=auth)["versions"] == ["1.1.0", "1.0.0"]
    assert client.get_model_metadata("acme--iris", model_version="1.0.0", headers=auth)["versions"] == ["1.0.0"]


def test_a_deployment_is_described_under_its_own_name_with_the_versions_it_serves(
    runnable, client, auth, world, tmp_path
):
    first = runnable.iris(tmp_path)
    second = runnable.iris(tmp_path, model=first.model, label="1.1.0")
    services.create_deployment(
        organization=world.org,
        model=first.model,
        actor=world.user("member"),
        slug="species",
        version=first,
        canary_version=second,
        canary_percent=10,
    )
    metadata = client.get_model_metadata("acme--deployments--species", headers=auth)
    assert metadata["name"] == "acme--deployments--species"
    assert metadata["versions"] == ["1.0.0", "1.1.0"]
    assert metadata["inputs"][0]["name"] == "float_input"


def test_a_validated_version_is_ready_and_a_draft_that_was_never_validated_is_not(
    runnable, client, auth, world, tmp_path
):
    version = runnable.iris(tmp_path)
    catalog.create_version(model=version.model, actor=world.user("member"), label="2.0.0")
    assert client.is_model_ready("acme--iris", headers=auth)
    assert client.is_model_ready("acme--iris", model_version="1.0.0", headers=auth)
    assert not client.is_model_ready("acme--iris", model_version="2.0.0", headers=auth)
    # A draft is described to those who may change the model (a member): not validated, 409 with the reason.
    member = {"Authorization": f"Bearer {make_token(world.user('member'))}"}
    assert not client.is_model_ready("acme--iris", model_version="2.0.0", headers=member)
    with pytest.raises(InferenceServerException) as refused:
        client.get_model_metadata("acme--iris", model_version="2.0.0", headers=member)
    assert refused.value.status() == "409"
    assert "has not passed validation" in refused.value.message()
    with pytest.raises(InferenceServerException) as hidden:  # the viewer does not see drafts
        client.get_model_metadata("acme--iris", model_version="2.0.0", headers=auth)
    assert hidden.value.status() == "404"


def test_a_paused_deployment_is_not_ready(runnable, client, auth, world, tmp_path):
    version = runnable.iris(tmp_path)
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="species", version=version
    )
    assert client.is_model_ready("acme--deployments--species", headers=auth)
    services.update_deployment(deployment=deployment, actor=world.user("member"), status=DeploymentStatus.PAUSED)
    assert not client.is_model_ready("acme--deployments--species", headers=auth)


def test_an_unknown_model_or_version_is_not_ready_and_its_metadata_is_a_404(runnable, client, auth, tmp_path):
    runnable.iris(tmp_path)
    assert not client.is_model_ready("acme--nothing", headers=auth)
    assert not client.is_model_ready("acme--iris", model_version="9.9.9", headers=auth)
    with pytest.raises(InferenceServerException) as refused:
        client.get_model_metadata("acme--iris", model_version="9.9.9", headers=auth)
    assert refused.value.status() == "404"
    assert "has no version “9.9.9”" in refused.value.message()
