"""The inference API in the permission matrix, from DESIGN.md's role table and docs/api/inference.md:

    run a model     ``run`` on it: members of its organization; anyone signed in when it is public (the run counts
                    against the caller's own organization); a viewer may view a private model but not run it (403)
    a prediction    its creator, and the admins of the organization it counted against (the caller's personal one)
    deployments     like the org's objects: viewers view, members create, change, roll back and run, admins delete;
                    a deployment is private to its organization whatever the organization's own visibility
    webhook secret  the organization's admins

Predictions are asked for asynchronously here (``?async=1``: 202 at once, no worker needed): the matrix checks who
may, the behaviour tests run them on real workers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from apps.core.access import Visibility
from tests.permissions.matrix import (
    ADMIN_READ,
    ADMIN_WRITE,
    HIDDEN_FROM_ANONYMOUS,
    MEMBER_WRITE,
    OK,
    ORG_READ,
    SIGNED_IN_SELF,
    Access,
    Route,
    Scene,
    no_kwargs,
    table,
)


def _same_in_both(pattern: Access) -> Access:
    """A deployment's (or a private model's) own visibility decides: the private row, whatever acme's."""
    return Access(private=pattern.private, public=pattern.private)


#                       owner admin member viewer outsider anonymous
RUN_PRIVATE = _same_in_both(MEMBER_WRITE)
RUN_PUBLIC = Access(private=table(OK, OK, OK, OK, OK, 401), public=table(OK, OK, OK, OK, OK, 401))
DEPLOYMENT_READ = _same_in_both(ORG_READ)
DEPLOYMENT_WRITE = _same_in_both(MEMBER_WRITE)
DEPLOYMENT_DELETE = _same_in_both(ADMIN_WRITE)
LISTED_TO_CHANGERS = _same_in_both(Access(private=table(True, True, True, False, False, False), public={}))
DEPLOYMENT_CHANGERS_READ = Access(  # who may change the deployment reads its grants
    private=table(OK, OK, OK, 403, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, 403, 404, HIDDEN_FROM_ANONYMOUS),
)
CREATOR_ONLY = Access(  # the member's own prediction; it counted against the member's personal organization
    private=table(404, 404, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(404, 404, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
)


@cache
def iris_bytes() -> bytes:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx")).read_bytes()


def runnable_version(scene: Scene, visibility: str):
    """A published, validated version of a real model (ONNX Runtime's iris example) with its real signature."""

    def build(s: Scene):
        import onnx
        from django.core.files.uploadedfile import SimpleUploadedFile

        from apps.marketplace import services
        from apps.marketplace.models import ModelVersion, ValidationStatus
        from apps.marketplace.onnx.signature import extract_signature

        member = s.user("member")
        model = services.create_model(organization=s.org, actor=member, name=f"run-{visibility}", visibility=visibility)
        version = services.create_version(model=model, actor=member, label="1.0.0")
        services.add_file(
            version=version,
            actor=member,
            path="model.onnx",
            uploaded=SimpleUploadedFile("model.onnx", iris_bytes()),
            precheck=False,
        )
        ModelVersion.objects.filter(pk=version.pk).update(
            validation_status=ValidationStatus.PASSED,
            signature=extract_signature(onnx.load_from_string(iris_bytes())),
        )
        version.refresh_from_db()
        return services.publish_version(version=version, actor=member)

    return scene.once(f"inference-version-{visibility}", build)


def deployment(scene: Scene):
    from apps.inference import services

    def build(s: Scene):
        version = runnable_version(s, Visibility.PRIVATE)
        made = services.create_deployment(
            organization=s.org, model=version.model, actor=s.user("member"), slug="iris", version=version
        )
        return services.update_deployment(deployment=made, actor=s.user("member"), timeout_seconds=20)

    return scene.once("inference-deployment", build)


def prediction(scene: Scene):
    from apps.inference.predictions import PredictionInput, acting_organization, start_prediction

    def build(s: Scene):
        version = runnable_version(s, Visibility.PRIVATE)
        member = s.user("member")
        return start_prediction(
            version=version,
            request=PredictionInput(arrays=None, raw={"text": "x"}),
            user=member,
            organization=acting_organization(member, None, s.org),
        )

    return scene.once("inference-prediction", build)


INPUTS = {"inputs": {"float_input": [[5.1, 3.5], [4.9, 3.0], [6.2, 3.4]]}}


def version_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = runnable_version(scene, visibility)
        return {"owner": scene.org.slug, "name": version.model.name, "label": version.label}

    return kwargs


def model_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = runnable_version(scene, visibility)
        return {"owner": scene.org.slug, "name": version.model.name}

    return kwargs


def of_deployment(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "slug": deployment(scene).slug}


def deployment_grant(scene: Scene):
    """A grant of run on the deployment to acme's team ``core``, made by acme's owner."""
    from apps.organizations.grants import grant_access

    return scene.once(
        "inference-deployment-grant",
        lambda s: grant_access(
            obj=deployment(s), actor=s.owner, grantee_type="team", grantee=s.team.slug, permission="run"
        ),
    )


def of_deployment_grant(scene: Scene, persona: str) -> dict:
    deployment_grant(scene)
    return {
        **of_deployment(scene, persona),
        "grantee_type": "team",
        "grantee": f"{scene.org.slug}/{scene.team.slug}",
        "permission": "run",
    }


def of_prediction(scene: Scene, persona: str) -> dict:
    return {"uuid": str(prediction(scene).uuid)}


def new_deployment(scene: Scene, persona: str) -> dict:
    version = runnable_version(scene, Visibility.PRIVATE)
    return {"slug": f"new-{persona}", "model": version.model.name, "version": version.label}


ASYNC = {"async": "1"}
API_ROUTES = [
    Route("api:model-version-predict", "POST", RUN_PRIVATE, version_kwargs("private"), lambda s, p: INPUTS,
          query={**ASYNC, "model": "private"}, under_org=False, of_acme=True, audited=False,
          note="a prediction is a job, not an audit event (docs/api/inference.md)"),
    Route("api:model-version-predict", "POST", RUN_PUBLIC, version_kwargs("public"), lambda s, p: INPUTS,
          query={**ASYNC, "model": "public"}, under_org=False, of_acme=True, audited=False,
          note="a public model: anyone signed in may run it, counted against their own organization"),
    Route("api:model-predict", "POST", RUN_PRIVATE, model_kwargs("private"), lambda s, p: INPUTS, query=ASYNC,
          under_org=False, of_acme=True, audited=False, note="a prediction is a job, not an audit event"),
    Route("api:prediction-list", "GET", SIGNED_IN_SELF, no_kwargs, under_org=False),
    Route("api:prediction-detail", "GET", CREATOR_ONLY, of_prediction, under_org=False),
    Route("api:prediction-webhooks", "GET", CREATOR_ONLY, of_prediction, under_org=False),
    Route("api:deployment-list", "GET", ORG_READ),
    Route("api:deployment-list", "POST", MEMBER_WRITE, body=new_deployment),
    Route("api:deployment-detail", "GET", DEPLOYMENT_READ, of_deployment),
    Route("api:deployment-detail", "PATCH", DEPLOYMENT_WRITE, of_deployment, lambda s, p: {"max_delay_ms": 9}),
    Route("api:deployment-detail", "DELETE", DEPLOYMENT_DELETE, of_deployment),
    Route("api:deployment-rollback", "POST", DEPLOYMENT_WRITE, of_deployment, lambda s, p: {}),
    Route("api:deployment-revisions", "GET", DEPLOYMENT_READ, of_deployment),
    # grants: those who may change the deployment read them; acme's admins and owners grant and revoke
    Route(
        "api:deployment-grant-list",
        "GET",
        DEPLOYMENT_CHANGERS_READ,
        of_deployment,
        lists=lambda s: deployment_grant(s) and "acme/core",
        listed=LISTED_TO_CHANGERS,
    ),
    Route(
        "api:deployment-grant-list",
        "POST",
        DEPLOYMENT_DELETE,
        of_deployment,
        lambda s, p: {"grantee_type": "team", "grantee": s.team.slug, "permission": "run"},
    ),
    Route("api:deployment-grant-detail", "DELETE", DEPLOYMENT_DELETE, of_deployment_grant),
    Route("api:deployment-predict", "POST", DEPLOYMENT_WRITE, of_deployment, lambda s, p: INPUTS, query=ASYNC,
          audited=False, note="a prediction is a job, not an audit event"),
    Route("api:org-webhook-secret", "GET", ADMIN_READ),
    Route("api:org-webhook-secret", "POST", ADMIN_WRITE, note="audited as webhook_secret.rotated (not the secret)"),
]  # fmt: skip
