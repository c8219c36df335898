"""Creating, reading, changing and (soft) deleting models through the API, per persona."""

from __future__ import annotations

import pytest

from apps.accounts.models import TokenScope
from apps.core.access import Visibility
from apps.marketplace.models import Model

pytestmark = pytest.mark.django_db


def test_member_creates_a_model_in_their_organization(catalog):
    response = catalog.client("member").post(
        "/api/v1/orgs/acme/models/",
        {"name": "iris-classifier", "summary": "Iris", "task": "tabular-classification", "tags": ["Iris", "sklearn"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["full_name"] == "acme/iris-classifier"
    assert response.json()["tags"] == ["iris", "sklearn"]
    assert response.json()["visibility"] == "private"
    assert Model.objects.get(name="iris-classifier").created_by == catalog.world.user("member")


def test_viewer_may_not_create_a_model(catalog):
    response = catalog.client("viewer").post("/api/v1/orgs/acme/models/", {"name": "nope"}, format="json")
    assert response.status_code == 403
    assert not Model.objects.filter(name="nope").exists()


def test_outsider_gets_404_creating_in_a_private_organization(catalog):
    response = catalog.client("outsider").post("/api/v1/orgs/acme/models/", {"name": "nope"}, format="json")
    assert response.status_code == 404


def test_read_scope_token_may_not_create(catalog):
    response = catalog.client("member", scope=TokenScope.READ).post(
        "/api/v1/orgs/acme/models/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize("name", ["Iris", "-iris", "iris-", "a..b", "a b", "x" * 97, "iris/1", ""])
def test_malformed_model_names_are_refused_naming_the_field(catalog, name):
    response = catalog.client("member").post("/api/v1/orgs/acme/models/", {"name": name}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_a_second_model_with_the_same_name_is_refused(catalog):
    catalog.model("iris")
    response = catalog.client("member").post("/api/v1/orgs/acme/models/", {"name": "iris"}, format="json")
    assert response.status_code == 400
    assert response.json()["codes"]["name"] == ["name_taken"]


def test_names_with_dots_and_underscores_are_accepted(catalog):
    response = catalog.client("member").post("/api/v1/orgs/acme/models/", {"name": "bert_base.v2"}, format="json")
    assert response.status_code == 201


def test_viewer_reads_a_private_model_and_outsider_gets_404(catalog):
    catalog.model("iris")
    assert catalog.client("viewer").get("/api/v1/models/acme/iris/").status_code == 200
    assert catalog.client("outsider").get("/api/v1/models/acme/iris/").status_code == 404
    assert catalog.client("anonymous").get("/api/v1/models/acme/iris/").status_code == 404


def test_anyone_reads_a_public_model(catalog):
    catalog.model("iris", visibility="public")
    assert catalog.client("anonymous").get("/api/v1/models/acme/iris/").status_code == 200
    assert catalog.client("outsider").get("/api/v1/models/acme/iris/").status_code == 200


def test_list_shows_only_what_the_caller_may_view(catalog):
    catalog.model("secret")
    catalog.model("open", visibility="public")
    names = {m["name"] for m in catalog.client("outsider").get("/api/v1/models/").json()["results"]}
    assert names == {"open"}
    names = {m["name"] for m in catalog.client("viewer").get("/api/v1/models/").json()["results"]}
    assert names == {"secret", "open"}


def test_list_filters_by_owner_task_tags_license_visibility_and_words(catalog):
    catalog.model("iris", task="tabular-classification", tags=["iris", "sklearn"], license="mit", summary="flowers")
    catalog.model("minilm", task="feature-extraction", tags=["text", "sentence"], license="apache-2.0")
    client = catalog.client("viewer")

    def names(query: str) -> set[str]:
        response = client.get(f"/api/v1/models/?{query}")
        assert response.status_code == 200, response.content
        return {m["name"] for m in response.json()["results"]}

    assert names("owner=acme") == {"iris", "minilm"}
    assert names("task=feature-extraction") == {"minilm"}
    assert names("tags=iris,sklearn") == {"iris"}
    assert names("tags=iris,text") == set()
    assert names("license=MIT") == {"iris"}
    assert names("visibility=private") == {"iris", "minilm"}
    assert names("q=flowers") == {"iris"}
    assert names("search=mini") == {"minilm"}


def test_member_changes_a_model_and_viewer_gets_403(catalog):
    catalog.model("iris")
    response = catalog.client("member").patch(
        "/api/v1/models/acme/iris/", {"summary": "Better", "visibility": "internal"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["summary"] == "Better"
    assert response.json()["visibility"] == "internal"
    assert (
        catalog.client("viewer").patch("/api/v1/models/acme/iris/", {"summary": "x"}, format="json").status_code == 403
    )


def test_an_unknown_visibility_is_refused(catalog):
    catalog.model("iris")
    response = catalog.client("member").patch("/api/v1/models/acme/iris/", {"visibility": "secret"}, format="json")
    assert response.status_code == 400
    assert "visibility" in response.json()


def test_deleting_is_soft_admin_only_and_restorable(catalog):
    model = catalog.model("iris")
    assert catalog.client("member").delete("/api/v1/models/acme/iris/").status_code == 403
    assert catalog.client("admin").delete("/api/v1/models/acme/iris/").status_code == 204
    assert catalog.client("admin").get("/api/v1/models/acme/iris/").status_code == 404
    model = Model.with_deleted.get(pk=model.pk)
    assert model.deleted_at is not None and model.purge_after > model.deleted_at
    # Deleted, the model is gone for those who may not restore it (admins get 404 on GET too, but may restore).
    assert catalog.client("member").post("/api/v1/models/acme/iris/restore/").status_code == 404
    response = catalog.client("admin").post("/api/v1/models/acme/iris/restore/")
    assert response.status_code == 200, response.content
    assert catalog.client("viewer").get("/api/v1/models/acme/iris/").status_code == 200


def test_a_deleted_model_keeps_its_name_until_purged(catalog):
    catalog.model("iris")
    catalog.client("admin").delete("/api/v1/models/acme/iris/")
    response = catalog.client("member").post("/api/v1/orgs/acme/models/", {"name": "iris"}, format="json")
    assert response.status_code == 400
    assert response.json()["codes"]["name"] == ["name_taken"]


def test_admins_list_deleted_models_to_restore_them(catalog):
    catalog.model("kept")
    catalog.model("gone")
    catalog.client("admin").delete("/api/v1/models/acme/gone/")
    listed = catalog.client("admin").get("/api/v1/orgs/acme/models/?deleted=true").json()["results"]
    assert [(m["name"], bool(m["deleted_at"]), bool(m["purge_after"])) for m in listed] == [("gone", True, True)]
    assert catalog.client("member").get("/api/v1/orgs/acme/models/?deleted=true").json()["results"] == []
    names = [m["name"] for m in catalog.client("admin").get("/api/v1/orgs/acme/models/").json()["results"]]
    assert names == ["kept"]


def test_restoring_a_deleted_public_model_answers_404_to_those_who_may_not_restore_it(catalog):
    """A deleted model disappears everywhere for everyone who cannot bring it back: a 403 would reveal it."""
    model = catalog.model("gone", visibility=Visibility.PUBLIC)
    assert catalog.client("admin").delete(f"/api/v1/models/acme/{model.name}/").status_code == 204

    for persona in ("outsider", "viewer", "member"):
        response = catalog.client(persona).post(f"/api/v1/models/acme/{model.name}/restore/")
        assert response.status_code == 404, persona
    assert catalog.client("admin").post(f"/api/v1/models/acme/{model.name}/restore/").status_code == 200
