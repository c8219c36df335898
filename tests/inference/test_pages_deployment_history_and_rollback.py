"""A deployment's page: the revision history with a one-click rollback per earlier revision (POST, CSRF, members),
pause and resume, and deleting after typing the slug (admins). Each is a service call: a new revision and an audit
event, or a message saying why not and nothing written."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.inference import services
from apps.inference.models import Deployment, DeploymentStatus

pytestmark = pytest.mark.django_db
PAGE = "/orgs/acme/deployments/iris-prod/"


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def deployment(runnable, world, tmp_path) -> Deployment:
    """iris-prod at revision 2: revision 1 served 1.0.0, revision 2 serves 2.0.0."""
    first = runnable.iris(tmp_path)
    second = runnable.iris(tmp_path, model=first.model, label="2.0.0")
    member = world.user("member")
    made = services.create_deployment(
        organization=world.org, model=first.model, actor=member, slug="iris-prod", version=first
    )
    return services.update_deployment(deployment=made, actor=member, reason="new training data", version=second)


def history_rows(page: str) -> list[str]:
    table = page[page.index('id="revision-history"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_the_history_lists_each_revision_with_a_rollback_button_for_the_earlier_ones(deployment, world):
    page = client_for(world.user("member")).get(PAGE).content.decode()
    rows = history_rows(page)
    assert len(rows) == 2
    assert rows[0].startswith("r2 current") and "2.0.0" in rows[0] and "new training data" in rows[0]
    assert rows[1].startswith("r1") and "1.0.0" in rows[1] and "created" in rows[1]
    assert "Roll back to r1" in rows[1] and "Roll back" not in rows[0]
    assert re.search(r'name="csrfmiddlewaretoken".{0,200}name="revision" value="1"', page, re.S)


def test_a_viewer_sees_the_history_without_rollback_buttons(deployment, world):
    page = client_for(world.user("viewer")).get(PAGE).content.decode()
    assert len(history_rows(page)) == 2
    assert "Roll back to" not in page and "Pause" not in page


def test_rolling_back_serves_the_earlier_version_as_a_new_revision(deployment, world):
    client = client_for(world.user("member"))
    response = client.post(f"{PAGE}rollback/", {"revision": 1}, follow=True)
    page = response.content.decode()
    assert "Rolled back: revision 3 serves what revision 1 served (1.0.0)." in page
    rows = history_rows(page)
    assert rows[0].startswith("r3 current") and "1.0.0" in rows[0] and "rollback to revision 1" in rows[0]
    assert "Roll back to r2" in rows[1] and "Roll back to r1" in rows[2]
    deployment.refresh_from_db()
    assert (deployment.revision, deployment.version.label) == (3, "1.0.0")
    assert AuditEvent.objects.filter(action="deployment.rolled_back").count() == 1


def test_rolling_back_to_the_current_revision_is_refused_with_a_message(deployment, world):
    client = client_for(world.user("member"))
    before = AuditEvent.objects.count()
    response = client.post(f"{PAGE}rollback/", {"revision": 2}, follow=True)
    assert "There is no earlier revision 2 of acme/iris-prod to roll back to (now at 2)." in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.revision == 2 and AuditEvent.objects.count() == before


def test_a_rollback_without_a_revision_number_is_refused_naming_the_field(deployment, world):
    response = client_for(world.user("member")).post(f"{PAGE}rollback/", {"revision": "latest"}, follow=True)
    assert "revision: give the number of the revision to roll back to." in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.revision == 2


def test_a_rollback_needs_the_csrf_token(deployment, world):
    client = client_for(world.user("member"), enforce_csrf_checks=True)
    assert client.post(f"{PAGE}rollback/", {"revision": 1}).status_code == 403
    deployment.refresh_from_db()
    assert deployment.revision == 2


def test_pausing_and_resuming_write_revisions_and_change_the_buttons(deployment, world):
    client = client_for(world.user("member"))
    page = client.post(f"{PAGE}pause/", follow=True).content.decode()
    assert "Paused: requests answer 409 until it is resumed." in page
    assert 'id="resume-deployment"' in page and 'id="pause-deployment"' not in page
    deployment.refresh_from_db()
    assert (deployment.status, deployment.revision) == (DeploymentStatus.PAUSED, 3)
    again = client.post(f"{PAGE}pause/", follow=True).content.decode()
    assert "The deployment is already paused." in again
    deployment.refresh_from_db()
    assert deployment.revision == 3
    client.post(f"{PAGE}resume/")
    deployment.refresh_from_db()
    assert (deployment.status, deployment.revision) == (DeploymentStatus.ACTIVE, 4)


def test_deleting_needs_the_slug_typed_and_an_admin(deployment, world):
    admin = client_for(world.user("admin"))
    wrong = admin.post(f"{PAGE}delete/", {"confirm_slug": "iris"}, follow=True).content.decode()
    assert "Type the deployment's slug, “iris-prod”, to delete it." in wrong.replace("&#x27;", "'")
    assert Deployment.objects.filter(pk=deployment.pk).exists()
    assert client_for(world.user("member")).post(f"{PAGE}delete/", {"confirm_slug": "iris-prod"}).status_code == 403
    response = admin.post(f"{PAGE}delete/", {"confirm_slug": "iris-prod"})
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/deployments/"
    assert not Deployment.objects.filter(pk=deployment.pk).exists()
    assert AuditEvent.objects.filter(action="deployment.deleted").count() == 1
