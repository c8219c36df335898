"""A recovery code signs in instead of the app's code, once: the second time it is refused."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from tests.pages.mfa import enrol_totp, sign_in

pytestmark = pytest.mark.django_db


def test_a_recovery_code_works_once_and_is_refused_the_second_time(world):
    user = world.user("member")
    _, codes = enrol_totp(Client(), user.email)
    code = codes[0]

    first = Client()
    sign_in(first, user.email)
    response = first.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert "_auth_user_id" in first.session
    stored = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    remaining = stored.wrap().get_unused_codes()
    assert code not in remaining and len(remaining) == len(codes) - 1

    second = Client()
    sign_in(second, user.email)
    response = second.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert "_auth_user_id" not in second.session

    third = Client()
    sign_in(third, user.email)
    assert third.post(reverse("mfa_authenticate"), {"code": codes[1]}).status_code == 302
