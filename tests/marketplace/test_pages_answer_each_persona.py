"""The catalog pages answer each persona as DESIGN.md's role table says (written from the table, not the code):
viewers and up view a private model's pages, members and up create and change, admins yank; an outsider gets
404 on a private model and 403 where a public model may be viewed but not changed; anonymous visitors are sent
to sign in, except to read a public model.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility
from apps.marketplace.models import ModelVersion, ValidationStatus, VersionStatus

PERSONAS = ("owner", "admin", "member", "viewer", "outsider", "anonymous")
OK, FORBIDDEN, NOT_FOUND, LOGIN, DONE = 200, 403, 404, "login", "done"

# private model of acme                                  owner admin member viewer outsider anonymous
PRIVATE_READ = (OK, OK, OK, OK, NOT_FOUND, LOGIN)
PRIVATE_MEMBER = (OK, OK, OK, FORBIDDEN, NOT_FOUND, LOGIN)
# public model of acme
PUBLIC_READ = (OK, OK, OK, OK, OK, OK)
PUBLIC_MEMBER = (OK, OK, OK, FORBIDDEN, FORBIDDEN, LOGIN)
# a draft version: those who may change the model only, whatever the model's visibility
PRIVATE_DRAFT_READ = (OK, OK, OK, NOT_FOUND, NOT_FOUND, LOGIN)
PUBLIC_DRAFT_READ = (OK, OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND)

READ_PAGES = ("catalog-model", "catalog-version", "catalog-version-status")
MEMBER_PAGES = ("catalog-model-edit", "catalog-version-create", "catalog-version-upload")


@pytest.fixture
def page_client(world):
    """``page_client("admin")``: a browser-like client signed in as that persona; "anonymous": signed out."""

    def make(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.user(persona))
        return client

    return make


def expect(response, expected) -> None:
    if expected == LOGIN:
        assert response.status_code == 302, response.content[:300]
        assert response["Location"].startswith(reverse(settings.LOGIN_URL))
    elif expected == DONE:
        assert response.status_code == 302, response.content[:300]
        assert not response["Location"].startswith(reverse(settings.LOGIN_URL))
    else:
        assert response.status_code == expected, response.content[:500]


def url_of(page: str, model, label: str = "1.0.0") -> str:
    args = [model.organization.slug, model.name]
    if page.startswith("catalog-version") and page != "catalog-version-create":
        args.append(label)
    return reverse(page, args=args)


@pytest.fixture
def scene(catalog):
    """A private and a public model of acme, each with a draft 1.0.0 holding the iris model."""

    def make(visibility: str):
        model = catalog.model(f"iris-{visibility}", visibility=visibility, card="# Iris")
        version = catalog.version(model, "1.0.0")
        from tests.marketplace.conftest import iris_bytes

        catalog.add(version, "model.onnx", iris_bytes())
        return model

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("page", READ_PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_private_model_pages_are_for_the_organization_only(scene, page_client, catalog, page, persona):
    model = scene(Visibility.PRIVATE)
    published(catalog, model)
    expect(page_client(persona).get(url_of(page, model, "0.9.0")), PRIVATE_READ[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("page", READ_PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_public_model_pages_are_for_everyone(scene, page_client, catalog, page, persona):
    model = scene(Visibility.PUBLIC)
    published(catalog, model)
    expect(page_client(persona).get(url_of(page, model, "0.9.0")), PUBLIC_READ[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("page", ("catalog-version", "catalog-version-status"))
@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.PUBLIC])
@pytest.mark.parametrize("persona", PERSONAS)
def test_a_drafts_pages_are_for_those_who_may_change_the_model(scene, page_client, page, visibility, persona):
    model = scene(visibility)
    table = PRIVATE_DRAFT_READ if visibility == Visibility.PRIVATE else PUBLIC_DRAFT_READ
    expect(page_client(persona).get(url_of(page, model)), table[PERSONAS.index(persona)])


def published(catalog, model) -> ModelVersion:
    """A published 0.9.0 beside the scene's draft 1.0.0."""
    return catalog.published(model, "0.9.0")


@pytest.mark.django_db
@pytest.mark.parametrize("page", MEMBER_PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_changing_a_private_model_is_for_members_and_up(scene, page_client, page, persona):
    model = scene(Visibility.PRIVATE)
    expect(page_client(persona).get(url_of(page, model)), PRIVATE_MEMBER[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("page", MEMBER_PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_changing_a_public_model_is_for_its_members_and_up(scene, page_client, page, persona):
    model = scene(Visibility.PUBLIC)
    expect(page_client(persona).get(url_of(page, model)), PUBLIC_MEMBER[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_new_model_page_is_for_members_of_the_organization(world, page_client, persona):
    response = page_client(persona).get(reverse("catalog-model-create", args=[world.org.slug]))
    expect(response, PRIVATE_MEMBER[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_catalog_answers_everyone_and_lists_a_private_model_to_its_organization_only(scene, page_client, persona):
    private, public = scene(Visibility.PRIVATE), scene(Visibility.PUBLIC)
    response = page_client(persona).get(reverse("catalog-models"))
    assert response.status_code == 200
    listed = {model.name for model in response.context["page_obj"]}
    assert public.name in listed
    assert (private.name in listed) == (persona in ("owner", "admin", "member", "viewer"))


def publishable(model) -> ModelVersion:
    version = ModelVersion.objects.get(model=model, label="1.0.0")
    ModelVersion.objects.filter(pk=version.pk).update(validation_status=ValidationStatus.PASSED)
    return version


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.PUBLIC])
@pytest.mark.parametrize("persona", PERSONAS)
def test_publishing_is_for_members_and_up(scene, page_client, persona, visibility):
    model = scene(visibility)
    version = publishable(model)
    table = PRIVATE_MEMBER if visibility == Visibility.PRIVATE else PUBLIC_MEMBER
    expected = table[PERSONAS.index(persona)]
    response = page_client(persona).post(url_of("catalog-version-publish", model))
    expect(response, DONE if expected == OK else expected)
    version.refresh_from_db()
    assert (version.status == VersionStatus.PUBLISHED) == (expected == OK)


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.PUBLIC])
@pytest.mark.parametrize("persona", PERSONAS)
def test_yanking_is_for_admins_and_up(scene, page_client, catalog, persona, visibility):
    from apps.marketplace import services

    model = scene(visibility)
    version = services.publish_version(version=publishable(model), actor=catalog.world.user("member"))
    private = visibility == Visibility.PRIVATE
    expected = {
        "owner": DONE,
        "admin": DONE,
        "member": FORBIDDEN,
        "viewer": FORBIDDEN,
        "outsider": NOT_FOUND if private else FORBIDDEN,
        "anonymous": LOGIN,
    }[persona]
    response = page_client(persona).post(url_of("catalog-version-yank", model), {"reason": "Wrong weights"})
    expect(response, expected)
    version.refresh_from_db()
    assert (version.status == VersionStatus.YANKED) == (expected == DONE)
