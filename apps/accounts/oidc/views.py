"""Start and finish an OpenID Connect sign-in with the portal's adapter (provider.py); as allauth's own views."""

from __future__ import annotations

from typing import Any

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.http import Http404, HttpRequest, HttpResponse

from apps.accounts.oidc.provider import PortalOpenIDConnectAdapter


def _run(view_class: Any, request: HttpRequest, provider_id: str) -> HttpResponse:
    adapter = PortalOpenIDConnectAdapter(request, provider_id)
    try:
        return view_class.adapter_view(adapter)(request)
    except SocialApp.DoesNotExist:
        raise Http404(f"No sign-in provider “{provider_id}”.") from None
    except OAuth2Error as exc:
        # Raised before allauth's own handling (reading the discovery document to build the client).
        return render_authentication_error(request, adapter.get_provider(), exception=exc)


@login_not_required
def login(request: HttpRequest, provider_id: str) -> HttpResponse:
    return _run(OAuth2LoginView, request, provider_id)


@login_not_required
def callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    return _run(OAuth2CallbackView, request, provider_id)
