"""Pipelines in the permission matrix (joined by tests/inference/permission_matrix.py), from DESIGN.md's role table
and docs/user/pipelines.md:

    pipelines       like the organization's objects: viewers view them, members save, change and run them, admins
                    delete them; a pipeline is private to its organization whatever the organization's visibility
                    (so in a public acme an outsider still finds none: the list answers, empty, and one is 404)
    a run           a job: its creator (acme's member here) and acme's admins and owner see it

Runs are asked for asynchronously (``?async=1``: 202 at once, no worker needed) and are jobs, not audit events.
The pipeline here has one step, a linear model built with onnx.helper (features float32 [N, 4] -> y [N, 3]).
"""

from __future__ import annotations

from apps.core.access import Visibility
from tests.permissions.matrix import (
    ADMIN_WRITE,
    HIDDEN_FROM_ANONYMOUS,
    MEMBER_WRITE,
    OK,
    ORG_READ,
    Access,
    Route,
    Scene,
    table,
)


def _private_row(pattern: Access) -> Access:
    """A pipeline's organization-only access: the private row, whatever acme's visibility."""
    return Access(private=pattern.private, public=pattern.private)


#                       owner admin member viewer outsider anonymous
PIPELINE_READ = _private_row(ORG_READ)
PIPELINE_WRITE = _private_row(MEMBER_WRITE)
PIPELINE_DELETE = _private_row(ADMIN_WRITE)
LISTED_TO_MEMBERS = Access(
    private=table(True, True, True, True, False, False), public=table(True, True, True, True, False, False)
)
RUN_VIEW = Access(  # the member's run: the member (its creator), acme's admins and owner
    private=table(OK, OK, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
)
INPUTS = {"inputs": {"features": [[5.1, 3.5, 1.4, 0.2]]}}


def linear_version(scene: Scene):
    """A published, validated version of acme's ``linear`` model, with its real signature."""
    from tests.inference.pipeline_models import make_version, model_bytes

    return scene.once(
        "pipeline-linear-version",
        lambda s: make_version(s.world, "linear", model_bytes("linear"), visibility=Visibility.PRIVATE),
    )


def steps(scene: Scene) -> list[dict]:
    from tests.inference.pipeline_models import ref

    return [{"name": "project", "version": ref(linear_version(scene)), "inputs": {"features": "input.features"}}]


def pipeline(scene: Scene):
    from apps.inference.pipelines import save_pipeline

    return scene.once(
        "pipeline",
        lambda s: save_pipeline(organization=s.org, slug="projection", steps=steps(s), actor=s.user("member")),
    )


def pipeline_run(scene: Scene):
    """A run of the pipeline started by acme's member (queued; no worker runs it here)."""
    from apps.inference.pipelines import read_run_request, start_pipeline_run

    def build(s: Scene):
        made = pipeline(s)
        return start_pipeline_run(
            pipeline=made, request=read_run_request(made, INPUTS, actor=s.user("member")), user=s.user("member")
        )

    return scene.once("pipeline-run", build)


def of_pipeline(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "slug": pipeline(scene).slug}


def of_run(scene: Scene, persona: str) -> dict:
    return {"uuid": str(pipeline_run(scene).uuid)}


def new_pipeline(scene: Scene, persona: str) -> dict:
    return {"slug": f"new-{persona}", "steps": steps(scene)}


API_ROUTES = [
    Route("api:pipeline-list", "GET", ORG_READ, lists=lambda s: pipeline(s).slug, listed=LISTED_TO_MEMBERS,
          note="a public acme shows its (empty, to outsiders) list of pipelines; each pipeline stays private"),
    Route("api:pipeline-list", "POST", MEMBER_WRITE, body=new_pipeline, note="audited as pipeline.created"),
    Route("api:pipeline-detail", "GET", PIPELINE_READ, of_pipeline),
    Route("api:pipeline-detail", "PATCH", PIPELINE_WRITE, of_pipeline, lambda s, p: {"description": "Changed"},
          note="audited as pipeline.changed"),
    Route("api:pipeline-detail", "DELETE", PIPELINE_DELETE, of_pipeline, note="audited as pipeline.deleted"),
    Route("api:pipeline-run", "POST", PIPELINE_WRITE, of_pipeline, lambda s, p: INPUTS, query={"async": "1"},
          audited=False, note="a run is a job, not an audit event (as predictions are)"),
    Route("api:pipeline-run-detail", "GET", RUN_VIEW, of_run, under_org=False, of_acme=True),
]  # fmt: skip
