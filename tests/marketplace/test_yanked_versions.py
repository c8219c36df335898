"""Yanking hides a version from new users (410 with the reason) and keeps it for those who pinned its exact
label and downloaded it before."""

from __future__ import annotations

import pytest

from apps.marketplace import services
from apps.marketplace.models import ModelVersion
from tests.factories import UserFactory
from tests.marketplace.conftest import api_client_for, file_url, iris_bytes, sha256_of, version_url

pytestmark = pytest.mark.django_db

REASON = "Wrong labels: use 1.1."


@pytest.fixture
def public_model(catalog):
    model = catalog.model("iris", visibility="public")
    catalog.published(model, "1.0")
    catalog.published(model, "1.1")
    return model


def _yank(catalog, model, label="1.0"):
    response = catalog.client("admin").post(version_url(model, label, "yank/"), {"reason": REASON}, format="json")
    assert response.status_code == 200, response.content
    return response


def test_yanking_needs_a_reason(catalog, public_model):
    response = catalog.client("admin").post(version_url(public_model, "1.0", "yank/"), {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    response = catalog.client("admin").post(version_url(public_model, "1.0", "yank/"), {"reason": "  "}, format="json")
    assert response.status_code == 400


def test_members_may_not_yank(catalog, public_model):
    response = catalog.client("member").post(
        version_url(public_model, "1.0", "yank/"), {"reason": REASON}, format="json"
    )
    assert response.status_code == 403
    assert ModelVersion.objects.get(label="1.0").status == "published"


def test_a_draft_cannot_be_yanked(catalog, public_model):
    catalog.version(public_model, "2.0")
    response = catalog.client("admin").post(
        version_url(public_model, "2.0", "yank/"), {"reason": REASON}, format="json"
    )
    assert response.status_code == 400


def test_a_new_user_gets_410_with_the_reason(catalog, public_model):
    _yank(catalog, public_model)
    newcomer = api_client_for(UserFactory())
    response = newcomer.get(file_url(public_model, "1.0", "model.onnx"))
    assert response.status_code == 410
    assert response.json()["code"] == "version_yanked"
    assert REASON in response.json()["detail"]
    assert newcomer.get(version_url(public_model, "1.0")).status_code == 410
    assert catalog.client("anonymous").get(file_url(public_model, "1.0", "model.onnx")).status_code == 410


def test_someone_who_downloaded_it_before_and_pins_the_label_still_gets_it(catalog, public_model):
    user = UserFactory()
    client = api_client_for(user)
    assert client.get(file_url(public_model, "1.0", "model.onnx")).status_code == 200
    _yank(catalog, public_model)
    response = client.get(file_url(public_model, "1.0", "model.onnx"))
    assert response.status_code == 200
    assert client.get(version_url(public_model, "1.0")).json()["status"] == "yanked"


def test_an_alias_on_a_yanked_version_is_refused_even_to_earlier_users(catalog, public_model):
    user = UserFactory()
    client = api_client_for(user)
    version = public_model.versions.get(label="1.0")
    services.set_alias(model=public_model, actor=catalog.world.user("member"), name="stable", version=version)
    assert client.get(file_url(public_model, "1.0", "model.onnx")).status_code == 200
    _yank(catalog, public_model)
    assert client.get("/api/v1/models/acme/iris/aliases/stable/files/model.onnx").status_code == 410


def test_yanked_versions_are_hidden_from_listings_except_for_members(catalog, public_model):
    _yank(catalog, public_model)
    outsider_labels = [
        v["label"] for v in catalog.client("outsider").get("/api/v1/models/acme/iris/versions/").json()["results"]
    ]
    assert outsider_labels == ["1.1"]
    member_labels = {
        v["label"] for v in catalog.client("member").get("/api/v1/models/acme/iris/versions/").json()["results"]
    }
    assert member_labels == {"1.0", "1.1"}


def test_the_content_address_no_longer_serves_only_a_yanked_version(catalog):
    model = catalog.model("solo", visibility="public")
    catalog.published(model, "1.0", files={"model.onnx": iris_bytes()})
    _yank(catalog, model)
    response = catalog.client("outsider").get(f"/api/v1/blobs/sha256/{sha256_of(iris_bytes())}")
    assert response.status_code == 404


def test_a_signed_link_made_before_the_yank_stops_working_for_a_new_user(catalog, public_model):
    newcomer = api_client_for(UserFactory())
    url = newcomer.get(version_url(public_model, "1.0", "links/model.onnx")).json()["url"]
    _yank(catalog, public_model)
    assert catalog.client("anonymous").get(url).status_code == 410
