"""Aliases (production, staging) point at published versions and move; every move is kept."""

from __future__ import annotations

import pytest

from apps.marketplace.models import AliasChange
from tests.marketplace.conftest import body_of, iris_bytes

pytestmark = pytest.mark.django_db

ALIASES = "/api/v1/models/acme/iris/aliases/"


def test_member_points_an_alias_and_moves_it_with_history(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    catalog.published(model, "1.1", files={"model.onnx": iris_bytes(), "labels.txt": b"a\nb\nc\n"})
    client = catalog.client("member")
    response = client.put(ALIASES, {"name": "production", "version": "1.0"}, format="json")
    assert response.status_code == 200, response.content
    response = client.put(ALIASES, {"name": "production", "version": "1.1"}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert data["version"] == "1.1"
    assert [(h["from_label"], h["to_label"]) for h in data["history"]] == [("1.0", "1.1"), ("", "1.0")]
    assert all(h["actor"] == "member-user" for h in data["history"])
    assert catalog.client("viewer").get(f"{ALIASES}production/").json()["version"] == "1.1"
    assert catalog.client("viewer").get("/api/v1/models/acme/iris/").json()["aliases"] == {"production": "1.1"}
    assert AliasChange.objects.count() == 2


def test_an_alias_downloads_its_versions_file_and_asks_to_revalidate(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    catalog.client("member").put(ALIASES, {"name": "production", "version": "1.0"}, format="json")
    response = catalog.client("viewer").get(f"{ALIASES}production/files/model.onnx")
    assert response.status_code == 200
    assert body_of(response) == iris_bytes()
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_an_alias_cannot_point_at_a_draft_or_an_unknown_version(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    client = catalog.client("member")
    response = client.put(ALIASES, {"name": "staging", "version": "0.1"}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()
    response = client.put(ALIASES, {"name": "staging", "version": "9.9"}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()


def test_a_malformed_alias_name_is_refused(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    response = catalog.client("member").put(ALIASES, {"name": "Prod Uction", "version": "1.0"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_viewer_may_not_move_an_alias_and_outsider_gets_404(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    assert (
        catalog.client("viewer").put(ALIASES, {"name": "production", "version": "1.0"}, format="json").status_code
        == 403
    )
    assert catalog.client("outsider").get(ALIASES).status_code == 404
