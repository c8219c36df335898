"""Admins delete a model from its edit page after typing its name: the model is soft-deleted (gone from the
catalog and its pages, restorable), and a wrong name deletes nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.marketplace.models import Model


def client_of(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.user(persona))
    return client


@pytest.mark.django_db
def test_an_admin_deletes_a_model_after_typing_its_name(world, catalog):
    catalog.model("iris")
    admin = client_of(world, "admin")
    assert "Delete this model" in admin.get(reverse("catalog-model-edit", args=["acme", "iris"])).content.decode()
    response = admin.post(reverse("catalog-model-delete", args=["acme", "iris"]), {"confirm_name": "iris"}, follow=True)
    assert "Model acme/iris deleted." in response.content.decode()
    model = Model.with_deleted.get(name="iris")
    assert model.deleted_at is not None and model.purge_after is not None
    assert admin.get(reverse("catalog-model", args=["acme", "iris"])).status_code == 404
    assert "iris" not in {m.name for m in admin.get(reverse("catalog-models")).context["page_obj"]}


@pytest.mark.django_db
def test_a_wrong_name_deletes_nothing(world, catalog):
    catalog.model("iris")
    response = client_of(world, "admin").post(
        reverse("catalog-model-delete", args=["acme", "iris"]), {"confirm_name": "iri"}, follow=True
    )
    assert "Type “iris” to confirm the deletion." in response.content.decode()
    assert Model.objects.filter(name="iris").exists()


@pytest.mark.django_db
def test_members_do_not_see_the_delete_form(world, catalog):
    catalog.model("iris")
    page = client_of(world, "member").get(reverse("catalog-model-edit", args=["acme", "iris"])).content.decode()
    assert "Delete this model" not in page
