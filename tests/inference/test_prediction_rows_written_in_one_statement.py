"""A prediction's two rows (its Job and its InferenceJob) in one statement on PostgreSQL outside a transaction
(``start_job``'s ``beside``): the same rows the ORM writes in a transaction, both or neither, and the job sent once
they are in. Inside a caller's transaction the ORM writes them, and the job is sent when it commits."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core import job_services
from apps.core.jobs import Job, JobStatus
from apps.inference.models import InferenceJob
from apps.inference.predictions import PredictionInput, start_prediction

pytestmark = pytest.mark.django_db(transaction=True)
INPUTS = {"float_input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}
VOLATILE = {"id", "uuid", "created_at", "resend_at", "job", "job_id"}  # resend_at: a default of now + a delay


@pytest.fixture
def sent(monkeypatch):
    """The jobs sent (their ids, as they were when sent), instead of a broker."""
    jobs: list[tuple[int, bool]] = []

    def send(job):
        jobs.append((job.pk, InferenceJob.objects.filter(pk=job.pk).exists()))
        return True

    monkeypatch.setattr(job_services, "send_job", send)
    return jobs


def start(world, version, **kwargs):
    return start_prediction(
        version=version,
        request=PredictionInput(arrays=INPUTS, options={"outputs": []}),
        user=world.user("member"),
        organization=world.org,
        webhook_url="https://hooks.example/x",
        **kwargs,
    )


def row(model, pk) -> dict:
    return {key: value for key, value in model.objects.filter(pk=pk).values()[0].items() if key not in VOLATILE}


def test_one_statement_writes_what_the_orm_writes(world, runnable, tmp_path, sent):
    version = runnable.iris(tmp_path)
    sent.clear()  # its validation job
    with CaptureQueriesContext(connection) as fast_queries:
        fast = start(world, version)
    written = [query["sql"].split()[0] for query in fast_queries.captured_queries]
    assert written == ["WITH", "SELECT"]  # the two rows in one statement; then the fixture's check, when sent
    with transaction.atomic():  # a caller's transaction: the ORM's way, the job sent at commit
        slow = start(world, version)
        assert sent == [(fast.pk, True)]
    assert sent == [(fast.pk, True), (slow.pk, True)]
    assert row(Job, fast.pk) == row(Job, slow.pk)
    assert row(InferenceJob, fast.pk) == row(InferenceJob, slow.pk)
    fresh = Job.objects.select_related("inference").get(pk=fast.pk)
    assert fresh.status == JobStatus.QUEUED and fresh.uuid == fast.uuid and fresh.created_at == fast.created_at
    assert fresh.inference.created_at == fresh.created_at and bytes(fresh.inference.inputs) == bytes(
        fast.inference.inputs
    )
    assert fresh.params == {"version": str(version.uuid), "outputs": []}
    assert fast.inference.job_id == fast.pk and not fast._state.adding


def test_both_rows_or_neither(world, runnable, tmp_path, sent):
    version = runnable.iris(tmp_path)
    sent.clear()
    version.pk = 10**9  # no such version: the second insert's foreign key fails the statement
    before = Job.objects.count()
    with pytest.raises(IntegrityError):
        start(world, version)
    assert Job.objects.count() == before
    assert sent == []
