"""Registry credentials are encrypted at rest with a key from the environment, and keys rotate."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from apps.registries.crypto import CredentialsUnreadable, decrypt_credentials
from apps.registries.models import Registry
from apps.registries.services import create_registry
from apps.registries.sync import backend_for

pytestmark = pytest.mark.django_db


def raw_credentials(registry: Registry) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM registries_registry WHERE id = %s", [registry.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def registry(world, settings):
    settings.REGISTRY_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    return create_registry(
        organization=world.org,
        actor=world.user("owner"),
        backend="http-index",
        slug="private-index",
        name="Private index",
        config={"url": "http://127.0.0.1:9/index.jsonl", "token": "tok-very-secret-123"},
    )


def test_the_token_is_stored_encrypted_and_not_in_the_config(registry):
    stored = raw_credentials(registry)
    assert "tok-very-secret-123" not in stored and stored.startswith("gAAAA")
    assert "token" not in registry.config
    assert backend_for(registry).config["token"] == "tok-very-secret-123"


def test_rotation_re_encrypts_with_the_new_key_and_the_old_key_can_then_go(registry, settings):
    old_key = settings.REGISTRY_CREDENTIAL_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.REGISTRY_CREDENTIAL_KEYS = [new_key, old_key]
    before = raw_credentials(registry)
    call_command("rotate_registry_credentials")
    after = raw_credentials(registry)

    assert after != before
    settings.REGISTRY_CREDENTIAL_KEYS = [new_key]
    assert decrypt_credentials(after) == {"token": "tok-very-secret-123"}


def test_credentials_no_key_decrypts_fail_with_a_clear_message(registry, settings):
    settings.REGISTRY_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    registry.refresh_from_db()
    with pytest.raises(CredentialsUnreadable, match="enter the credentials again"):
        decrypt_credentials(registry.credentials)
