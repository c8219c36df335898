"""Account pages: profile and API tokens. E-mail, password and MFA pages come from allauth (/accounts/)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.forms import ProfileForm, TokenForm
from apps.accounts.models import ApiToken
from apps.core.forms import add_service_errors
from apps.core.mixins import paginate


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Name and handle (renaming the handle renames the personal organization)."""
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                services.update_profile(user=user, name=form.cleaned_data["name"], handle=form.cleaned_data["handle"])
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Your profile was saved.")
                return redirect("account-profile")
    else:
        form = ProfileForm(initial={"name": user.name, "handle": user.handle})
    return render(request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens; creating one shows its secret on this one answer only."""
    user = request.user
    created = secret = None
    if request.method == "POST":
        form = TokenForm(request.POST, user=user)
        if form.is_valid():
            try:
                created, secret = services.create_api_token(
                    user=user,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    organization=form.cleaned_data["organization"],
                    expires_at=form.expires_at(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc, aliases={"expires_at": "expires_on"})
            else:
                form = TokenForm(user=user)
    else:
        form = TokenForm(user=user, organization=None)
    page = paginate(request, ApiToken.objects.filter(user=user).select_related("organization"))
    context = {"form": form, "page_obj": page, "created": created, "secret": secret}
    response = render(request, "accounts/tokens.html", context, status=400 if form.errors else 200)
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke_token(request: HttpRequest, uuid: str) -> HttpResponse:
    """Revoke one of the user's own tokens."""
    token = get_object_or_404(ApiToken.objects.filter(user=request.user), uuid=uuid)
    services.revoke_api_token(token=token, by=request.user)
    messages.success(request, f"The token “{token.name}” was revoked; it no longer works.")
    return redirect("account-tokens")
