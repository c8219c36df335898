"""Pipelines run as one job on a real prefork worker (Celery on Redis): a 2-step chain (the iris classifier, then
ArgMax over its probabilities) and a 3-step DAG (two steps read the same input, a third adds their outputs), each
answered synchronously with its outputs and every step's version, provider and milliseconds; a failing step fails
the run naming the step, after the steps before it were timed."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.jobs import Job, JobStatus
from apps.inference.models import PipelineRun
from apps.inference.pipelines import save_pipeline
from tests.conftest import api_client_for
from tests.inference.onnx_models import run_model
from tests.inference.pipeline_models import LINEAR_WEIGHTS, iris_bytes, make_version, model_bytes, ref

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FLOWERS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def iris_probabilities(features) -> np.ndarray:
    """The classifier's probabilities computed here, straight through ONNX Runtime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(iris_bytes(), providers=["CPUExecutionProvider"])
    return run_model(session, {"float_input": np.asarray(features, dtype=np.float32)})["probabilities"]


def run(world, slug: str, inputs: dict, **query):
    client = api_client_for(world.user("member"))
    suffix = "?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else ""
    return client.post(f"/api/v1/orgs/acme/pipelines/{slug}/run{suffix}", {"inputs": inputs}, format="json")


def assert_timed(step: dict, name: str, version) -> None:
    assert step["name"] == name
    assert step["version"] == str(version.uuid)
    assert step["reference"] == ref(version)
    assert step["provider"] == "CPUExecutionProvider"
    assert step["ms"] > 0 and step["run_ms"] > 0
    assert step["ms"] >= step["run_ms"]


def test_a_two_step_chain_answers_the_class_index_and_each_steps_timing(world, inference_worker):
    iris = make_version(world, "iris", iris_bytes())
    argmax = make_version(world, "argmax", model_bytes("argmax"))
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[
            {"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.features"}},
            {"name": "pick", "version": ref(argmax), "inputs": {"probabilities": "classify.probabilities"}},
        ],
        outputs={"index": "pick.index", "probabilities": "classify.probabilities"},
        actor=world.user("member"),
    )
    response = run(world, "species", {"features": FLOWERS})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "succeeded"
    expected = iris_probabilities(FLOWERS)
    assert answer["outputs"]["index"] == expected.argmax(axis=1).tolist() == [0, 2, 1]
    assert np.allclose(answer["outputs"]["probabilities"], expected, atol=1e-6)
    first, second = answer["steps"]
    assert_timed(first, "classify", iris)
    assert_timed(second, "pick", argmax)
    job = Job.objects.get(uuid=answer["job"])
    assert job.status == JobStatus.SUCCEEDED
    assert [step["name"] for step in PipelineRun.objects.get(job=job).steps] == ["classify", "pick"]
    later = api_client_for(world.user("member")).get(answer["url"])
    assert later.status_code == 200
    assert later.json()["outputs"]["index"] == [0, 2, 1]
    assert later.json()["steps"] == answer["steps"]


def test_a_dag_whose_two_steps_read_the_same_input_and_a_third_adds_them(world, inference_worker):
    iris = make_version(world, "iris", iris_bytes())
    linear = make_version(world, "linear", model_bytes("linear"))
    add = make_version(world, "add", model_bytes("add"))
    save_pipeline(
        organization=world.org,
        slug="blend",
        steps=[
            {"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.features"}},
            {"name": "project", "version": ref(linear), "inputs": {"features": "input.features"}},
            {"name": "combine", "version": ref(add), "inputs": {"a": "classify.probabilities", "b": "project.y"}},
        ],
        actor=world.user("member"),
    )
    response = run(world, "blend", {"features": {"b64": _b64(FLOWERS), "dtype": "float32", "shape": [3, 4]}})
    assert response.status_code == 200, response.content
    answer = response.json()
    features = np.asarray(FLOWERS, dtype=np.float32)
    expected = iris_probabilities(FLOWERS) + features @ LINEAR_WEIGHTS
    assert list(answer["outputs"]) == ["sum"]
    assert np.allclose(answer["outputs"]["sum"], expected, atol=1e-5)
    assert [step["name"] for step in answer["steps"]] == ["classify", "project", "combine"]
    assert_timed(answer["steps"][2], "combine", add)


def test_a_step_that_fails_fails_the_run_naming_it_after_timing_the_steps_before(world, inference_worker):
    iris = make_version(world, "iris", iris_bytes())
    reshape = make_version(world, "reshape", model_bytes("reshape"))
    save_pipeline(
        organization=world.org,
        slug="fragile",
        steps=[
            {"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.features"}},
            {"name": "squeeze", "version": ref(reshape), "inputs": {"x": "classify.probabilities"}},
        ],
        actor=world.user("member"),
    )
    response = run(world, "fragile", {"features": FLOWERS})  # 3 rows cannot reshape into [2, 3]
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith("steps[1] (squeeze) on acme/reshape@1.0.0 failed:")
    job = Job.objects.get(kind="inference.pipeline")
    assert job.status == JobStatus.FAILED
    assert [step["name"] for step in PipelineRun.objects.get(job=job).steps] == ["classify"]
    detail = api_client_for(world.user("member")).get(f"/api/v1/pipeline-runs/{job.uuid}/").json()
    assert detail["status"] == "failed" and detail["steps"][0]["provider"] == "CPUExecutionProvider"


def _b64(rows) -> str:
    import base64

    return base64.b64encode(np.asarray(rows, dtype="<f4").tobytes()).decode()
