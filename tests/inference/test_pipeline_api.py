"""The pipelines API without a worker: saving answers the pipeline with its versions as ``owner/name@label`` and the
inputs it takes; refusals are 400s naming the field path; changes are validated again as a whole; a run's inputs
are checked against the pipeline's inputs before any job is written."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.core.jobs import Job
from apps.inference.models import Pipeline, PipelineRun
from apps.inference.pipelines import PIPELINE_KIND
from tests.conftest import api_client_for
from tests.inference.pipeline_models import iris_bytes, make_version, model_bytes, ref

pytestmark = pytest.mark.django_db

LIST = "/api/v1/orgs/acme/pipelines/"


@pytest.fixture
def versions(world):
    return {
        "iris": make_version(world, "iris", iris_bytes()),
        "argmax": make_version(world, "argmax", model_bytes("argmax")),
        "ids": make_version(world, "ids", model_bytes("ids")),
    }


def body(versions, second="argmax", mapping=None, **extra):
    return {
        "slug": "species",
        "steps": [
            {"name": "iris", "version": ref(versions["iris"]), "inputs": {"float_input": "input.features"}},
            {
                "name": "pick",
                "version": ref(versions[second]),
                "inputs": mapping or {"probabilities": "iris.probabilities"},
            },
        ],
        **extra,
    }


def test_a_member_saves_a_pipeline_and_reads_it_back_with_references_and_inputs(world, versions):
    client = api_client_for(world.user("member"))
    response = client.post(LIST, body(versions, description="Species index"), format="json")
    assert response.status_code == 201, response.content
    saved = response.json()
    assert [step["version"] for step in saved["steps"]] == ["acme/iris@1.0.0", "acme/argmax@1.0.0"]
    assert saved["steps"][1]["version_uuid"] == str(versions["argmax"].uuid)
    assert saved["inputs"] == [{"name": "features", "elem_type": "float32", "shape": [None, 4]}]
    assert saved["outputs"] == {"index": "pick.index"}
    assert saved["run_url"].endswith("/api/v1/orgs/acme/pipelines/species/run")
    viewer = api_client_for(world.user("viewer")).get(f"{LIST}species/")
    assert viewer.status_code == 200
    assert viewer.json()["steps"] == saved["steps"]
    listed = api_client_for(world.user("viewer")).get(LIST).json()
    assert [item["slug"] for item in listed["results"]] == ["species"]


def test_a_wrong_mapping_answers_400_under_its_field_path_and_saves_nothing(world, versions):
    client = api_client_for(world.user("member"))
    response = client.post(LIST, body(versions, second="ids", mapping={"ids": "iris.probabilities"}), format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["steps[1].inputs.ids"] == ['"iris.probabilities" is float32, the input wants int64']
    assert answer["code"] == "validation_error"
    assert answer["codes"]["steps[1].inputs.ids"] == ["wrong_type"]
    assert not Pipeline.objects.exists()


def test_a_change_is_validated_as_a_whole_and_a_refused_one_changes_nothing(world, versions):
    client = api_client_for(world.user("member"))
    assert client.post(LIST, body(versions), format="json").status_code == 201
    renamed = client.patch(f"{LIST}species/", {"outputs": {"species_index": "pick.index"}}, format="json")
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["outputs"] == {"species_index": "pick.index"}
    broken = client.patch(
        f"{LIST}species/",
        {"steps": body(versions, second="ids", mapping={"ids": "iris.probabilities"})["steps"]},
        format="json",
    )
    assert broken.status_code == 400
    assert "steps[1].inputs.ids" in broken.json()
    pipeline = Pipeline.objects.get()
    assert pipeline.steps[1]["version"] == str(versions["argmax"].uuid)
    assert pipeline.outputs == {"species_index": "pick.index"}
    slug = client.patch(f"{LIST}species/", {"slug": "other"}, format="json")
    assert slug.status_code == 400 and "slug" in slug.json()


def test_an_admin_deletes_a_pipeline_and_the_trail_says_so(world, versions):
    assert api_client_for(world.user("member")).post(LIST, body(versions), format="json").status_code == 201
    assert api_client_for(world.user("member")).delete(f"{LIST}species/").status_code == 403
    assert api_client_for(world.user("admin")).delete(f"{LIST}species/").status_code == 204
    assert not Pipeline.objects.exists()
    assert AuditEvent.objects.filter(action="pipeline.deleted").count() == 1


def test_run_inputs_are_checked_against_the_pipeline_before_any_job_is_written(world, versions):
    client = api_client_for(world.user("member"))
    assert client.post(LIST, body(versions), format="json").status_code == 201
    run = f"{LIST}species/run"
    wrong_type = client.post(run, {"inputs": {"features": [["a", "b", "c", "d"]]}}, format="json")
    assert wrong_type.status_code == 400
    assert wrong_type.json()["inputs.features"] == ["expected float32, received string"]
    wrong_shape = client.post(run, {"inputs": {"features": [[1.0, 2.0, 3.0]]}}, format="json")
    assert wrong_shape.status_code == 400
    assert "dimension 1 is 3, the model wants 4" in wrong_shape.json()["inputs.features"][0]
    unknown = client.post(run, {"inputs": {"float_input": [[1.0, 2.0, 3.0, 4.0]]}}, format="json")
    assert set(unknown.json()) >= {"inputs.float_input", "inputs.features"}
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()


def test_an_asynchronous_run_answers_202_with_the_run_url_and_snapshots_the_steps(world, versions):
    client = api_client_for(world.user("member"))
    assert client.post(LIST, body(versions), format="json").status_code == 201
    response = client.post(
        f"{LIST}species/run?async=1", {"inputs": {"features": [[5.1, 3.5, 1.4, 0.2]]}}, format="json"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(kind=PIPELINE_KIND)
    assert response.json()["url"].endswith(f"/api/v1/pipeline-runs/{job.uuid}/")
    assert job.params["steps"] == Pipeline.objects.get().steps
    assert job.queue == "inference.cpu"
    assert PipelineRun.objects.get(job=job).pipeline.slug == "species"
    mine = client.get(f"/api/v1/pipeline-runs/{job.uuid}/")
    assert mine.status_code == 200 and mine.json()["status"] == "queued"
    assert api_client_for(world.user("viewer")).get(f"/api/v1/pipeline-runs/{job.uuid}/").status_code == 404


def test_a_pipeline_whose_version_was_yanked_answers_409_when_run(world, versions):
    from apps.marketplace import services as catalog

    client = api_client_for(world.user("member"))
    assert client.post(LIST, body(versions), format="json").status_code == 201
    catalog.yank_version(version=versions["argmax"], actor=world.user("admin"), reason="Wrong axis.")
    response = client.post(
        f"{LIST}species/run?async=1", {"inputs": {"features": [[5.1, 3.5, 1.4, 0.2]]}}, format="json"
    )
    assert response.status_code == 409
    assert "steps[1]" in response.json()["detail"] and "yanked" in response.json()["detail"]
