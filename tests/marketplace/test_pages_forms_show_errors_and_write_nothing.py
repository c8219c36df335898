"""Bad input on the catalog pages answers 400 with the error next to its field, and writes nothing: no model,
no version, no change, no audit event. Refused button actions (yank without a reason, publishing what did not
pass validation) say why and leave the version as it was."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.access import Visibility
from apps.marketplace.models import Model, ModelVersion, VersionStatus


@pytest.fixture
def member(world) -> Client:
    client = Client()
    client.force_login(world.user("member"))
    return client


def errors_of(response) -> dict:
    return {field: list(errors) for field, errors in response.context["form"].errors.items()}


GOOD_MODEL = {"name": "iris", "summary": "", "task": "", "tags": "", "license": "", "visibility": "private", "card": ""}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Not A Name!"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 97}, "name"),
        ({"visibility": "secret"}, "visibility"),
        ({"tags": ", ".join(f"tag{i}" for i in range(40))}, "tags"),
        ({"tags": "x" * 60}, "tags"),
        ({"summary": "s" * 301}, "summary"),
    ],
)
def test_a_bad_new_model_answers_400_on_its_field_and_creates_nothing(world, member, change, field):
    events = AuditEvent.objects.count()
    response = member.post(reverse("catalog-model-create", args=[world.org.slug]), {**GOOD_MODEL, **change})
    assert response.status_code == 400
    assert field in errors_of(response), errors_of(response)
    assert 'class="invalid-feedback d-block"' in response.content.decode()
    assert not Model.with_deleted.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_taken_model_name_is_refused_on_the_name_field(world, member, catalog):
    catalog.model("iris")
    events = AuditEvent.objects.count()
    response = member.post(reverse("catalog-model-create", args=[world.org.slug]), GOOD_MODEL)
    assert response.status_code == 400
    assert "already has a model named" in " ".join(errors_of(response)["name"])
    assert Model.objects.count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_good_new_model_is_created_and_leads_to_its_first_version(world, member):
    response = member.post(
        reverse("catalog-model-create", args=[world.org.slug]),
        {**GOOD_MODEL, "tags": "ONNX, tabular, onnx", "summary": "Iris flowers"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog-version-create", args=[world.org.slug, "iris"])
    model = Model.objects.get(organization=world.org, name="iris")
    assert model.tags == ["onnx", "tabular"]
    assert model.created_by == world.user("member")


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "message"), [("../1", "valid version label"), ("1.0.0", "already has a version")])
def test_a_bad_or_taken_version_label_answers_400_and_creates_nothing(world, member, catalog, label, message):
    model = catalog.model("iris")
    catalog.version(model, "1.0.0")
    events = AuditEvent.objects.count()
    response = member.post(reverse("catalog-version-create", args=[world.org.slug, "iris"]), {"label": label})
    assert response.status_code == 400
    assert message in " ".join(errors_of(response)["label"])
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_bad_card_edit_answers_400_and_changes_nothing(world, member, catalog):
    model = catalog.model("iris", summary="Before", card="# Before")
    events = AuditEvent.objects.count()
    response = member.post(
        reverse("catalog-model-edit", args=[world.org.slug, "iris"]),
        {"summary": "After", "card": "# After", "visibility": "everyone", "tags": "", "task": "", "license": ""},
    )
    assert response.status_code == 400
    assert "visibility" in errors_of(response)
    model.refresh_from_db()
    assert (model.summary, model.card, model.visibility) == ("Before", "# Before", Visibility.PRIVATE)
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_good_card_edit_is_saved(world, member, catalog):
    catalog.model("iris")
    response = member.post(
        reverse("catalog-model-edit", args=[world.org.slug, "iris"]),
        {"summary": "After", "card": "# After", "visibility": "internal", "tags": "a, b", "task": "", "license": "mit"},
    )
    assert response.status_code == 302
    model = Model.objects.get(name="iris")
    assert (model.summary, model.card, model.visibility, model.tags, model.license) == (
        "After",
        "# After",
        "internal",
        ["a", "b"],
        "mit",
    )


@pytest.mark.django_db
def test_yanking_without_a_reason_is_refused_with_a_message(world, catalog):
    model = catalog.model("iris")
    version = catalog.published(model)
    admin = Client()
    admin.force_login(world.user("admin"))
    events = AuditEvent.objects.count()
    response = admin.post(
        reverse("catalog-version-yank", args=[world.org.slug, "iris", "1.0.0"]), {"reason": " "}, follow=True
    )
    assert response.status_code == 200
    assert "Say why the version is yanked" in response.content.decode()
    version.refresh_from_db()
    assert version.status == VersionStatus.PUBLISHED
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_publishing_a_draft_that_was_not_validated_is_refused_with_the_reason(world, member, catalog):
    model = catalog.model("iris")
    version = catalog.version(model, "1.0.0")
    events = AuditEvent.objects.count()
    response = member.post(reverse("catalog-version-publish", args=[world.org.slug, "iris", "1.0.0"]), follow=True)
    assert response.status_code == 200
    assert "Upload the ONNX model file" in response.content.decode()
    version.refresh_from_db()
    assert version.status == VersionStatus.DRAFT
    assert AuditEvent.objects.count() == events
