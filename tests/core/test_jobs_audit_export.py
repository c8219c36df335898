"""The audit export job on a real worker: an org admin starts it, follows it and downloads a correct file."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from apps.audit.exports import EXPORT_FIELDS
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.core.jobs import Job, JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LIST = reverse("api:job-list")


@pytest.fixture
def trail(world):
    """A few events of acme's own (besides those its setup recorded) and one of another organization."""
    admin = world.user("admin")
    for number in range(3):
        record_event(action="model.published", organization=world.org, actor=admin, metadata={"n": number})
    record_event(action="member.added", organization=world.org, actor=admin, diff={"role": [None, "member"]})
    outsider_org = world.user("outsider").personal_organization
    record_event(action="model.published", organization=outsider_org, actor=world.user("outsider"))
    return world


def run_export(client, params) -> Job:
    response = client.post(LIST, {"kind": "audit.export", "organization": "acme", "params": params}, format="json")
    assert response.status_code == 201, response.json()
    job = Job.objects.get(uuid=response.json()["uuid"])
    return wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), what="the export to finish")


def expected_events(job: Job, **filters):
    return list(
        AuditEvent.objects.filter(organization=job.organization, seq__lte=job.result["last_seq"], **filters).order_by(
            "seq"
        )
    )


def download_body(client, job: Job, accept: str):
    response = client.get(reverse("api:job-download", kwargs={"uuid": job.uuid}), HTTP_ACCEPT=accept)
    assert response.status_code == 200
    return response, b"".join(response.streaming_content)


def test_an_admin_exports_the_trail_as_csv_and_downloads_it(job_worker, trail, api_client):
    client = api_client(trail.user("admin"))

    job = run_export(client, {"format": "csv"})

    assert job.status == JobStatus.SUCCEEDED, job.traceback
    events = expected_events(job)
    response, body = download_body(client, job, "text/csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{job.result["file"]}"'
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert [row["uuid"] for row in rows] == [str(event.uuid) for event in events]
    assert [row["hash"] for row in rows] == [event.hash for event in events]
    assert [row["action"] for row in rows] == [event.action for event in events]
    assert job.result["rows"] == len(events) == len(rows)
    assert job.result["bytes"] == len(body)
    assert (job.progress, job.attempts) == (1.0, 1)
    assert job.progress_message == f"Exported {len(events)} events"
    detail = client.get(reverse("api:job-detail", kwargs={"uuid": job.uuid})).json()
    assert detail["download_url"].endswith(reverse("api:job-download", kwargs={"uuid": job.uuid}))


def test_a_filtered_export_as_json_lines(job_worker, trail, api_client):
    client = api_client(trail.user("owner"))

    job = run_export(client, {"format": "jsonl", "filters": {"action": "model.*"}})

    assert job.status == JobStatus.SUCCEEDED, job.traceback
    events = expected_events(job, action__startswith="model.")
    assert len(events) == 3
    response, body = download_body(client, job, "application/x-ndjson")
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [line["hash"] for line in lines] == [event.hash for event in events]
    assert [line["metadata"] for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert job.result["rows"] == 3


def test_only_the_creator_and_org_admins_may_download_the_export(job_worker, trail, api_client):
    job = run_export(api_client(trail.user("admin")), {"format": "csv"})
    assert job.status == JobStatus.SUCCEEDED, job.traceback
    url = reverse("api:job-download", kwargs={"uuid": job.uuid})

    answers = {persona: api_client(trail.user(persona)).get(url).status_code for persona in trail.users}

    assert answers == {"owner": 200, "admin": 200, "member": 404, "viewer": 404, "outsider": 404}
