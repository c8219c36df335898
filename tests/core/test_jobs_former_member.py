"""A member who leaves or is removed from an organization loses its jobs and their files the moment the membership
ends; a prediction they made stays theirs."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from apps.inference.predictions import PREDICT_KIND
from apps.organizations import services as org_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(world, media_root) -> Job:
    """An audit export of acme that its admin started, finished, with its file."""
    job = start_job(kind="audit.export", organization=world.org, creator=world.user("admin"), params={})
    job.status, job.finished_at = JobStatus.SUCCEEDED, timezone.now()
    job.result = {"content_type": "text/csv", "rows": 0}
    job.result_file.save("acme-audit.csv", ContentFile(b"seq,action\n"), save=False)
    job.save()
    return job


def urls(job: Job) -> list[str]:
    return [
        reverse("api:job-detail", kwargs={"uuid": job.uuid}),
        reverse("api:job-download", kwargs={"uuid": job.uuid}),
    ]


def test_the_creator_downloads_their_export_while_a_member(api_client, world, export):
    client = api_client(world.user("admin"))
    assert [client.get(url).status_code for url in urls(export)] == [200, 200]


def test_an_admin_who_leaves_loses_the_export_they_started_and_its_file(api_client, client, world, export):
    admin = world.user("admin")
    assert not export.creator_keeps_access  # an export of the audit trail is the organization's
    org_services.leave_organization(user=admin, organization=world.org)

    api = api_client(admin)
    assert [api.get(url).status_code for url in urls(export)] == [404, 404]
    assert api.get(reverse("api:job-list")).json()["results"] == []
    assert api.post(reverse("api:job-cancel", kwargs={"uuid": export.uuid})).status_code == 404
    client.force_login(admin)
    assert client.get(reverse("job-detail", kwargs={"uuid": export.uuid})).status_code == 404
    assert str(export.uuid) not in client.get(reverse("home")).content.decode()


def test_a_removed_member_loses_the_job_they_started_at_once(api_client, world):
    member = world.user("member")
    job = start_job(kind="test.sleep", organization=world.org, creator=member, queue="sync")
    api = api_client(member)
    assert api.get(reverse("api:job-detail", kwargs={"uuid": job.uuid})).status_code == 200

    org_services.remove_member(actor=world.user("owner"), membership=world.org.memberships.get(user=member))

    assert api.get(reverse("api:job-detail", kwargs={"uuid": job.uuid})).status_code == 404
    assert api.post(reverse("api:job-cancel", kwargs={"uuid": job.uuid})).status_code == 404
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED
    # The organization's admins still see it.
    assert api_client(world.user("owner")).get(reverse("api:job-detail", kwargs={"uuid": job.uuid})).status_code == 200


def test_a_prediction_stays_its_creators_after_they_leave(api_client, world):
    member = world.user("member")
    prediction = Job.objects.create(kind=PREDICT_KIND, organization=world.org, creator=member)
    assert prediction.creator_keeps_access

    org_services.leave_organization(user=member, organization=world.org)

    assert api_client(member).get(reverse("api:job-detail", kwargs={"uuid": prediction.uuid})).status_code == 200
    # It is still the organization's too.
    admin = api_client(world.user("admin"))
    assert admin.get(reverse("api:job-detail", kwargs={"uuid": prediction.uuid})).status_code == 200
