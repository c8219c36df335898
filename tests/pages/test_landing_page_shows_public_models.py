"""The landing page a visitor who is not signed in gets: what the portal is, the catalog's search box, the public
models they may try (a published version that passed validation) and the other public ones, never an internal or
private model; single sign-on is named only where the sign-in page offers it (a provider button, or an
organization's SAML behind "Sign in with your organization's SSO")."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.core.access import Visibility
from apps.marketplace import services as catalog
from apps.marketplace.models import ModelVersion, ValidationStatus
from apps.organizations.models import SamlSettings, VerifiedDomain
from gpux_portal import demo

pytestmark = pytest.mark.django_db


def make_model(world, name: str, visibility: str, *, published: bool = False):
    member = world.user("member")
    model = catalog.create_model(
        organization=world.org, actor=member, name=name, visibility=visibility, summary=f"The {name} model."
    )
    if published:
        version = catalog.create_version(model=model, actor=member, label="1.0.0")
        upload = SimpleUploadedFile("model.onnx", demo.iris_model_bytes())
        catalog.add_file(version=version, actor=member, path="model.onnx", uploaded=upload)
        ModelVersion.objects.filter(pk=version.pk).update(validation_status=ValidationStatus.PASSED)
        version.refresh_from_db()
        catalog.publish_version(version=version, actor=member)
    return model


def landing() -> str:
    response = Client().get("/")
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</section>", start)]


def test_a_visitor_finds_featured_and_recent_public_models_and_the_search_box(world):
    make_model(world, "runnable-public", Visibility.PUBLIC, published=True)
    make_model(world, "listed-public", Visibility.PUBLIC)
    make_model(world, "internal-one", Visibility.INTERNAL, published=True)
    make_model(world, "private-one", Visibility.PRIVATE, published=True)

    page = landing()

    featured = section(page, "featured-models")
    assert 'href="/models/acme/runnable-public/#try-it"' in featured
    assert "The runnable-public model." in featured
    recent = section(page, "recent-models")
    assert 'href="/models/acme/listed-public/"' in recent and "runnable-public" not in recent
    assert "internal-one" not in page and "private-one" not in page
    assert "All 2 public models" in page
    search = re.search(r'<form method="get" action="/models/" role="search"[^>]*>.*?</form>', page, re.S).group(0)
    assert 'name="q"' in search


def test_with_no_public_model_the_landing_page_says_so(world):
    make_model(world, "private-one", Visibility.PRIVATE, published=True)
    page = landing()
    assert "No public models yet" in page and "private-one" not in page


def test_single_sign_on_is_not_advertised_when_the_sign_in_page_offers_none(world, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}), "APPS": []},
    }
    sign_in = Client().get("/accounts/login/").content.decode()
    assert "Continue with" not in sign_in
    assert "single sign-on" not in landing().lower()


def test_single_sign_on_is_advertised_once_the_sign_in_page_has_a_provider_button(world, settings):
    from apps.accounts.oidc.config import oidc_app

    app = oidc_app(
        {"id": "corp", "name": "Corp SSO", "issuer": "https://idp.example", "client_id": "c", "client_secret": "s"}
    )
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}), "APPS": [app]},
    }
    sign_in = Client().get("/accounts/login/").content.decode()
    assert "Corp SSO" in sign_in
    assert "single sign-on" in landing()


def test_single_sign_on_is_advertised_when_an_organization_signs_its_domain_in_through_saml(world):
    SamlSettings.objects.create(organization=world.org, enabled=True)
    VerifiedDomain.objects.create(organization=world.org, domain="acme.example", token="t", verified_at=timezone.now())
    assert "single sign-on" in landing()
