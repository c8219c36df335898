"""Operators' admin for users (e-mail login, handle) and API tokens (never their secret; revocation only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.models import ApiToken, ExternalIdentity, User
from apps.accounts.services import personal_organization_of, replace_email_address, revoke_api_token, update_profile
from apps.audit.services import record_event
from apps.organizations.services import check_slug_available


def _clean_handle(form: forms.ModelForm, exclude_organization_id: int | None) -> str:
    handle = (form.cleaned_data.get("handle") or "").strip().lower()
    try:
        check_slug_available(handle, field="handle", exclude_organization_id=exclude_organization_id)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict["handle"]) from None
    return handle


def _clean_email(form: forms.ModelForm) -> str:
    email = (form.cleaned_data.get("email") or "").strip().lower()
    taken = User.objects.filter(email__iexact=email)
    if form.instance.pk:
        taken = taken.exclude(pk=form.instance.pk)
    if taken.exists():
        raise ValidationError("Another user already has this e-mail address.", code="taken")
    return email


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "handle")

    def clean_handle(self) -> str:
        return _clean_handle(self, None)

    def clean_email(self) -> str:
        return _clean_email(self)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_handle(self) -> str:
        if "handle" not in self.changed_data:
            return self.instance.handle
        personal = personal_organization_of(self.instance)
        return _clean_handle(self, personal.pk if personal else None)

    def clean_email(self) -> str:
        return _clean_email(self)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    fieldsets = (
        (None, {"fields": ("email", "handle", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "handle", "usable_password", "password1", "password2")}),
    )
    list_display = ("handle", "email", "name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("handle", "email", "name")
    ordering = ("handle",)
    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        profile_fields = {"handle", "name"} & set(form.changed_data)
        if change and profile_fields:
            # A handle rename must rename the personal organization too, and be audited: the service does both.
            update_profile(user=obj, by=request.user, **{field: getattr(obj, field) for field in profile_fields})
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change and "email" in form.changed_data:
                replace_email_address(user=obj, old_email=form.initial.get("email") or "", by=request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their owners (the secret is shown to them once); operators may only look and revoke."""

    list_display = (
        "name",
        "prefix",
        "user",
        "organization",
        "scope",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter), "created_at", "expires_at")
    search_fields = ("name", "prefix", "user__handle", "user__email", "organization__slug")
    list_select_related = ("user", "organization")
    ordering = ("-created_at",)
    exclude = ("secret_hash",)
    readonly_fields = (
        "uuid",
        "user",
        "organization",
        "name",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
    )
    actions = ["revoke_tokens"]

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        return token.status

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user", "organization"):
            revoke_api_token(token=token, by=request.user, as_operator=True)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Who an identity provider says a user is (made at sign-in). Operators may look, and unlink (delete)."""

    list_display = ("user", "source", "subject", "email", "last_seen_at", "deactivated_at")
    list_filter = ("source", ("deactivated_at", admin.EmptyFieldListFilter), "last_seen_at")
    search_fields = ("subject", "email", "user__handle", "user__email")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "source",
        "subject",
        "email",
        "groups",
        "attributes",
        "created_at",
        "last_seen_at",
        "deactivated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made at sign-in

    def delete_model(self, request: HttpRequest, obj: ExternalIdentity) -> None:
        with transaction.atomic():
            _record_unlink(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExternalIdentity]) -> None:
        with transaction.atomic():
            for identity in queryset.select_related("user"):
                _record_unlink(request, identity)
            super().delete_queryset(request, queryset)


def _record_unlink(request: HttpRequest, identity: ExternalIdentity) -> None:
    """Unlinking is an operator action on the platform chain: the next sign-in links or creates anew."""
    record_event(
        action="admin.externalidentity.deleted",
        actor=request.user,
        target=identity.user,
        metadata={"via": "django-admin", "source": identity.source, "subject": identity.subject},
    )
