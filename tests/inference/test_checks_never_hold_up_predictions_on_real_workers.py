"""A model nobody has run yet never holds up other people's predictions: performance cards (and validation) run
on the ``checks`` queue, served by a worker of its own, under a short time limit.

Two real prefork workers, as docs/operator/inference.md deploys them: one on ``inference.cpu`` (interactive
predictions), one on ``checks``. A published model whose Loop never ends is measured; while its card is running,
a prediction of another model answers, and the card then fails at its own time limit, saying so. Ordering and
outcomes are asserted, never wall-clock figures.
"""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core.jobs import Job, JobQueue, JobStatus
from apps.inference.performance import start_performance_card
from apps.marketplace.models import ValidationStatus
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import endless_model_bytes, iris_version, manifest
from tests.inference.pipeline_models import make_version, model_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CARD_TIME_LIMIT = 20  # seconds: long enough for a prediction to be answered meanwhile on a loaded 2-core machine

ENDLESS_MANIFEST = manifest(
    "endless",
    [{"name": "x", "type": "float32", "shape": ["N", 4], "required": True}],
    [{"name": "y", "type": "float32", "shape": ["N", 4]}],
)


@pytest.fixture(scope="module")
def workers(inference_root, django_db_setup, django_db_blocker):
    """An interactive worker on ``inference.cpu`` and a worker on ``checks``."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        started = [
            start_inference_worker(inference_root, queues=("inference.cpu",)),
            start_inference_worker(inference_root, queues=("checks",)),
        ]
    yield started
    for worker in started:
        worker.terminate()
    for worker in started:
        worker.wait_stopped()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_a_prediction_answers_while_a_never_ending_models_card_runs_and_the_card_stops_at_its_limit(
    runnable, world, workers, settings
):
    settings.INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS = CARD_TIME_LIMIT
    endless = runnable.version("endless", {"model.onnx": endless_model_bytes()}, ENDLESS_MANIFEST)
    iris = iris_version(runnable)
    card = start_performance_card(version=endless, actor=world.user("member"))
    assert card.queue == JobQueue.CHECKS and card.time_limit == CARD_TIME_LIMIT
    jobs_support.wait_for(jobs_support.job_in(card, JobStatus.RUNNING), timeout=60, what="the card to start")

    response = api_client_for(world.user("member")).post(
        predict_url(iris), {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "timeout": 15}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    assert response.json()["outputs"]["label"] == [0]
    assert Job.objects.get(pk=card.pk).status == JobStatus.RUNNING  # answered while the endless card ran
    finished = jobs_support.wait_for(
        jobs_support.job_in(card, JobStatus.FAILED, JobStatus.SUCCEEDED),
        timeout=CARD_TIME_LIMIT + 60,
        what="the card to stop at its time limit",
    )
    assert finished.status == JobStatus.FAILED
    assert f"time limit of {CARD_TIME_LIMIT} s" in finished.error, finished.error


def test_an_uploaded_version_is_validated_by_the_checks_worker(world, workers):
    draft = make_version(world, "argmax", model_bytes("argmax"), validated=False, publish=False)
    job = draft.validation_job

    assert job is not None and job.queue == JobQueue.CHECKS
    finished = jobs_support.wait_for(
        jobs_support.job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=120, what="the validation"
    )
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    draft.refresh_from_db()
    assert draft.validation_status == ValidationStatus.PASSED
