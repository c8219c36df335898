"""Registry credentials, encrypted at rest with Fernet; keys from the environment, with rotation.

``REGISTRY_CREDENTIAL_KEYS`` lists Fernet keys, newest first: the first encrypts, every one decrypts
(``MultiFernet``). To rotate: put a new key first, run ``manage.py rotate_registry_credentials`` (it
re-encrypts every registry's credentials with the new key), then drop the old key.
With no keys set, a key derived from ``SECRET_KEY`` is used (then rotating
``SECRET_KEY`` needs the same care: set the old derived key in ``REGISTRY_CREDENTIAL_KEYS`` first; see
docs/admin/registries.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialsUnreadable(Exception):
    """No configured key decrypts the stored credentials (a key was dropped before rotation)."""


def _keys() -> list[bytes]:
    configured = [key.strip().encode() for key in settings.REGISTRY_CREDENTIAL_KEYS if key.strip()]
    if configured:
        return configured
    digest = hashlib.sha256(b"gpux-registry-credentials:" + settings.SECRET_KEY.encode()).digest()
    return [base64.urlsafe_b64encode(digest)]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt_credentials(values: dict[str, Any]) -> str:
    """The sensitive parameters as a Fernet token ("" when there are none)."""
    values = {name: value for name, value in values.items() if value not in (None, "")}
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_credentials(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            "The registry's credentials cannot be decrypted with the configured keys (REGISTRY_CREDENTIAL_KEYS); "
            "restore the old key or enter the credentials again."
        ) from None


def rotate_credentials(token: str) -> str:
    """The same credentials, encrypted with the newest key."""
    return _fernet().rotate(token.encode()).decode() if token else token
