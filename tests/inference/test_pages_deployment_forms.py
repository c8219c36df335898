"""Creating and editing a deployment from its pages: every change goes through apps.inference.services (a new
revision and an audit event); a refusal, from the form or from the service, is shown next to its field with status
400, and nothing is written."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.inference.models import Deployment, DeploymentRevision
from apps.marketplace import services as catalog

pytestmark = pytest.mark.django_db
NEW = "/orgs/acme/deployments/new/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def settings_form(**changes) -> dict:
    form = {
        "slug": "iris-prod", "model": "iris", "description": "", "version": "1.0.0", "alias": "", "canary_version": "",
        "canary_percent": 0, "device": "auto", "provider": "auto", "max_batch_size": 1, "max_delay_ms": 5,
        "concurrency": 64, "timeout_seconds": 30, "visibility": "private",
    }  # fmt: skip
    form.update(changes)
    return form


def errors_by_field(response) -> dict[str, list[str]]:
    """The invalid-feedback messages of the page, by the name of the field they follow."""
    page = response.content.decode()
    found: dict[str, list[str]] = {}
    for block in page.split('<div class="mb-3">')[1:]:
        name = re.search(r'name="([^"]+)"', block)
        messages = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', block)
        if name and messages:
            found[name.group(1)] = messages
    return found


def test_a_member_deploys_a_published_version(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    client = client_for(world.user("member"))
    response = client.post(NEW, settings_form(description="Species"))
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/deployments/iris-prod/"
    deployment = Deployment.objects.get(slug="iris-prod")
    assert (deployment.revision, deployment.version.label, deployment.description) == (1, "1.0.0", "Species")
    assert AuditEvent.objects.filter(action="deployment.created").count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "created: it serves 1.0.0" in page


def test_a_draft_version_is_refused_on_the_version_field_and_nothing_is_written(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    catalog.create_version(model=version.model, actor=world.user("member"), label="2.0.0-draft")
    response = client_for(world.user("member")).post(NEW, settings_form(version="2.0.0-draft"))
    assert response.status_code == 400
    errors = errors_by_field(response)
    assert list(errors) == ["version"]
    assert "only published versions are served" in errors["version"][0]
    assert not Deployment.objects.exists() and not AuditEvent.objects.filter(action="deployment.created").exists()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"version": "9.9.9"}, "version", "has no version “9.9.9”"),
        ({"alias": "production"}, "version", "either a version or an alias"),
        ({"version": "", "alias": "production"}, "alias", "has no alias “production”"),
        ({"canary_percent": 20}, "canary_percent", "needs a canary_version"),
        ({"canary_version": "1.0.0", "canary_percent": 100}, "canary_percent", "1 to 99"),
        ({"slug": "Not A Slug"}, "slug", "lowercase letters"),
        ({"slug": "new"}, "slug", "choose another slug"),
        ({"max_batch_size": 0}, "max_batch_size", "greater than or equal to 1"),
        ({"model": "nope"}, "model", "Select a valid choice"),
    ],
)
def test_a_refused_setting_is_shown_on_its_field_and_nothing_is_written(
    runnable, world, tmp_path, changes, field, words
):
    runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(NEW, settings_form(**changes))
    assert response.status_code == 400
    errors = errors_by_field(response)
    assert field in errors, errors
    assert any(words in message.replace("&quot;", '"').replace("&#x27;", "'") for message in errors[field]), errors
    assert not Deployment.objects.exists()
    assert not DeploymentRevision.objects.exists()


def test_a_slug_already_taken_is_refused_on_the_slug_field(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    client = client_for(world.user("member"))
    assert client.post(NEW, settings_form()).status_code == 302
    response = client.post(NEW, settings_form(description="again"))
    assert response.status_code == 400
    assert "already has a deployment “iris-prod”" in errors_by_field(response)["slug"][0]
    assert Deployment.objects.get().description == ""


def test_the_edit_form_writes_a_new_revision_with_its_reason(runnable, world, tmp_path):
    first = runnable.iris(tmp_path)
    runnable.iris(tmp_path, model=first.model, label="2.0.0")
    client = client_for(world.user("member"))
    client.post(NEW, settings_form())
    edit = "/orgs/acme/deployments/iris-prod/edit/"
    form = client.get(edit).content.decode()
    assert re.search(r'name="version" value="1.0.0"', form) and 'name="slug"' not in form
    changes = {k: v for k, v in settings_form(version="2.0.0", reason="new data").items() if k not in ("slug", "model")}
    response = client.post(edit, changes)
    assert response.status_code == 302
    deployment = Deployment.objects.get()
    assert (deployment.revision, deployment.version.label) == (2, "2.0.0")
    assert DeploymentRevision.objects.get(deployment=deployment, number=2).reason == "new data"
    assert "Saved as revision 2." in client.get(response["Location"]).content.decode()


def test_saving_the_edit_form_unchanged_writes_no_revision(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    client = client_for(world.user("member"))
    client.post(NEW, settings_form())
    changes = {k: v for k, v in settings_form().items() if k not in ("slug", "model")}
    response = client.post("/orgs/acme/deployments/iris-prod/edit/", changes, follow=True)
    assert "Nothing changed: no new revision." in response.content.decode()
    assert Deployment.objects.get().revision == 1
    assert not AuditEvent.objects.filter(action="deployment.updated").exists()


def test_a_refused_edit_leaves_the_deployment_as_it_was(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    client = client_for(world.user("member"))
    client.post(NEW, settings_form())
    changes = {
        k: v for k, v in settings_form(canary_version="1.0.0", canary_percent=0).items() if k not in ("slug", "model")
    }
    response = client.post("/orgs/acme/deployments/iris-prod/edit/", {**changes, "max_delay_ms": 50})
    assert response.status_code == 400
    assert "1 to 99" in errors_by_field(response)["canary_percent"][0]
    deployment = Deployment.objects.get()
    assert (deployment.revision, deployment.max_delay_ms, deployment.canary_version_id) == (1, 5, None)
