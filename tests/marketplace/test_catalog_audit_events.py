"""Every change to the catalog is in the organization's audit trail, with who did it."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from tests.marketplace.conftest import iris_bytes, sha256_of, version_url

pytestmark = pytest.mark.django_db


def _actions() -> list[str]:
    return list(AuditEvent.objects.filter(action__startswith="model.").order_by("seq").values_list("action", flat=True))


def test_the_life_of_a_model_is_audited(catalog):
    member, admin = catalog.client("member"), catalog.client("admin")
    assert member.post("/api/v1/orgs/acme/models/", {"name": "iris"}, format="json").status_code == 201
    assert member.patch("/api/v1/models/acme/iris/", {"summary": "Iris"}, format="json").status_code == 200
    assert member.post("/api/v1/models/acme/iris/versions/", {"label": "1.0"}, format="json").status_code == 201
    model = catalog.world.org.models.get()
    version = model.versions.get()
    catalog.add(version, "labels.txt", b"a\n")
    catalog.add(version, "model.onnx", iris_bytes())
    assert member.delete(version_url(model, "1.0", "files/labels.txt")).status_code == 204
    version.__class__.objects.filter(pk=version.pk).update(validation_status="passed")
    assert member.post(version_url(model, "1.0", "publish/")).status_code == 200
    assert (
        member.put("/api/v1/models/acme/iris/aliases/", {"name": "prod", "version": "1.0"}, format="json").status_code
        == 200
    )
    assert member.post(version_url(model, "1.0", "deprecate/"), {}, format="json").status_code == 200
    assert admin.post(version_url(model, "1.0", "yank/"), {"reason": "broken"}, format="json").status_code == 200
    refused = member.post(
        version_url(model, "1.0", "uploads/"), {"path": "x.bin", "size": 1, "sha256": "0" * 64}, format="json"
    )
    assert refused.status_code == 400  # a yanked version takes no uploads: nothing audited for it
    assert admin.delete("/api/v1/models/acme/iris/").status_code == 204
    assert admin.post("/api/v1/models/acme/iris/restore/").status_code == 200

    assert _actions() == [
        "model.created",
        "model.updated",
        "model.version.created",
        "model.version.file_added",
        "model.version.file_added",
        "model.version.file_removed",
        "model.version.published",
        "model.alias.set",
        "model.version.deprecated",
        "model.version.yanked",
        "model.deleted",
        "model.restored",
    ]
    events = AuditEvent.objects.filter(action__startswith="model.")
    assert all(event.organization_id == catalog.world.org.pk for event in events)
    assert events.get(action="model.version.yanked").actor == catalog.world.user("admin")
    assert events.get(action="model.updated").diff == {"summary": ["", "Iris"]}
    published = events.get(action="model.version.published")
    assert published.metadata["files"] == {"model.onnx": sha256_of(iris_bytes())}


def test_upload_sessions_are_audited_when_started_and_aborted(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    client = catalog.client("member")
    started = client.post(
        version_url(model, "0.1", "uploads/"), {"path": "w.bin", "size": 10, "sha256": "1" * 64}, format="json"
    ).json()
    client.delete(started["upload_url"])
    assert "model.upload.started" in _actions()
    assert "model.upload.aborted" in _actions()


def test_a_refused_change_records_nothing(catalog):
    catalog.model("iris")
    before = _actions()
    assert (
        catalog.client("viewer").patch("/api/v1/models/acme/iris/", {"summary": "x"}, format="json").status_code == 403
    )
    assert (
        catalog.client("member").post("/api/v1/models/acme/iris/versions/", {"label": "../"}, format="json").status_code
        == 400
    )
    assert _actions() == before
