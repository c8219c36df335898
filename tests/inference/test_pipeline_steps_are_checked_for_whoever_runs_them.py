"""A pipeline runs only what its caller may run: at run start, and again on the worker, every step's version must
pass ``restrict(caller, "run")``. A step whose model the caller may not see refuses the run with 404, one they may
see but not run with 403; nothing is written. A grant revoked after the start fails the run on the worker, with
the reason and no step run.

The scene: globex keeps a private model that only acme's member (the pipeline's author) was granted ``run`` on;
the pipeline belongs to acme, so every acme member may run the pipeline itself.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.core.jobs import Job, JobStatus
from apps.inference import pipelines
from apps.inference.models import PipelineRun
from apps.inference.pipelines import PIPELINE_KIND, save_pipeline
from tests.conftest import api_client_for
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.inference.pipeline_models import iris_bytes, make_version, model_bytes, ref

FLOWERS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
RUN = "/api/v1/orgs/acme/pipelines/species/run"


def _scene(world):
    """globex's private iris model (granted to acme's member only), acme's argmax, and acme's pipeline of both."""
    globex = OrganizationFactory(slug="globex", name="Globex")
    globex_owner = UserFactory(handle="globex-owner")
    MembershipFactory(organization=globex, user=globex_owner, role=Role.OWNER)
    secret = make_version(world, "secret-iris", iris_bytes(), organization=globex, actor=globex_owner)
    assign_perm("run_model", world.user("member"), secret.model)
    argmax = make_version(world, "argmax", model_bytes("argmax"))
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[
            {"name": "classify", "version": ref(secret), "inputs": {"float_input": "input.features"}},
            {"name": "pick", "version": ref(argmax), "inputs": {"probabilities": "classify.probabilities"}},
        ],
        actor=world.user("member"),
    )
    return secret


@pytest.mark.django_db
def test_another_member_gets_404_on_a_step_whose_private_model_only_the_author_was_granted(world):
    _scene(world)
    colleague = UserFactory(handle="colleague")
    MembershipFactory(organization=world.org, user=colleague, role=Role.MEMBER)
    response = api_client_for(colleague).post(RUN, {"inputs": {"features": FLOWERS}}, format="json")
    assert response.status_code == 404, response.content
    answer = response.json()
    assert answer["code"] == "step_not_found"
    assert answer["detail"].startswith("Step “classify” (steps[0]) runs a model version that does not exist or that")
    assert "globex" not in answer["detail"] and "secret-iris" not in answer["detail"]
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()
    assert not PipelineRun.objects.exists()


@pytest.mark.django_db
def test_an_admin_of_the_pipelines_organization_gets_404_too_and_no_job_is_written(world):
    _scene(world)
    response = api_client_for(world.user("admin")).post(RUN, {"inputs": {"features": FLOWERS}}, format="json")
    assert response.status_code == 404, response.content
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()


@pytest.mark.django_db
def test_a_member_who_may_view_the_steps_model_but_not_run_it_gets_403_naming_it(world):
    secret = _scene(world)
    colleague = UserFactory(handle="colleague")
    MembershipFactory(organization=world.org, user=colleague, role=Role.MEMBER)
    assign_perm("view_model", colleague, secret.model)
    response = api_client_for(colleague).post(RUN, {"inputs": {"features": FLOWERS}}, format="json")
    assert response.status_code == 403, response.content
    answer = response.json()
    assert answer["code"] == "step_not_allowed"
    assert answer["detail"] == "Step “classify” (steps[0]): you may view globex/secret-iris@1.0.0 but not run it."
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()


@pytest.mark.django_db
def test_the_author_whose_token_is_bound_to_acme_may_not_run_globexs_private_step(world):
    _scene(world)
    client = api_client_for(world.user("member"), organization=world.org)
    response = client.post(RUN, {"inputs": {"features": FLOWERS}}, format="json")
    assert response.status_code == 404, response.content
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()


@pytest.mark.django_db
def test_the_author_who_was_granted_the_step_starts_the_run(world):
    _scene(world)
    response = api_client_for(world.user("member")).post(
        f"{RUN}?async=1", {"inputs": {"features": FLOWERS}}, format="json"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(kind=PIPELINE_KIND)
    assert job.creator == world.user("member") and job.organization == world.org
    assert job.params["bound_organization"] is None
    assert not AuditEvent.objects.filter(
        action="job.created", target_id=str(job.uuid)
    ).exists()  # a run: a Job row only


@pytest.mark.django_db
def test_the_pipeline_names_the_granted_step_to_its_author_only(world):
    secret = _scene(world)
    author = api_client_for(world.user("member")).get("/api/v1/orgs/acme/pipelines/species/").json()
    assert author["steps"][0]["version"] == "globex/secret-iris@1.0.0"
    for persona in ("viewer", "admin"):
        shown = api_client_for(world.user(persona)).get("/api/v1/orgs/acme/pipelines/species/")
        assert shown.status_code == 200
        first, second = shown.json()["steps"]
        assert first["version"] is None and first["version_uuid"] is None and first["name"] == "classify"
        assert second["version"] == "acme/argmax@1.0.0"
        assert "secret-iris" not in shown.content.decode() and str(secret.uuid) not in shown.content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_grant_revoked_after_the_start_fails_the_run_on_the_worker_and_no_step_runs(world, inference_worker):
    secret = _scene(world)
    author = world.user("member")
    pipeline = pipelines.Pipeline.objects.get(slug="species")
    request = pipelines.read_run_request(pipeline, {"inputs": {"features": FLOWERS}}, actor=author)
    with transaction.atomic():  # the start's check passes; the grant ends before the worker sees the job
        job = pipelines.start_pipeline_run(pipeline=pipeline, request=request, user=author)
        remove_perm("run_model", author, secret.model)
    finished = _wait_finished(job)
    assert finished.status == JobStatus.FAILED
    assert finished.error.startswith("Step “classify” (steps[0]) runs a model version that does not exist or that")
    assert finished.error.endswith("Nothing ran.")
    assert not finished.result_file
    assert PipelineRun.objects.get(job=job).steps == []
    detail = api_client_for(author).get(f"/api/v1/pipeline-runs/{job.uuid}/").json()
    assert detail["status"] == "failed" and detail["steps"] == [] and "outputs" not in detail


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_by_the_granted_author_still_succeeds_on_the_worker(world, inference_worker):
    _scene(world)
    response = api_client_for(world.user("member")).post(RUN, {"inputs": {"features": FLOWERS}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outputs"]["index"] == [0, 2]
    assert response.json()["steps"][0]["reference"] == "globex/secret-iris@1.0.0"
    # acme's admin sees the run (a job of acme), not the name of the step's version they may not view
    seen = api_client_for(world.user("admin")).get(response.json()["url"])
    assert seen.status_code == 200
    assert seen.json()["steps"][0]["reference"] is None and seen.json()["steps"][0]["version"] is None
    assert seen.json()["steps"][1]["reference"] == "acme/argmax@1.0.0"
    assert "secret-iris" not in seen.content.decode()


def _wait_finished(job: Job, timeout: float = 60.0) -> Job:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.uuid} still {job.status} after {timeout} s")
