"""``seed_demo`` gives the demo organization real models, so that a new user of ``make run`` sees real
signatures: the iris classifier and MiniLM int8, validated by the real job, published, with a card and a
``production`` alias. Seeding again changes nothing; their pages render."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.marketplace.models import Model, ModelVersion, ValidationStatus, VersionStatus


@pytest.fixture
def seeded(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0
    call_command("seed_demo", verbosity=0)


@pytest.mark.django_db
def test_the_demo_has_published_models_with_real_signatures(seeded):
    iris = ModelVersion.objects.get(model__organization__slug="demo", model__name="iris-classifier", label="1.0.0")
    minilm = ModelVersion.objects.get(
        model__organization__slug="demo", model__name="all-minilm-l6-v2-int8", label="1.0.0"
    )
    for version in (iris, minilm):
        assert version.status == VersionStatus.PUBLISHED
        assert version.validation_status == ValidationStatus.PASSED
        assert version.model.card.startswith("# ")
        assert version.aliases.get().name == "production"
    assert iris.signature["inputs"] == [{"name": "float_input", "elem_type": "float32", "shape": [3, 2]}]
    assert iris.detected_task == "tabular-classification"
    assert [i["name"] for i in minilm.signature["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert minilm.signature["outputs"][0]["shape"] == ["batch", "sequence", 384]
    assert minilm.detected_task == "feature-extraction"


@pytest.mark.django_db
def test_seeding_again_changes_nothing(seeded):
    before = list(ModelVersion.objects.order_by("pk").values_list("pk", "updated_at"))
    call_command("seed_demo", verbosity=0)
    assert list(ModelVersion.objects.order_by("pk").values_list("pk", "updated_at")) == before
    assert Model.objects.filter(organization__slug="demo").count() == 2


@pytest.mark.django_db
def test_the_demo_member_sees_the_models_in_the_catalog_and_on_their_pages(seeded):
    client = Client()
    client.force_login(User.objects.get(email="member@demo.local"))
    catalog = client.get(reverse("catalog-models"))
    assert {m.name for m in catalog.context["page_obj"]} == {"iris-classifier", "all-minilm-l6-v2-int8"}
    page = client.get(reverse("catalog-model", args=["demo", "all-minilm-l6-v2-int8"]))
    assert page.status_code == 200
    assert "last_hidden_state" in page.content.decode()
