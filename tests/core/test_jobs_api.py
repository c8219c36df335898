"""The jobs API: who lists and reads which job, who may start an export, and every bad input answered by name."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.urls import reverse

from apps.accounts.models import TokenScope
from apps.core.jobs import Job, JobStatus
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:job-list")


def detail(job) -> str:
    return reverse("api:job-detail", kwargs={"uuid": job.uuid})


def download(job) -> str:
    return reverse("api:job-download", kwargs={"uuid": job.uuid})


@pytest.fixture
def jobs(world):
    make = lambda creator, **kw: Job.objects.create(  # noqa: E731
        kind="test.sleep", organization=world.org, creator=creator, **kw
    )
    return {
        "member": make(world.user("member")),
        "admin": make(world.user("admin"), status=JobStatus.FAILED, error="RuntimeError: boom"),
    }


def export_request(**overrides) -> dict:
    return {"kind": "audit.export", "organization": "acme", "params": {"format": "csv"}, **overrides}


# --- reading ----------------------------------------------------------------------------------------------------


def test_admin_lists_every_job_of_the_organization(api_client, world, jobs):
    response = api_client(world.user("admin")).get(LIST)
    assert response.status_code == 200
    assert {row["uuid"] for row in response.json()["results"]} == {str(job.uuid) for job in jobs.values()}


def test_member_lists_only_their_own_jobs(api_client, world, jobs):
    response = api_client(world.user("member")).get(LIST)
    assert [row["uuid"] for row in response.json()["results"]] == [str(jobs["member"].uuid)]


def test_jobs_are_filtered_by_status_kind_and_organization(api_client, world, jobs):
    client = api_client(world.user("admin"))
    failed = client.get(LIST, {"status": "failed"}).json()["results"]
    assert [row["uuid"] for row in failed] == [str(jobs["admin"].uuid)]
    assert client.get(LIST, {"kind": "audit.export"}).json()["results"] == []
    assert len(client.get(LIST, {"organization": "acme"}).json()["results"]) == 2
    assert client.get(LIST, {"organization": "elsewhere"}).json()["results"] == []


def test_an_unknown_status_filter_is_a_400_naming_status(api_client, world, jobs):
    response = api_client(world.user("admin")).get(LIST, {"status": "exploded"})
    assert response.status_code == 400
    assert "status" in response.json()


@pytest.mark.parametrize(
    ("persona", "expected"), [("owner", 200), ("admin", 200), ("member", 200), ("viewer", 404), ("outsider", 404)]
)
def test_who_may_read_the_members_job(api_client, world, jobs, persona, expected):
    response = api_client(world.user(persona)).get(detail(jobs["member"]))
    assert response.status_code == expected


def test_anonymous_gets_no_job(client, jobs):
    assert client.get(LIST).json()["results"] == []
    assert client.get(detail(jobs["member"])).status_code == 404


def test_a_job_shows_its_state_error_and_links(api_client, world, jobs):
    body = api_client(world.user("admin")).get(detail(jobs["admin"])).json()
    assert body["status"] == "failed"
    assert body["error"] == "RuntimeError: boom"
    assert body["organization"] == "acme"
    assert body["creator"] == "admin-user"
    assert body["url"].endswith(detail(jobs["admin"]))
    assert body["download_url"] is None


def test_download_of_an_unfinished_job_is_a_409(api_client, world, jobs):
    response = api_client(world.user("member")).get(download(jobs["member"]), HTTP_ACCEPT="text/csv")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "job_not_finished"


def test_download_of_a_job_that_made_no_file_is_a_404(api_client, world, jobs):
    Job.objects.filter(pk=jobs["member"].pk).update(status=JobStatus.SUCCEEDED)
    response = api_client(world.user("member")).get(download(jobs["member"]))
    assert response.status_code == 404
    assert response.json()["code"] == "no_file"


def test_an_unknown_uuid_is_a_404(api_client, world):
    response = api_client(world.user("admin")).get(reverse("api:job-detail", kwargs={"uuid": uuid.uuid4()}))
    assert response.status_code == 404


# --- starting ---------------------------------------------------------------------------------------------------


def test_admin_starts_an_audit_export(api_client, world, django_capture_on_commit_callbacks):
    client = api_client(world.user("admin"))  # writing its token schedules a cache invalidation: not this request
    with mock.patch("apps.core.job_services.send_job") as send_job:
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(LIST, export_request(), format="json")
        assert response.status_code == 201, response.json()
        assert not send_job.called  # the task is sent when the row is committed, not before
        for callback in callbacks:
            callback()
    body = response.json()
    assert (body["kind"], body["status"], body["organization"]) == ("audit.export", "queued", "acme")
    assert body["params"] == {"format": "csv", "filters": {}}
    assert response["Location"] == body["url"]
    assert [str(call.args[0].uuid) for call in send_job.call_args_list] == [body["uuid"]]  # once, this job


@pytest.mark.parametrize("persona", ["member", "viewer"])
def test_members_and_viewers_may_not_start_an_audit_export(api_client, world, persona):
    response = api_client(world.user(persona)).post(LIST, export_request(), format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert not Job.objects.exists()


def test_an_outsider_is_told_the_organization_does_not_exist(api_client, world):
    response = api_client(world.user("outsider")).post(LIST, export_request(), format="json")
    assert response.status_code == 400
    assert response.json()["codes"]["organization"] == ["does_not_exist"]
    assert not Job.objects.exists()


def test_anonymous_may_not_start_a_job(client, world):
    response = client.post(LIST, export_request(), content_type="application/json")
    assert response.status_code in (401, 403)
    assert not Job.objects.exists()


def test_an_export_needs_a_token_of_admin_scope(api_client, world):
    response = api_client(world.user("admin"), scope=TokenScope.RUN).post(LIST, export_request(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert not Job.objects.exists()


def test_a_read_token_may_not_start_anything(api_client, world):
    response = api_client(world.user("admin"), scope=TokenScope.READ).post(LIST, export_request(), format="json")
    assert response.status_code == 403


def test_a_token_bound_to_another_organization_cannot_start_jobs_here(api_client, world):
    elsewhere = OrganizationFactory()
    MembershipFactory(organization=elsewhere, user=world.user("admin"))
    response = api_client(world.user("admin"), organization=elsewhere).post(LIST, export_request(), format="json")
    assert response.status_code == 400
    assert "organization" in response.json()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"organization": "acme"}, "kind"),
        ({"kind": "audit.export"}, "organization"),
        ({"kind": "no.such.kind", "organization": "acme"}, "kind"),
        ({"kind": "test.sleep", "organization": "acme"}, "kind"),  # exists, but not for people to start
        ({"kind": "audit.export", "organization": "no-such-org"}, "organization"),
    ],
)
def test_bad_kind_or_organization_is_a_400_naming_the_field(api_client, world, body, field):
    response = api_client(world.user("admin")).post(LIST, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert response.json()["code"] == "validation_error"
    assert not Job.objects.exists()


def test_an_unknown_kind_lists_the_kinds_one_may_start(api_client, world):
    response = api_client(world.user("admin")).post(LIST, export_request(kind="sudo"), format="json")
    assert "audit.export" in response.json()["kind"][0]
    assert response.json()["codes"]["kind"] == ["invalid_choice"]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"format": "xml"}, ["format"]),
        ({"filters": {"colour": "red"}}, ["filters"]),
        ({"filters": {"since": "yesterday-ish"}}, ["filters", "since"]),
        ({"filters": {"since": "2026-02-01", "until": "2026-01-01"}}, ["filters", "until"]),
        ({"filters": ["action"]}, ["filters"]),
        (["csv"], ["non_field_errors"]),
    ],
)
def test_bad_export_params_are_a_400_naming_the_param(api_client, world, params, path):
    response = api_client(world.user("admin")).post(LIST, export_request(params=params), format="json")
    assert response.status_code == 400, response.json()
    errors = response.json()["params"]
    for key in path:
        assert key in errors, response.json()
        errors = errors[key]
    assert errors
    assert not Job.objects.exists()


def test_jobs_cannot_be_changed_or_deleted_through_the_api(api_client, world, jobs):
    client = api_client(world.user("admin"))
    assert client.patch(detail(jobs["admin"]), {"status": "succeeded"}, format="json").status_code == 405
    assert client.delete(detail(jobs["admin"])).status_code == 405
    assert Job.objects.get(pk=jobs["admin"].pk).status == JobStatus.FAILED
