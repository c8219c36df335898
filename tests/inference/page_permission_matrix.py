"""The inference pages in the permission matrix (joined by tests/inference/permission_matrix.py), from DESIGN.md's
role table, answering as the inference API does (tests/inference/matrix_api.py):

    try it, run on a file
                    ``run`` on the model: members of a private model's organization (viewers 403, outsiders 404);
                    anyone signed in on a public model; anonymous visitors are sent to sign in
    inference jobs  the list: anyone signed in (each sees what restrict() lets them); one job: its creator and the
                    admins of the organization it counted against
    deployments     under /orgs/<slug>/: viewers see them, members create, change, roll back, pause and resume
                    them, admins delete them; a deployment is private to its organization whatever the
                    organization's own visibility, so a public organization's outsider still gets 404 on one

A "try it" submission here waits 0 seconds (its ``timeout`` field), so it answers at once with a link to the job
(no worker needed): the matrix checks who may, tests/inference/test_pages_try_it_*.py run it on a real worker.
"""

from __future__ import annotations

from typing import Any

from apps.core.access import Visibility
from tests.inference.matrix_api import INPUTS, deployment, runnable_version
from tests.inference.matrix_pipelines import of_pipeline
from tests.permissions.matrix import (
    DONE,
    LOGIN,
    PAGE_JOB,
    PAGE_ORG_READ,
    PAGE_SIGNED_IN,
    PERSONAS,
    Access,
    Route,
    Scene,
    no_kwargs,
    table,
)


def _same(row: dict[str, Any]) -> Access:
    """The object's own visibility decides, whatever acme's."""
    return Access(private=row, public=row)


#                                   owner admin member viewer outsider anonymous
TRY_PRIVATE = _same(table(DONE, DONE, DONE, 403, 404, LOGIN))
TRY_PUBLIC = _same(table(DONE, DONE, DONE, DONE, DONE, LOGIN))
DEPLOYMENT_PAGE = _same(table(DONE, DONE, DONE, DONE, 404, LOGIN))
DEPLOYMENT_CHANGE = _same(table(DONE, DONE, DONE, 403, 404, LOGIN))
DEPLOYMENT_DELETE = _same(table(DONE, DONE, 403, 403, 404, LOGIN))
DEPLOYMENT_CREATE = Access(  # members of the organization; a public organization's outsider is no member: 403
    private=table(DONE, DONE, DONE, 403, 404, LOGIN),
    public=table(DONE, DONE, DONE, 403, 403, LOGIN),
)
NO_AUDIT_EVENT = frozenset(PERSONAS)
# A run's page: the pipeline's viewers, and the run's own viewers (its creator, acme's member, and the admins).
PIPELINE_RUN_PAGE = _same(table(DONE, DONE, DONE, 404, 404, LOGIN))


def try_it_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = runnable_version(scene, visibility)
        return {"owner": scene.org.slug, "name": version.model.name, "label": version.label}

    return kwargs


def try_it_body(scene: Scene, persona: str) -> dict:
    import json

    return {"tensor_0": json.dumps(INPUTS["inputs"]["float_input"]), "timeout": "0"}


def run_file_body(scene: Scene, persona: str) -> dict:
    """“Run on a file”: one JSON Lines row (a batch job is written; no worker runs it here)."""
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    line = json.dumps({"float_input": INPUTS["inputs"]["float_input"]}).encode() + b"\n"
    return {"file": SimpleUploadedFile("rows.jsonl", line, content_type="application/x-ndjson")}


def pipeline_form(scene: Scene, persona: str) -> dict:
    """The builder's form for a one-step pipeline of acme's linear model (its input mapped by default)."""
    from tests.inference.matrix_pipelines import linear_version
    from tests.inference.pipeline_models import ref

    return {"slug": f"page-{persona}", "step_count": "1", "steps-0-name": "project",
            "steps-0-version": ref(linear_version(scene))}  # fmt: skip


def of_pipeline_run(scene: Scene, persona: str) -> dict:
    from tests.inference.matrix_pipelines import pipeline, pipeline_run

    return {"org_slug": scene.org.slug, "slug": pipeline(scene).slug, "uuid": str(pipeline_run(scene).uuid)}


def admin_prediction(scene: Scene):
    """A prediction acme's admin made, counted against acme: its creator and acme's admins see it."""
    from apps.inference.predictions import PredictionInput, start_prediction

    def build(s: Scene):
        version = runnable_version(s, Visibility.PRIVATE)
        return start_prediction(
            version=version,
            request=PredictionInput(arrays=None, raw={"text": "x"}),
            user=s.user("admin"),
            organization=s.org,
        )

    return scene.once("inference-page-prediction", build)


def of_job(scene: Scene, persona: str) -> dict:
    return {"uuid": str(admin_prediction(scene).uuid)}


def of_deployment(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "slug": deployment(scene).slug}


def of_paused_deployment(scene: Scene, persona: str) -> dict:
    from apps.inference import services

    def build(s: Scene):
        version = runnable_version(s, Visibility.PRIVATE)
        return services.create_deployment(
            organization=s.org, model=version.model, actor=s.user("member"), slug="paused", version=version,
            status="paused",
        )  # fmt: skip

    return {"org_slug": scene.org.slug, "slug": scene.once("inference-paused-deployment", build).slug}


