"""A prediction's Job and InferenceJob rows are committed before its task message is sent: at the moment the
message is published, another database connection already sees the job, queued; with no worker consuming, the
API answers 202 with the job queued and the broker holds exactly that one message."""

from __future__ import annotations

import base64
import json

import psycopg
import pytest
import redis
from celery.signals import before_task_publish
from django.conf import settings
from django.db import connection

from apps.core.jobs import Job, JobStatus
from apps.inference.models import InferenceJob
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_performance_card(settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False


@pytest.fixture
def empty_broker():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL and Redis, as in CI")
    jobs_support.purge_broker()
    yield redis.Redis.from_url(settings.CELERY_BROKER_URL)
    jobs_support.purge_broker()


def rows_seen_from_another_connection(job_id: int) -> tuple | None:
    """What a worker would see: the job and its InferenceJob as committed, read over a connection of its own."""
    query = (
        f"SELECT job.status, inference.version_id FROM {Job._meta.db_table} AS job "
        f"JOIN {InferenceJob._meta.db_table} AS inference ON inference.job_id = job.id WHERE job.id = %s"
    )
    with psycopg.connect(jobs_support.database_url_of_this_test_run()) as other:
        return other.execute(query, [job_id]).fetchone()


def test_the_rows_exist_queued_when_the_message_is_sent_and_the_broker_holds_it(runnable, world, empty_broker):
    version = iris_version(runnable)
    seen_at_publish: list[tuple | None] = []

    def look_at_the_database(sender=None, body=None, routing_key=None, **kwargs):
        if sender == "inference.predict":
            args = body[0]
            seen_at_publish.append((routing_key, args, rows_seen_from_another_connection(args[0])))

    before_task_publish.connect(look_at_the_database)
    try:
        response = api_client_for(world.user("member")).post(
            f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict?async=1",
            {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}},
            format="json",
        )
    finally:
        before_task_publish.disconnect(look_at_the_database)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    assert response["Location"].endswith(f"/api/v1/predictions/{response.json()['job']}/")
    job = Job.objects.get(uuid=response.json()["job"])
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    assert InferenceJob.objects.get(job=job).version_id == version.pk

    assert len(seen_at_publish) == 1
    (routing_key, args, rows) = seen_at_publish[0]
    assert routing_key == "inference.cpu" and args == [job.pk]
    assert rows == (JobStatus.QUEUED, version.pk)

    assert empty_broker.llen("inference.cpu") == 1
    message = json.loads(empty_broker.lindex("inference.cpu", 0))
    assert message["headers"]["task"] == "inference.predict"
    assert json.loads(base64.b64decode(message["body"]))[0] == [job.pk]

    detail = api_client_for(world.user("member")).get(f"/api/v1/predictions/{job.uuid}/")
    assert detail.status_code == 200
    assert detail.json()["status"] == "queued"
