"""What ``tritonclient.http`` reports when the portal refuses a request: the status and the portal's message,
naming the input and the reason (400), the model one may not see (404), may see but not run (403), or the missing
credentials (401, as the REST predict API answers). Nothing reaches a worker: no prediction is written."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from apps.accounts.models import TokenScope
from apps.inference.models import InferenceJob
from tests.factories import make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server):
    with triton.InferenceServerClient(url=live_server.url.removeprefix("http://")) as client:
        yield client


@pytest.fixture
def iris(runnable, tmp_path):
    return runnable.iris(tmp_path)


def bearer(user, **kwargs) -> dict:
    return {"Authorization": f"Bearer {make_token(user, **kwargs)}"}


def tensor(name: str, array: np.ndarray, datatype: str) -> triton.InferInput:
    value = triton.InferInput(name, list(array.shape), datatype)
    value.set_data_from_numpy(array)
    return value


def refusal(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as refused:
        call()
    return refused.value


FOUR = np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)


BAD_INPUTS = [  # (what is sent, what the message must say)
    (
        tensor("petals", FOUR, "FP32"),
        ["inputs.petals: unknown input; the model's inputs are float_input", "inputs.float_input: required"],
    ),
    (
        tensor("float_input", FOUR.astype(np.float64), "FP64"),
        ["inputs.float_input: the model wants FP32, received datatype FP64"],
    ),
    (tensor("float_input", FOUR[:, :3], "FP32"), ["inputs.float_input: dimension 1 is 3, the model wants 4", "[1, 3]"]),
]


def test_a_bad_input_is_a_400_naming_the_input_and_the_reason(iris, client, world):
    for given, words in BAD_INPUTS:  # wrong name, wrong datatype, wrong shape
        refused = refusal(lambda g=given: client.infer("acme--iris", [g], headers=bearer(world.user("member"))))
        assert refused.status() == "400"
        for word in words:
            assert word in refused.message()
    assert not InferenceJob.objects.exists()


def test_an_unknown_model_is_a_404_that_says_how_names_are_made(iris, client, world):
    refused = refusal(
        lambda: client.infer("acme--lily", [tensor("float_input", FOUR, "FP32")], headers=bearer(world.user("member")))
    )
    assert refused.status() == "404"
    assert "No model “acme--lily” that you may view" in refused.message()
    assert "{owner}--{model}" in refused.message()


def test_a_private_model_is_a_404_to_an_outsider_and_to_anyone_without_a_token(iris, client, world):
    for headers in (bearer(world.user("outsider")), None):
        assert refusal(lambda h=headers: client.get_model_metadata("acme--iris", headers=h)).status() == "404"
        assert not client.is_model_ready("acme--iris", headers=headers)
    refused = refusal(lambda: client.infer("acme--iris", [tensor("float_input", FOUR, "FP32")]))
    assert refused.status() == "401"
    assert "credentials were not provided" in refused.message()


def test_a_viewer_may_read_the_metadata_but_not_run_the_model(iris, client, world):
    viewer = bearer(world.user("viewer"))
    assert client.get_model_metadata("acme--iris", headers=viewer)["name"] == "acme--iris"
    refused = refusal(lambda: client.infer("acme--iris", [tensor("float_input", FOUR, "FP32")], headers=viewer))
    assert refused.status() == "403"
    assert "You may view acme/iris but not run it" in refused.message()
    read_only = bearer(world.user("member"), scope=TokenScope.READ)
    refused = refusal(lambda: client.infer("acme--iris", [tensor("float_input", FOUR, "FP32")], headers=read_only))
    assert refused.status() == "403"
    assert "this action needs “run”" in refused.message()
    assert not InferenceJob.objects.exists()


def test_a_triton_route_the_portal_does_not_serve_is_a_404_the_client_can_read(iris, client, world):
    refused = refusal(lambda: client.get_model_config("acme--iris", headers=bearer(world.user("member"))))
    assert refused.status() == "404"
    assert "/v2/models/acme--iris/config is not part of what this server supports" in refused.message()
