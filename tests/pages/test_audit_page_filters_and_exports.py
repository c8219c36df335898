"""The audit trail page: admins filter it by action, actor and period, and export it as an "audit.export" job
whose progress the page polls with htmx until it finishes and offers the file."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.tasks import export_audit_trail
from apps.core.jobs import Job
from apps.organizations import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(world):
    owner = world.user("owner")
    services.create_team(actor=owner, organization=world.org, slug="vision")
    services.create_team(actor=world.user("admin"), organization=world.org, slug="audio")
    services.update_organization(actor=owner, organization=world.org, description="Models for everyone")
    return world


def actions(response) -> list[str]:
    return [event.action for event in response.context["page_obj"]]


def test_admin_sees_the_trail_newest_first(trail, page_client):
    response = page_client("admin").get(reverse("org-audit", args=["acme"]))
    assert response.status_code == 200
    assert actions(response)[:3] == ["organization.updated", "team.created", "team.created"]
    assert "team.created" in response.content.decode()


def test_filters_by_action_actor_and_period(trail, page_client):
    client = page_client("admin")
    url = reverse("org-audit", args=["acme"])
    assert set(actions(client.get(url, {"action": "team.*"}))) == {"team.created"}
    assert actions(client.get(url, {"action": "team.created", "actor": "admin-user"})) == ["team.created"]
    assert actions(client.get(url, {"since": "2999-01-01"})) == []
    assert "No event matches" in client.get(url, {"since": "2999-01-01"}).content.decode()
    assert len(actions(client.get(url, {"until": "2999-01-01"}))) >= 3
    refused = client.get(url, {"since": "2030-01-02", "until": "2030-01-01"})
    assert refused.status_code == 400
    assert "must not be earlier" in refused.content.decode()


def test_export_button_starts_a_job_and_htmx_gets_a_polling_progress_bar(trail, page_client):
    response = page_client("admin").post(
        reverse("org-audit-export", args=["acme"]), {"format": "jsonl", "action": "team.*"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    job = Job.objects.get(kind="audit.export")
    assert job.creator == trail.user("admin")
    assert job.params == {"format": "jsonl", "filters": {"action": "team.*"}}
    body = response.content.decode()
    assert f'hx-get="{reverse("job-progress", args=[job.uuid])}"' in body
    assert 'hx-trigger="every 1s"' in body


def test_export_without_htmx_goes_to_the_job_page(trail, page_client):
    response = page_client("admin").post(reverse("org-audit-export", args=["acme"]), {"format": "csv"})
    job = Job.objects.get(kind="audit.export")
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", args=[job.uuid])
    page = page_client("admin").get(response["Location"])
    assert page.status_code == 200
    assert "progressbar" in page.content.decode()


def test_a_bad_export_format_is_refused_and_starts_nothing(trail, page_client):
    response = page_client("admin").post(
        reverse("org-audit-export", args=["acme"]), {"format": "xlsx"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "format" in response.content.decode()
    assert not Job.objects.exists()


def test_members_cannot_export(trail, page_client):
    assert page_client("member").post(reverse("org-audit-export", args=["acme"]), {"format": "csv"}).status_code == 403
    assert (
        page_client("outsider").post(reverse("org-audit-export", args=["acme"]), {"format": "csv"}).status_code == 404
    )
    assert not Job.objects.exists()


def test_finished_export_stops_polling_and_offers_the_file(trail, page_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = page_client("admin")
    client.post(reverse("org-audit-export", args=["acme"]), {"format": "csv"})
    job = Job.objects.get(kind="audit.export")
    export_audit_trail.apply(args=[job.pk])  # the real task, run in this process
    job.refresh_from_db()
    assert job.status == "succeeded", job.error

    fragment = client.get(reverse("job-progress", args=[job.uuid])).content.decode()
    assert "hx-trigger" not in fragment
    download = reverse("api:job-download", kwargs={"uuid": job.uuid})
    assert download in fragment
    response = client.get(download)
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    assert content.splitlines()[0].startswith("uuid,")
    assert "team.created" in content
