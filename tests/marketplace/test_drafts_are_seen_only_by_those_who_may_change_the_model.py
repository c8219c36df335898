"""A draft version is work in progress: those who may change the model see it (its organization's members and up,
and grantees with ``change``), nobody else, wherever versions show: the API's list, detail and file downloads, the
model and version pages, predictions, KServe. Published and deprecated versions follow the model's visibility (here
public: everyone); a yanked version stays visible with its reason (410 naming it, not 404). The registry-index
export lists published and deprecated versions only.

The scene: acme's public model with a published 1.0.0 (the iris classifier), a deprecated 0.9.0, a yanked 0.8.0 and
a draft 2.0.0-dev holding a file.
"""

from __future__ import annotations

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.core.access import Visibility
from apps.marketplace import services
from apps.organizations.models import Organization
from tests.factories import UserFactory
from tests.marketplace.conftest import api_client_for, file_url, iris_bytes, version_url

pytestmark = pytest.mark.django_db

DRAFT, PUBLISHED, DEPRECATED, YANKED = "2.0.0-dev", "1.0.0", "0.9.0", "0.8.0"
CHANGERS = ("owner", "admin", "member")
OTHERS = ("viewer", "outsider", "anonymous")
REASON = "Wrong labels: use 1.0.0."


@pytest.fixture
def model(catalog):
    made = catalog.model("open-iris", visibility=Visibility.PUBLIC)
    catalog.published(made, PUBLISHED)
    deprecated = catalog.published(made, DEPRECATED)
    services.deprecate_version(version=deprecated, actor=catalog.world.user("admin"))
    yanked = catalog.published(made, YANKED)
    services.yank_version(version=yanked, actor=catalog.world.user("admin"), reason=REASON)
    draft = catalog.version(made, DRAFT)
    catalog.add(draft, "model.onnx", iris_bytes())
    return made


def listed(client, model) -> list[str]:
    response = client.get(version_url(model, "").rstrip("/") + "/")
    assert response.status_code == 200, response.content
    return [item["label"] for item in response.json()["results"]]


@pytest.mark.parametrize("persona", CHANGERS)
def test_those_who_may_change_the_model_see_and_fetch_the_draft(catalog, model, persona):
    client = catalog.client(persona)
    assert DRAFT in listed(client, model)
    detail = client.get(version_url(model, DRAFT))
    assert detail.status_code == 200 and detail.json()["status"] == "draft"
    assert client.get(file_url(model, DRAFT, "model.onnx")).status_code == 200


@pytest.mark.parametrize("persona", OTHERS)
def test_everyone_else_gets_404_on_the_draft_and_sees_the_published_and_deprecated(catalog, model, persona):
    client = catalog.client(persona)
    labels = listed(client, model)
    assert DRAFT not in labels
    assert {PUBLISHED, DEPRECATED} <= set(labels)
    assert client.get(version_url(model, DRAFT)).status_code == 404
    assert client.get(file_url(model, DRAFT, "model.onnx")).status_code == 404
    assert client.head(file_url(model, DRAFT, "model.onnx")).status_code == 404
    assert client.get(version_url(model, DRAFT, "files/")).status_code == 404
    assert client.get(version_url(model, PUBLISHED)).status_code == 200
    assert client.get(file_url(model, DEPRECATED, "model.onnx")).status_code == 200


@pytest.mark.parametrize("persona", (*CHANGERS, *OTHERS))
def test_a_yanked_version_stays_visible_with_its_reason(catalog, model, persona):
    response = catalog.client(persona).get(version_url(model, YANKED))
    if persona in CHANGERS:
        assert response.status_code == 200 and response.json()["yank_reason"] == REASON
    else:
        assert response.status_code == 410
        assert REASON in response.json()["detail"]


def test_a_grantee_with_change_sees_the_draft_and_one_with_view_does_not(catalog, model):
    editor, reader = UserFactory(handle="editor"), UserFactory(handle="reader")
    assign_perm("change_model", editor, model)
    assign_perm("view_model", reader, model)
    assert DRAFT in listed(api_client_for(editor), model)
    assert api_client_for(editor).get(version_url(model, DRAFT)).status_code == 200
    assert DRAFT not in listed(api_client_for(reader), model)
    assert api_client_for(reader).get(version_url(model, DRAFT)).status_code == 404


def test_a_members_token_bound_to_another_organization_does_not_see_the_draft(catalog, model):
    member = catalog.world.user("member")
    elsewhere = catalog.client("member", organization=Organization.objects.get(personal_owner=member))
    assert DRAFT not in listed(elsewhere, model)
    assert elsewhere.get(version_url(model, DRAFT)).status_code == 404
    assert DRAFT in listed(catalog.client("member", organization=catalog.world.org), model)


@pytest.mark.parametrize("persona", ("member", "viewer", "outsider", "anonymous"))
def test_the_pages_show_the_draft_to_those_who_may_change_the_model_only(catalog, model, persona):
    client = Client()
    if persona != "anonymous":
        client.force_login(catalog.world.user(persona))
    page = client.get("/models/acme/open-iris/")
    assert page.status_code == 200
    version_page = client.get(f"/models/acme/open-iris/versions/{DRAFT}/")
    if persona == "member":
        assert DRAFT in page.content.decode() and version_page.status_code == 200
    else:
        assert DRAFT not in page.content.decode()
        assert version_page.status_code == 404
        assert PUBLISHED in page.content.decode()


@pytest.mark.parametrize("persona", ("viewer", "outsider"))
def test_a_draft_is_not_run_or_described_through_predict_or_kserve(catalog, model, persona):
    client = catalog.client(persona)
    response = client.post(
        version_url(model, DRAFT, "predict").rstrip("/"), {"inputs": {"float_input": [[1, 2, 3, 4]]}}, format="json"
    )
    assert response.status_code == 404, response.content
    assert client.get(f"/v2/models/acme--open-iris/versions/{DRAFT}").status_code == 404
    assert client.get(f"/v2/models/acme--open-iris/versions/{DRAFT}/ready").status_code == 404
    member = catalog.client("member")
    # The member sees it: not validated yet, so 409 with the reason rather than 404.
    assert member.get(f"/v2/models/acme--open-iris/versions/{DRAFT}").status_code == 409


def test_the_registry_index_export_lists_published_and_deprecated_versions_only(catalog, model):
    response = catalog.client("member").get("/api/v1/orgs/acme/registry-index.jsonl")
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    assert f'"label":"{PUBLISHED}"' in body and f'"label":"{DEPRECATED}"' in body
    assert DRAFT not in body and f'"label":"{YANKED}"' not in body
