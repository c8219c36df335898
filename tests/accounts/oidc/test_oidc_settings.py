"""OIDC_PROVIDERS, GITHUB_* and GITLAB_* become allauth's apps (apps.accounts.oidc.config); mistakes are named."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from apps.accounts.oidc.config import oidc_apps, socialaccount_providers

OKTA = {
    "id": "okta",
    "name": "Okta",
    "preset": "okta",
    "issuer": "https://corp.okta.com/oauth2/default",
    "client_id": "0oa1",
    "client_secret": "s3cret",
}


def test_a_provider_entry_becomes_an_app_with_pkce_its_preset_scopes_and_claims():
    [app] = oidc_apps({"OIDC_PROVIDERS": json.dumps([OKTA])})
    assert (app["provider_id"], app["name"], app["client_id"], app["secret"]) == ("okta", "Okta", "0oa1", "s3cret")
    settings = app["settings"]
    assert settings["server_url"] == settings["issuer"] == "https://corp.okta.com/oauth2/default"
    assert settings["oauth_pkce_enabled"] is True
    assert settings["scope"] == ["openid", "profile", "email", "groups"]
    assert settings["claims"]["groups"] == "groups"


def test_the_entra_id_preset_trusts_addresses_only_of_the_domains_named():
    entry = {
        **OKTA,
        "id": "entra",
        "preset": "entra-id",
        "verified_email_domains": ["Corp.Example"],
        "required_claims": {"tid": "0000-tenant"},
    }
    [app] = oidc_apps({"OIDC_PROVIDERS": json.dumps([entry])})
    assert app["settings"]["claims"]["email_verified"] == ""  # Entra ID sends no such claim
    assert app["settings"]["verified_email"] == ["corp.example"]
    assert app["settings"]["required_claims"] == {"tid": "0000-tenant"}


def test_providers_and_secrets_may_come_from_files(tmp_path):
    secret = tmp_path / "okta-secret"
    secret.write_text("from-a-file\n")
    providers = tmp_path / "oidc.json"
    providers.write_text(json.dumps([{**OKTA, "client_secret": None, "client_secret_file": str(secret)}]))
    [app] = oidc_apps({"OIDC_PROVIDERS_FILE": str(providers)})
    assert app["secret"] == "from-a-file"


def test_github_and_gitlab_are_enabled_by_their_client_variables():
    providers = socialaccount_providers(
        {
            "GITHUB_CLIENT_ID": "gh-id",
            "GITHUB_CLIENT_SECRET": "gh-secret",
            "GITLAB_CLIENT_ID": "gl-id",
            "GITLAB_CLIENT_SECRET": "gl-secret",
            "GITLAB_URL": "https://gitlab.corp.example/",
        }
    )
    assert providers["github"]["APPS"][0]["client_id"] == "gh-id"
    assert "user:email" in providers["github"]["SCOPE"]
    assert providers["gitlab"]["APPS"][0]["settings"]["gitlab_url"] == "https://gitlab.corp.example"
    assert socialaccount_providers({})["github"]["APPS"] == []


@pytest.mark.django_db
def test_configured_github_and_gitlab_show_their_buttons_on_the_sign_in_page(settings):
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers(
        {"GITHUB_CLIENT_ID": "gh", "GITHUB_CLIENT_SECRET": "x", "GITLAB_CLIENT_ID": "gl", "GITLAB_CLIENT_SECRET": "y"}
    )
    page = Client().get("/accounts/login/").content.decode()
    assert "/accounts/github/login/" in page
    assert "/accounts/gitlab/login/" in page


@pytest.mark.django_db
def test_without_providers_the_sign_in_page_has_no_provider_buttons(settings):
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers({})
    page = Client().get("/accounts/login/").content.decode()
    assert "/accounts/oidc/" not in page and "/accounts/github/" not in page


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OIDC_PROVIDERS": "{not json"}, "not valid JSON"),
        ({"OIDC_PROVIDERS": json.dumps(OKTA)}, "JSON list"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "id": "Okta Corp"}])}, "id must be"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "preset": "ping"}])}, "preset must be one of"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "issuer": "corp.okta.com"}])}, "issuer must be"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "client_id": ""}])}, "set client_id"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "client_secret": ""}])}, "set client_secret"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "scope": "openid"}])}, "unknown keys scope"),
        ({"OIDC_PROVIDERS": json.dumps([{**OKTA, "claims": {"role": "roles"}}])}, "claims may map"),
        ({"OIDC_PROVIDERS": json.dumps([OKTA, OKTA])}, "must be unique: okta"),
        ({"OIDC_PROVIDERS_FILE": "/nonexistent/oidc.json"}, "OIDC_PROVIDERS_FILE cannot be read"),
    ],
)
def test_a_bad_provider_configuration_is_refused_naming_what_is_wrong(environ, named):
    with pytest.raises(ImproperlyConfigured) as raised:
        oidc_apps(environ)
    assert named in str(raised.value)


def test_a_github_id_without_a_secret_is_refused():
    with pytest.raises(ImproperlyConfigured, match="GITHUB_CLIENT_SECRET"):
        socialaccount_providers({"GITHUB_CLIENT_ID": "gh"})
