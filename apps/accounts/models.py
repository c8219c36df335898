"""Users (e-mail login, a unique handle) and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core.access import AccessPolicy, Role, ScopedToken, TokenScope
from apps.core.querysets import RestrictedQuerySet
from apps.organizations.validators import validate_namespace_slug


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, handle: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("email is required")
        if not handle:
            raise ValueError("handle is required")
        user = self.model(email=self.normalize_email(email).lower(), handle=handle.lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, handle: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, handle, password, **extra)

    def create_superuser(self, email: str, handle: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, handle, password, **extra)

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with e-mail; the handle names their personal organization (``{handle}/{model}``)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField("e-mail address", max_length=254)
    handle = models.CharField(
        max_length=39,
        unique=True,
        validators=[validate_namespace_slug],
        help_text="Your public name: lowercase letters, digits and hyphens. Your models live under it.",
    )
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the operators' admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["handle"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]
        ordering = ["handle"]

    def __str__(self) -> str:
        return self.handle

    def get_full_name(self) -> str:
        return self.name or self.handle

    def get_short_name(self) -> str:
        return self.handle

    def save(self, *args, **kwargs) -> None:
        self.email = (self.email or "").strip().lower()
        self.handle = (self.handle or "").strip().lower()
        super().save(*args, **kwargs)


def hash_token_secret(secret: str) -> str:
    """HMAC-SHA-256 of a token secret, keyed by SECRET_KEY: fast to check, useless if the table leaks."""
    return hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


class TokenKind(models.TextChoices):
    """Who holds a token, so that usage analytics can tell CI and service traffic from people's."""

    PERSONAL = "personal", "personal"
    CI = "ci", "CI"
    SERVICE = "service", "service"


class ApiTokenQuerySet(RestrictedQuerySet):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(ScopedToken, models.Model):
    """A personal API token. The secret is shown once; only its HMAC and a visible prefix are kept.

    ``TokenScope`` (core's, re-exported here) names its scope; core's API reads it as a ``ScopedToken``."""

    PREFIX_LENGTH = 8
    NAME_MAX_LENGTH = 100

    # Tokens are not owned objects, but the admins of the organization a token is bound to may list and
    # revoke it: restrict() answers that (roles only, never visible by visibility, no per-object grants).
    # A user's own tokens are listed by ``user=request.user``, not through restrict().
    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field="organization",
        visibility_field=None,
        roles={"view": Role.ADMIN, "delete": Role.ADMIN},
        grants=False,
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bound_tokens",
        help_text="When set, the token sees only this organization's objects and public ones.",
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    prefix = models.CharField(max_length=16, unique=True, help_text="The visible start of the token, for lookup.")
    secret_hash = models.CharField(max_length=64)
    scope = models.PositiveSmallIntegerField(choices=TokenScope.choices, default=TokenScope.READ)
    kind = models.CharField(
        max_length=10,
        choices=TokenKind.choices,
        default=TokenKind.PERSONAL,
        help_text="Who uses it: a person, CI or a service; usage analytics tell their traffic apart by it.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def generate(cls) -> tuple[str, str, str]:
        """A new (full token, prefix, hash). The full token is ``gpux_<prefix>_<secret>``."""
        prefix = secrets.token_hex(cls.PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        token = f"{settings.API_TOKEN_PREFIX}{prefix}_{secret}"
        return token, prefix, hash_token_secret(token)

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def touch(self, ip: str | None) -> None:
        """Record use, at most once per API_TOKEN_LAST_USED_RESOLUTION seconds (one UPDATE, no read)."""
        now = timezone.now()
        resolution = timedelta(seconds=settings.API_TOKEN_LAST_USED_RESOLUTION)
        if self.last_used_at and now - self.last_used_at < resolution:
            return
        type(self).objects.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - resolution)
        ).update(last_used_at=now, last_used_ip=ip)
        self.last_used_at = now


class ExternalIdentity(models.Model):
    """A person as an identity provider knows them (a directory entry, a SAML subject, a SCIM user), linked to a user.

    ``source`` names the provider: ``ldap`` for the operator's directory (SAML and SCIM per organization use
    ``saml:<org uuid>`` and ``scim:<org uuid>``); ``subject`` is the person's stable identifier there (the
    directory's entryUUID or objectGUID, else the entry's DN; a NameID; an externalId). OpenID Connect and OAuth
    accounts are allauth's SocialAccount rows instead. ``groups`` are the groups the source named at the last
    sign-in. ``deactivated_at`` is set when the source said the account is disabled and the portal deactivated
    the user because of it: the next successful sign-in through the source reactivates them (a user an operator
    deactivated stays deactivated).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    source = models.CharField(max_length=100)
    subject = models.CharField(max_length=500)
    email = models.EmailField("e-mail address at the source", max_length=254, blank=True)
    groups = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source", "subject"]
        verbose_name_plural = "external identities"
        constraints = [models.UniqueConstraint(fields=["source", "subject"], name="unique_external_identity")]
        indexes = [models.Index(fields=["user", "source"])]

    def __str__(self) -> str:
        return f"{self.source}: {self.subject}"
