"""``seed_demo`` gives the demo organization real, public models, so that a new user of ``make run`` (signed in or
not) sees real signatures: the iris classifier and MiniLM int8, each with a gpux.yml (class names; the tokenizer
and mean pooling) checked by the real validation job, published, with a card and a ``production`` alias. Seeding
again changes nothing; their pages render, for a visitor too, and their "try it" forms start with an example."""

from __future__ import annotations

import re

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
    assert iris.signature["inputs"] == [{"name": "float_input", "elem_type": "float32", "shape": [None, 4]}]
    assert iris.detected_task == "tabular-classification"
    # The gpux.yml each ships was read by the validation job: class names; tokenizer, pooling and an example.
    iris_manifest = iris.onnx_info["manifest"]
    assert [o.get("labels") for o in iris_manifest["outputs"]] == [["setosa", "versicolor", "virginica"]] * 2
    assert iris_manifest["examples"] == [{"float_input": [[5.1, 3.5, 1.4, 0.2]]}]
    minilm_manifest = minilm.onnx_info["manifest"]
    assert minilm_manifest["preprocessing"]["tokenizer"] == "tokenizer.json"
    assert minilm_manifest["postprocessing"] == {"pooling": "mean", "normalize": True, "output": "last_hidden_state"}
    assert {f.path for f in minilm.files.all()} == {"model.onnx", "tokenizer.json", "gpux.yml"}
    assert [i["name"] for i in minilm.signature["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert minilm.signature["outputs"][0]["shape"] == ["batch", "sequence", 384]
    assert minilm.detected_task == "feature-extraction"


@pytest.mark.django_db
def test_seeding_again_changes_nothing(seeded):
    before = list(ModelVersion.objects.order_by("pk").values_list("pk", "updated_at"))
    call_command("seed_demo", verbosity=0)
    assert list(ModelVersion.objects.order_by("pk").values_list("pk", "updated_at")) == before
    assert Model.objects.filter(organization__slug="demo").count() == 2
    assert ModelVersion.objects.filter(model__organization__slug="demo").count() == 2


@pytest.mark.django_db
def test_the_demo_member_sees_the_models_in_the_catalog_and_on_their_pages(seeded):
    client = Client()
    client.force_login(User.objects.get(email="member@demo.local"))
    catalog = client.get(reverse("catalog-models"))
    assert {m.name for m in catalog.context["page_obj"]} == {"iris-classifier", "all-minilm-l6-v2-int8"}
    page = client.get(reverse("catalog-model", args=["demo", "all-minilm-l6-v2-int8"]))
    assert page.status_code == 200
    assert "last_hidden_state" in page.content.decode()


@pytest.mark.django_db
def test_a_visitor_who_is_not_signed_in_finds_the_public_demo_models(seeded):
    visitor = Client()
    catalog = visitor.get(reverse("catalog-models"))
    assert {m.name for m in catalog.context["page_obj"]} == {"iris-classifier", "all-minilm-l6-v2-int8"}
    page = visitor.get(reverse("catalog-model", args=["demo", "iris-classifier"])).content.decode()
    assert "Sign in to run this model" in page
    assert Model.objects.filter(organization__slug="demo").exclude(visibility="public").count() == 0


@pytest.mark.django_db
def test_the_demo_try_it_forms_start_with_a_working_example(seeded):
    client = Client()
    client.force_login(User.objects.get(email="member@demo.local"))
    iris = client.get(reverse("catalog-model", args=["demo", "iris-classifier"])).content.decode()
    assert re.search(r'<textarea name="tensor_0"[^>]*>\s*\[\[5\.1, 3\.5, 1\.4, 0\.2\]\]</textarea>', iris)
    assert "sepal length, sepal width, petal length, petal width" in iris
    minilm = client.get(reverse("catalog-model", args=["demo", "all-minilm-l6-v2-int8"])).content.decode()
    assert re.search(r'<textarea name="text"[^>]*>\s*GPUX Portal runs ONNX models on GPU workers\.</textarea>', minilm)
    assert "reads text, answers embeddings" in minilm


@pytest.mark.django_db
def test_the_demo_owner_reaches_the_admin_site(seeded):
    owner = User.objects.get(email="owner@demo.local")
    assert owner.is_staff and owner.is_superuser
    assert not User.objects.get(email="member@demo.local").is_staff
    client = Client()
    client.force_login(owner)
    assert client.get("/admin/").status_code == 200
