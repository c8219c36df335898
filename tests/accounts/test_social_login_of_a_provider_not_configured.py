"""The GitHub and GitLab sign-in URLs exist whether or not the operator configured those providers; on a portal
without them, they answer 404 (any method), not a 500 from allauth's missing SocialApp."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/accounts/github/login/", "/accounts/gitlab/login/callback/"])
@pytest.mark.parametrize("method", ["get", "post", "options"])
def test_the_sign_in_url_of_a_provider_nobody_configured_answers_404(url, method):
    response = getattr(Client(raise_request_exception=False), method)(url)
    assert response.status_code == 404, (response.status_code, response.content[:200])
