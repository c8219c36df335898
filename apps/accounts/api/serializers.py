"""The caller's profile and API tokens. A token's secret appears once, in the answer that creates it."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import ApiToken, TokenKind, TokenScope, User
from apps.core.api.serializers import CachedFieldsModelSerializer

SCOPE_NAMES = [scope.label for scope in TokenScope]
STATUS_NAMES = ["active", "expired", "revoked"]


class UserSerializer(CachedFieldsModelSerializer):
    """The signed-in user. ``name`` and ``handle`` may be changed; the e-mail is managed under /accounts/email/."""

    class Meta:
        model = User
        fields = ["uuid", "handle", "name", "email", "date_joined"]
        read_only_fields = ["uuid", "email", "date_joined"]
        extra_kwargs = {
            # The service checks the handle against the whole namespace (users and organizations alike).
            "handle": {"validators": [], "required": False},
            "name": {"required": False},
        }


class ApiTokenSerializer(CachedFieldsModelSerializer):
    """A token as its owner sees it later: the prefix identifies it, the secret is never shown again."""

    scope = serializers.SerializerMethodField()
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "uuid",
            "name",
            "prefix",
            "scope",
            "kind",
            "organization",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=SCOPE_NAMES))
    def get_scope(self, token: ApiToken) -> str:
        return token.get_scope_display()

    @extend_schema_field(serializers.ChoiceField(choices=STATUS_NAMES))
    def get_status(self, token: ApiToken) -> str:
        return token.status


class OrganizationApiTokenSerializer(ApiTokenSerializer):
    """A token bound to an organization, as that organization's admins see it: whose it is, not where it was used."""

    user = serializers.SlugRelatedField(slug_field="handle", read_only=True)

    class Meta(ApiTokenSerializer.Meta):
        fields = [
            "uuid",
            "user",
            "name",
            "prefix",
            "scope",
            "kind",
            "organization",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    """What a new token is made of. The view resolves ``organization`` and calls ``create_api_token``."""

    name = serializers.CharField(max_length=ApiToken.NAME_MAX_LENGTH, trim_whitespace=True)
    scope = serializers.ChoiceField(choices=SCOPE_NAMES, default="read")
    kind = serializers.ChoiceField(
        choices=TokenKind.values,
        default=TokenKind.PERSONAL,
        help_text="Who uses it (personal, ci, service): usage analytics tell their traffic apart by it.",
    )
    organization = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=39,
        help_text="Slug of an organization you belong to: the token then sees only its objects and public ones.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="When the token stops working.")


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    """The answer to creating a token: the only time its full secret (``token``) is shown."""

    token = serializers.SerializerMethodField(help_text="The full token. Store it now: it is never shown again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_token(self, token: ApiToken) -> str:
        return self.context["raw_token"]
