"""KServe v2 inference end to end: ``tritonclient.http`` against a live portal, a real prefork worker on Redis.

The iris classifier answers setosa (label 0) for four numbers and MiniLM the same hidden states as ONNX Runtime
run here, whether the tensors travel as binary data (tritonclient's default) or as JSON; a deployment answers
under its own name; the answer names the job and the provider ONNX Runtime really used.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tokenizers import Tokenizer

from apps.analytics.models import UsageEvent
from apps.inference import services
from tests.factories import make_token
from tests.inference import onnx_models
from tests.usage_support import drained

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture
def client(live_server):
    with triton.InferenceServerClient(url=live_server.url.removeprefix("http://")) as client:
        yield client


@pytest.fixture
def auth(world) -> dict:
    return {"Authorization": f"Bearer {make_token(world.user('member'))}"}


def iris_input(rows: list[list[float]], *, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("float_input", [len(rows), 4], "FP32")
    tensor.set_data_from_numpy(np.asarray(rows, dtype=np.float32), binary_data=binary)
    return tensor


def minilm_inputs(sentence: str, *, binary: bool) -> tuple[list[triton.InferInput], dict[str, np.ndarray]]:
    encoding = Tokenizer.from_file(str(onnx_models.minilm_tokenizer_path())).encode(sentence)
    arrays = {
        "input_ids": np.asarray([encoding.ids], dtype=np.int64),
        "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
    }
    tensors = []
    for name, array in arrays.items():
        tensor = triton.InferInput(name, list(array.shape), "INT64")
        tensor.set_data_from_numpy(array, binary_data=binary)
        tensors.append(tensor)
    return tensors, arrays


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_iris_answers_setosa_for_four_numbers(runnable, inference_worker, client, auth, tmp_path, binary):
    runnable.iris(tmp_path)
    result = client.infer("acme--iris", [iris_input([SETOSA, VIRGINICA], binary=binary)], headers=auth)
    assert result.as_numpy("label").tolist() == [0, 2]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    answer = result.get_response()
    assert answer["model_name"] == "acme--iris"
    assert answer["model_version"] == "1.0.0"
    assert answer["parameters"]["provider"] == "CPUExecutionProvider"
    # Served online: the request's usage record names what ran (no job row).
    event = drained(UsageEvent).get(event_id=answer["parameters"]["id"])
    assert (event.kind, event.status_code, event.items) == ("prediction", 200, 2)


def test_minilm_answers_the_hidden_states_onnx_runtime_computes_in_binary_and_in_json(
    runnable, inference_worker, client, auth
):
    runnable.minilm()
    sentence = "I play the guitar every evening."
    expected = None
    for binary in (True, False):
        tensors, arrays = minilm_inputs(sentence, binary=binary)
        outputs = [triton.InferRequestedOutput("last_hidden_state", binary_data=binary)]
        # a fresh dict each call: tritonclient writes Inference-Header-Content-Length into the headers it is given
        headers = dict(auth)
        result = client.infer("acme--minilm", tensors, outputs=outputs, model_version="1.0.0", headers=headers)
        hidden = result.as_numpy("last_hidden_state")
        assert hidden.shape == (1, arrays["input_ids"].shape[1], 384)
        if expected is None:
            session = onnx_models.cpu_session(onnx_models.minilm_path())
            expected = onnx_models.run_model(session, arrays)["last_hidden_state"]
        assert np.allclose(hidden, expected, atol=1e-4), f"binary={binary}"
        assert result.get_response()["model_version"] == "1.0.0"


def test_outputs_come_binary_or_json_each_as_asked_and_the_request_id_is_echoed(
    runnable, inference_worker, client, auth, tmp_path
):
    runnable.iris(tmp_path)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("label", binary_data=True),
    ]
    result = client.infer(
        "acme--iris", [iris_input([SETOSA], binary=True)], outputs=outputs, request_id="req-42", headers=auth
    )
    answer = result.get_response()
    assert answer["id"] == "req-42"
    assert [output["name"] for output in answer["outputs"]] == ["probabilities", "label"]
    probabilities, label = answer["outputs"]
    assert len(probabilities["data"]) == 3 and "parameters" not in probabilities
    assert label["parameters"]["binary_data_size"] == 8 and "data" not in label
    assert result.as_numpy("label").tolist() == [0]


def test_a_deployment_answers_under_its_own_name_with_the_version_it_serves(
    runnable, inference_worker, client, auth, world, tmp_path
):
    version = runnable.iris(tmp_path)
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="species", version=version
    )
    result = client.infer("acme--deployments--species", [iris_input([VIRGINICA], binary=True)], headers=auth)
    assert result.as_numpy("label").tolist() == [2]
    answer = result.get_response()
    assert answer["model_name"] == "acme--deployments--species"
    assert answer["model_version"] == "1.0.0"
    event = drained(UsageEvent).get(event_id=answer["parameters"]["id"])
    assert (event.deployment_id, event.version_id) == (deployment.pk, version.pk)
    assert event.metadata["revision"] == 1
