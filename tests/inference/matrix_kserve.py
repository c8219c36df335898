"""The KServe v2 routes in the permission matrix (joined by tests/inference/permission_matrix.py), from DESIGN.md's
role table and docs/api/kserve.md:

    server metadata, health      anyone: public, like a load balancer's probe (credentials are not read)
    model metadata, readiness    ``view`` on the model or deployment: a private one is hidden (404) from outsiders
    infer                        ``run``: members of its organization; anyone signed in on a public model; a viewer
                                 may view a private model or a deployment but not run it (403); anonymous: 401
    any other /v2/ route         404 (not served), in the protocol's JSON; a POST there is judged as any write
                                 first (401 to anonymous, 403 to a read-only token)

A v2 model's own visibility decides, not its organization's, so every route is ``under_org=False``; the routes on
a model or deployment of acme are ``of_acme`` (the token slice). Infer is sent with a datatype the model does not
take (FP64 for its FP32 input): those who may run it get 400 naming the input, once every right was checked, and no
job is started (so no worker is needed); the behaviour tests run real predictions.
"""

from __future__ import annotations

from apps.core.access import Visibility
from tests.inference.matrix_api import deployment, runnable_version
from tests.permissions.matrix import HIDDEN_FROM_ANONYMOUS, OK, Access, Route, Scene, no_kwargs, table

#                   owner admin member viewer outsider anonymous
ANYONE = Access(private=table(OK, OK, OK, OK, OK, OK), public=table(OK, OK, OK, OK, OK, OK))
READ_PRIVATE = Access(
    private=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS), public=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS)
)
ALLOWED = 400  # allowed, then refused on the input on purpose (see the module's docstring)
RUN_PRIVATE = Access(
    private=table(ALLOWED, ALLOWED, ALLOWED, 403, 404, 401), public=table(ALLOWED, ALLOWED, ALLOWED, 403, 404, 401)
)
RUN_PUBLIC = Access(
    private=table(ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, 401),
    public=table(ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED, 401),
)
NOT_SERVED = Access(private=table(404, 404, 404, 404, 404, 404), public=table(404, 404, 404, 404, 404, 404))
NOT_SERVED_WRITE = Access(private=table(404, 404, 404, 404, 404, 401), public=table(404, 404, 404, 404, 404, 401))

WRONG_DATATYPE = {"inputs": [{"name": "float_input", "shape": [3, 2], "datatype": "FP64", "data": [1.0] * 6}]}


def model_name(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = runnable_version(scene, visibility)
        return {"model_name": f"{scene.org.slug}--{version.model.name}"}

    return kwargs


def model_version(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = runnable_version(scene, visibility)
        return {"model_name": f"{scene.org.slug}--{version.model.name}", "model_version": version.label}

    return kwargs


def deployment_name(scene: Scene, persona: str) -> dict:
    return {"model_name": f"{scene.org.slug}--deployments--{deployment(scene).slug}"}


def unsupported(scene: Scene, persona: str) -> dict:
    return {"rest": f"models/{scene.org.slug}--anything/config"}


def wrong_datatype(scene: Scene, persona: str) -> dict:
    return WRONG_DATATYPE


PRIVATE, PUBLIC, DEPLOYMENT = {"model": "private"}, {"model": "public"}, {"model": "deployment"}
RUN_NOTE = "400 is the input refused after the rights were checked: a prediction writes a job, not an audit event"
API_ROUTES = [
    Route("kserve:server-metadata", "GET", ANYONE, no_kwargs, under_org=False),
    Route("kserve:health-live", "GET", ANYONE, no_kwargs, under_org=False),
    Route("kserve:health-ready", "GET", ANYONE, no_kwargs, under_org=False),
    Route("kserve:model-metadata", "GET", READ_PRIVATE, model_name(Visibility.PRIVATE), query=PRIVATE,
          under_org=False, of_acme=True),
    Route("kserve:model-metadata", "GET", ANYONE, model_name(Visibility.PUBLIC), query=PUBLIC,
          under_org=False, of_acme=True),
    Route("kserve:model-metadata", "GET", READ_PRIVATE, deployment_name, query=DEPLOYMENT,
          under_org=False, of_acme=True),
    Route("kserve:model-version-metadata", "GET", READ_PRIVATE, model_version(Visibility.PRIVATE), query=PRIVATE,
          under_org=False, of_acme=True),
    Route("kserve:model-version-metadata", "GET", ANYONE, model_version(Visibility.PUBLIC), query=PUBLIC,
          under_org=False, of_acme=True),
    Route("kserve:model-ready", "GET", READ_PRIVATE, model_name(Visibility.PRIVATE), query=PRIVATE,
          under_org=False, of_acme=True),
    Route("kserve:model-ready", "GET", READ_PRIVATE, deployment_name, query=DEPLOYMENT,
          under_org=False, of_acme=True),
    Route("kserve:model-version-ready", "GET", READ_PRIVATE, model_version(Visibility.PRIVATE), query=PRIVATE,
          under_org=False, of_acme=True),
    Route("kserve:model-infer", "POST", RUN_PRIVATE, model_name(Visibility.PRIVATE), wrong_datatype, query=PRIVATE,
          under_org=False, of_acme=True, audited=False, note=RUN_NOTE),
    Route("kserve:model-infer", "POST", RUN_PUBLIC, model_name(Visibility.PUBLIC), wrong_datatype, query=PUBLIC,
          under_org=False, of_acme=True, audited=False, note=RUN_NOTE),
    Route("kserve:model-infer", "POST", RUN_PRIVATE, deployment_name, wrong_datatype, query=DEPLOYMENT,
          under_org=False, of_acme=True, audited=False, note=RUN_NOTE),
    Route("kserve:model-version-infer", "POST", RUN_PRIVATE, model_version(Visibility.PRIVATE), wrong_datatype,
          query=PRIVATE, under_org=False, of_acme=True, audited=False, note=RUN_NOTE),
    Route("kserve:unsupported", "GET", NOT_SERVED, unsupported, under_org=False),
    Route("kserve:unsupported", "POST", NOT_SERVED_WRITE, unsupported, wrong_datatype, under_org=False,
          audited=False, note="not served: a POST is judged as any write (sign in first), then 404, writing nothing"),
]  # fmt: skip
