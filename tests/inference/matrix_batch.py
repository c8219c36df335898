"""Batch jobs in the permission matrix (joined by tests/inference/permission_matrix.py), from DESIGN.md's role table
and docs/user/batch-jobs.md:

    send a batch    ``run`` on the model, as a prediction: members of a private model's organization (a viewer 403,
                    an outsider 404); anyone signed in on a public model (it counts against their own organization)
    a batch job     its creator and the admins of the organization it counted against, as any job (its results
                    file too); the list: anyone signed in, each seeing what restrict() lets them

The batch sent here is never run (no worker): the matrix checks who may, tests/inference/test_batch_*.py run them.
Sending one starts a job, which writes its ``job.created`` audit event.
"""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.access import Visibility
from tests.inference.matrix_api import RUN_PRIVATE, RUN_PUBLIC, runnable_version, version_kwargs
from tests.permissions.matrix import JOB_VIEW, LISTED_TO_ADMINS, SIGNED_IN_SELF, Route, Scene, no_kwargs

# One row for ONNX Runtime's iris example (float_input float [3, 2]).
ROWS = b'{"float_input": [[5.1, 3.5], [4.9, 3.0], [6.2, 3.4]]}\n' * 2


def rows_file(scene: Scene, persona: str) -> dict:
    return {"file": SimpleUploadedFile("rows.jsonl", ROWS), "chunk_size": "4"}


def batch_job(scene: Scene):
    """A batch job on acme's private model, started by acme's admin and counted against acme."""
    from apps.inference.batch import start_batch_inference

    def build(s: Scene):
        return start_batch_inference(
            version=runnable_version(s, Visibility.PRIVATE),
            uploaded=SimpleUploadedFile("rows.jsonl", ROWS),
            input_format=None,
            chunk_size=8,
            user=s.user("admin"),
            organization=s.org,
        )

    return scene.once("inference-batch-job", build)


def of_batch_job(scene: Scene, persona: str) -> dict:
    return {"uuid": str(batch_job(scene).uuid)}


API_ROUTES = [
    Route(
        "api:model-version-batch",
        "POST",
        RUN_PRIVATE,
        version_kwargs(Visibility.PRIVATE),
        rows_file,
        query={"model": "private"},
        under_org=False,
        of_acme=True,
    ),
    Route(
        "api:model-version-batch",
        "POST",
        RUN_PUBLIC,
        version_kwargs(Visibility.PUBLIC),
        rows_file,
        query={"model": "public"},
        under_org=False,
        of_acme=True,
        note="a public model: anyone signed in may send it a batch, counted against their own organization",
    ),
    Route(
        "api:batch-job-list",
        "GET",
        SIGNED_IN_SELF,
        no_kwargs,
        under_org=False,
        lists=lambda s: str(batch_job(s).uuid),
        listed=LISTED_TO_ADMINS,
        note="the job was started by acme's admin for acme: its creator and acme's owner see it",
    ),
    Route("api:batch-job-detail", "GET", JOB_VIEW, of_batch_job, under_org=False, of_acme=True),
    Route("api:batch-job-results", "GET", JOB_VIEW, of_batch_job, under_org=False, of_acme=True),
]
