"""Helpers for the MFA tests: RFC 6238 TOTP computed here (independently of allauth), and the real flows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

PERIOD, DIGITS = 30, 6


def totp(secret: str, *, at: float | None = None) -> str:
    """The RFC 6238 code (HMAC-SHA1, 30 s, 6 digits) of a base32 secret."""
    counter = int((time.time() if at is None else at) // PERIOD)
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**DIGITS:0{DIGITS}d}"


def fresh_totp(secret: str) -> str:
    """A code with a few seconds of its 30-s window left (waits for the next window when too close to the end)."""
    if time.time() % PERIOD > PERIOD - 4:
        time.sleep(PERIOD - time.time() % PERIOD + 0.1)
    return totp(secret)


def wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 5) % 10)


def sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def sign_in_and_confirm(client: Client, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, then confirm the password again, as allauth asks before changing MFA."""
    assert sign_in(client, email, password).status_code == 302
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content[:1000]


def enrol_totp(client: Client, email: str) -> tuple[str, list[str]]:
    """Sign in through the form, activate TOTP with a computed code; return the secret and the recovery codes."""
    sign_in_and_confirm(client, email)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200, page.status_code
    secret = page.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": fresh_totp(secret)})
    assert response.status_code == 302, response.content[:1000]
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    codes = client.get(reverse("mfa_view_recovery_codes")).context["unused_codes"]
    return secret, list(codes)