def _settings(version_label: str) -> dict:
    return {
        "version": version_label, "alias": "", "canary_version": "", "canary_percent": 0, "device": "auto",
        "provider": "auto", "max_batch_size": 1, "max_delay_ms": 9, "concurrency": 64, "timeout_seconds": 20,
        "visibility": "private", "description": "",
    }  # fmt: skip


def new_deployment(scene: Scene, persona: str) -> dict:
    version = runnable_version(scene, Visibility.PRIVATE)
    return {**_settings(version.label), "slug": f"new-{persona}", "model": version.model.name}


def changed_deployment(scene: Scene, persona: str) -> dict:
    # The scene's deployment waits 5 ms for a batch: 9 is a change, so a new revision and its audit event.
    return {**_settings(deployment(scene).version.label), "reason": "matrix"}


def team_run(scene: Scene) -> dict:
    return {"grantee_type": "team", "grantee": scene.team.slug, "permission": "run"}


def of_granted_deployment(scene: Scene, persona: str) -> dict:
    from tests.inference.matrix_api import deployment_grant

    deployment_grant(scene)
    return of_deployment(scene, persona)


TRY_IT_NOTE = "a prediction is a job, not an audit event (as in the API): no persona's submission writes one"
PAGE_ROUTES = [
    Route("inference-try-it", "POST", TRY_PRIVATE, try_it_kwargs("private"), try_it_body, query={"model": "private"},
          under_org=False, unchanged_for=NO_AUDIT_EVENT, note=TRY_IT_NOTE),
    Route("inference-try-it", "POST", TRY_PUBLIC, try_it_kwargs("public"), try_it_body, query={"model": "public"},
          under_org=False, unchanged_for=NO_AUDIT_EVENT, note=TRY_IT_NOTE),
    # A batch job's start is audited (job.created), as through the API.
    Route("inference-run-on-file", "POST", TRY_PRIVATE, try_it_kwargs("private"), run_file_body,
          query={"model": "private"}, under_org=False),
    Route("inference-run-on-file", "POST", TRY_PUBLIC, try_it_kwargs("public"), run_file_body,
          query={"model": "public"}, under_org=False),
    Route("inference-jobs", "GET", PAGE_SIGNED_IN, no_kwargs, under_org=False),
    # Pipelines: private to acme whatever its visibility, as deployments; checking the builder and running write
    # no audit event (a run is a job), saving writes pipeline.created.
    Route("org-pipelines", "GET", PAGE_ORG_READ),
    Route("org-pipeline-create", "GET", DEPLOYMENT_CREATE),
    Route("org-pipeline-create", "POST", DEPLOYMENT_CREATE, body=pipeline_form),
    Route("org-pipeline-check", "POST", DEPLOYMENT_CREATE, body=pipeline_form, unchanged_for=NO_AUDIT_EVENT,
          note="checking writes nothing"),
    Route("org-pipeline", "GET", DEPLOYMENT_PAGE, of_pipeline),
    Route("org-pipeline-run-start", "POST", DEPLOYMENT_CHANGE, of_pipeline,
          lambda s, p: {"input-features": "[[5.1, 3.5, 1.4, 0.2]]"}, unchanged_for=NO_AUDIT_EVENT,
          note="a run is a job, not an audit event"),
    Route("org-pipeline-run", "GET", PIPELINE_RUN_PAGE, of_pipeline_run),
    Route("inference-job", "GET", PAGE_JOB, of_job, under_org=False),
    Route("inference-job-answer", "GET", PAGE_JOB, of_job, under_org=False),
    Route("org-deployments", "GET", PAGE_ORG_READ),
    Route("org-deployment-create", "GET", DEPLOYMENT_CREATE),
    Route("org-deployment-create", "POST", DEPLOYMENT_CREATE, body=new_deployment),
    Route("org-deployment", "GET", DEPLOYMENT_PAGE, of_deployment),
    Route("org-deployment-live", "GET", DEPLOYMENT_PAGE, of_deployment),
    Route("org-deployment-edit", "GET", DEPLOYMENT_CHANGE, of_deployment),
    Route("org-deployment-edit", "POST", DEPLOYMENT_CHANGE, of_deployment, changed_deployment),
    Route("org-deployment-rollback", "POST", DEPLOYMENT_CHANGE, of_deployment, lambda s, p: {"revision": 1}),
    Route("org-deployment-pause", "POST", DEPLOYMENT_CHANGE, of_deployment),
    Route("org-deployment-resume", "POST", DEPLOYMENT_CHANGE, of_paused_deployment),
    Route("org-deployment-delete", "POST", DEPLOYMENT_DELETE, of_deployment, lambda s, p: {"confirm_slug": "iris"}),
    # the Access panel's forms: acme's admins and owners grant and revoke
    Route("org-deployment-access", "POST", DEPLOYMENT_DELETE, of_deployment, lambda s, p: team_run(s)),
    Route("org-deployment-access-revoke", "POST", DEPLOYMENT_DELETE, of_granted_deployment, lambda s, p: team_run(s)),
]  # fmt: skip
