"""Account pages: profile and API tokens, and allauth's sign-up page made safe against a race for the handle.
E-mail, password and MFA pages come from allauth (/accounts/)."""

from __future__ import annotations

from allauth.account import views as allauth_views
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.forms import ProfileForm, TokenForm
from apps.accounts.models import ApiToken, User
from apps.core.forms import add_service_errors
from apps.core.mixins import paginate
from apps.organizations.validators import namespace_is_taken


class SignupView(allauth_views.SignupView):
    """allauth's sign-up, where the database decides a race: two sign-ups for one handle (or a sign-up and a new
    organization for one name) may both pass the form's "is it free?" check before either writes. The user and
    their personal organization are written in one transaction; the one that loses on a unique constraint gets
    the form back with the error on the field (the handle, or the e-mail address), and nothing is written."""

    def form_valid(self, form):
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except IntegrityError:
            # The winner has committed (the insert waited for it): what it took is now visible.
            handle = form.cleaned_data.get("username") or ""
            email = form.cleaned_data.get("email") or ""
            if namespace_is_taken(handle):
                form.add_error("username", "This handle is already taken by a user or an organization.")
            elif User.objects.filter(email__iexact=email).exists():
                form.add_error("email", "A user is already registered with this e-mail address.")
            else:
                raise
            return self.form_invalid(form)


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
                    kind=form.cleaned_data.get("kind") or "personal",
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


def resend_verification(request: HttpRequest) -> HttpResponse:
    """POST /accounts/verification/resend/ {email}: send the verification link again to an address that waits for
    it (allauth's own sending, with its rate limit: one mail every few minutes per address). The answer is the same
    whether or not such an address exists, so that it tells nobody who has an account; a malformed address answers
    400 naming ``email``."""
    from allauth.account.internal.flows.email_verification import consume_email_verification_rate_limit
    from allauth.account.models import EmailAddress
    from django.core.validators import validate_email

    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    email = str(request.POST.get("email") or "").strip()
    try:
        if not email:
            raise ValidationError("Required: the e-mail address you signed up with.")
        validate_email(email)
    except ValidationError as exc:
        context = {"resend_error": exc.messages[0], "resend_email": email[:254]}
        return render(request, "account/verification_sent.html", context, status=400)
    address = EmailAddress.objects.filter(email__iexact=email, verified=False).select_related("user").first()
    # allauth's rate limit, consumed whether or not the address exists (the answer must not tell them apart).
    allowed = consume_email_verification_rate_limit(request, email)
    if allowed and address is not None and address.user.is_active:
        address.send_confirmation(request, signup=False)
    messages.info(
        request,
        f"If {email} waits for verification, a new link is on its way (at most one every few minutes).",
    )
    return redirect("account_email_verification_sent")
