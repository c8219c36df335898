"""An organization that requires MFA: its jobs in the API answer a session caller without MFA 403 ``mfa_required``,
as its ``/api/v1/orgs/<slug>/`` routes do; callers with MFA and API tokens are unaffected."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from apps.organizations import services
from tests.conftest import api_client_for
from tests.pages.mfa import enrol_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_job(world) -> Job:
    services.update_organization(actor=world.user("owner"), organization=world.org, require_mfa=True)
    return start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), queue="sync")


def session_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("method", "route"), [("get", "api:job-detail"), ("get", "api:job-download"), ("post", "api:job-cancel")]
)
def test_a_session_without_mfa_gets_403_mfa_required_on_the_job(world, strict_job, method, route):
    response = getattr(session_of(world.user("admin")), method)(reverse(route, kwargs={"uuid": strict_job.uuid}))

    assert response.status_code == 403
    assert response.json()["code"] == "mfa_required"
    assert "requires two-factor authentication" in response.json()["detail"]
    assert Job.objects.get(pk=strict_job.pk).status == JobStatus.QUEUED


def test_a_session_without_mfa_may_not_start_a_job_there(world, strict_job):
    body = {"kind": "audit.export", "organization": "acme", "params": {"format": "csv"}}
    before = Job.objects.count()

    response = session_of(world.user("admin")).post(reverse("api:job-list"), body, content_type="application/json")

    assert response.status_code == 403
    assert response.json()["code"] == "mfa_required"
    assert Job.objects.count() == before


def test_a_session_with_mfa_reads_the_job(world, strict_job):
    client = Client()
    enrol_totp(client, world.user("admin").email)

    response = client.get(reverse("api:job-detail", kwargs={"uuid": strict_job.uuid}))

    assert response.status_code == 200
    assert response.json()["uuid"] == str(strict_job.uuid)


def test_a_token_is_not_asked_for_mfa(world, strict_job):
    response = api_client_for(world.user("admin")).get(reverse("api:job-detail", kwargs={"uuid": strict_job.uuid}))
    assert response.status_code == 200


def test_a_job_of_another_organization_is_unaffected(world, strict_job):
    personal = services.create_organization(creator=world.user("admin"), slug="side-project", name="Side")
    job = start_job(kind="test.sleep", organization=personal, creator=world.user("admin"), queue="sync")

    response = session_of(world.user("admin")).get(reverse("api:job-detail", kwargs={"uuid": job.uuid}))

    assert response.status_code == 200
