"""Serializers of organizations, members, teams and invitations.

They check shapes and types (missing fields, wrong types, unknown role names); the rules (slug format and
availability, who may grant what) live in ``apps.organizations.services``, which the views call. No
serializer exposes an invitation's key or its hash.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from apps.core.access import Role, Visibility
from apps.core.api.serializers import CachedFieldsModelSerializer
from apps.organizations.models import Invitation, Membership, Organization, Team

ROLE_NAMES = [role.label for role in Role]


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers too (DRF's turns ``12`` into ``"12"``): names and keys are text."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RoleField(serializers.ChoiceField):
    """A role by name (``viewer``, ``member``, ``admin``, ``owner``); stored as its number."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("help_text", "One of viewer, member, admin, owner.")
        super().__init__(choices=[(name, name) for name in ROLE_NAMES], **kwargs)

    def to_representation(self, value):
        return Role(value).label if value is not None else None

    def to_internal_value(self, data) -> Role:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return Role.from_name(super().to_internal_value(data.strip().lower()))


class OrganizationSerializer(CachedFieldsModelSerializer):
    """An organization as the caller sees it, with the caller's role in it (``null`` when not a member)."""

    slug = StrictCharField(
        max_length=39, help_text="The organization's name in URLs; shares one namespace with user handles."
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    avatar = serializers.ImageField(read_only=True, allow_null=True)
    role = serializers.SerializerMethodField(help_text="Your role in the organization, or null.")

    class Meta:
        model = Organization
        fields = [
            "uuid",
            "slug",
            "name",
            "description",
            "visibility",
            "is_personal",
            "require_mfa",
            "avatar",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["uuid", "is_personal", "avatar", "role", "created_at", "updated_at"]

    @extend_schema_field({"type": "string", "enum": ROLE_NAMES, "nullable": True})
    def get_role(self, organization: Organization) -> str | None:
        role = getattr(organization, "caller_role", None)
        return Role(role).label if role is not None else None


class OrganizationCreateSerializer(serializers.Serializer):
    """What a new organization needs: its slug and name (description and visibility are optional)."""

    slug = StrictCharField(max_length=39)
    name = StrictCharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, default=Visibility.PRIVATE)


class UserSummarySerializer(serializers.Serializer):
    """A user as others see them: handle and name."""

    handle = StrictCharField(read_only=True)
    name = StrictCharField(read_only=True)


class MembershipSerializer(CachedFieldsModelSerializer):
    """A member of an organization and their role. Only ``role`` can be changed (PATCH)."""

    handle = StrictCharField(source="user.handle", read_only=True)
    name = StrictCharField(source="user.name", read_only=True)
    role = RoleField()
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["handle", "name", "role", "joined_at"]

    def validate(self, attrs: dict) -> dict:
        if "role" not in attrs:  # a PATCH is partial, but changing nothing but the role, it must name one
            raise serializers.ValidationError(
                {"role": [ErrorDetail("This field is required.", code="required")]}, code="required"
            )
        return attrs


class TeamSerializer(CachedFieldsModelSerializer):
    """A team of an organization's members."""

    slug = StrictCharField(max_length=50, help_text="The team's name in URLs, unique in its organization.")
    name = StrictCharField(max_length=100, required=False, allow_blank=True, help_text="Defaults to the slug.")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["uuid", "slug", "name", "description", "member_count", "created_at"]
        read_only_fields = ["uuid", "member_count", "created_at"]


class TeamMemberSerializer(CachedFieldsModelSerializer):
    """A user in a team."""

    class Meta:
        model = get_user_model()
        fields = ["handle", "name"]
        read_only_fields = fields


class TeamMemberAddSerializer(serializers.Serializer):
    """Who to add to a team: the handle of a member of the organization."""

    handle = StrictCharField(max_length=39)


class InvitationSerializer(CachedFieldsModelSerializer):
    """An invitation. Its key is only ever in the e-mail sent to the invited address."""

    email = StrictCharField(max_length=254, help_text="The invited address (stored lower-case).")
    role = RoleField(required=False, default=Role.MEMBER.label)
    status = serializers.ChoiceField(choices=Invitation.Status.choices, read_only=True)
    invited_by = serializers.SlugRelatedField(
        slug_field="handle", read_only=True, allow_null=True, help_text="The handle of who sent (or renewed) it."
    )
    accepted_by = serializers.SlugRelatedField(
        slug_field="handle", read_only=True, allow_null=True, help_text="The handle of who accepted it."
    )

    class Meta:
        model = Invitation
        fields = [
            "uuid",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "accepted_by",
            "revoked_at",
        ]
        read_only_fields = [
            "uuid",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "accepted_by",
            "revoked_at",
        ]


class InvitationAcceptSerializer(serializers.Serializer):
    """The key from the invitation's link (``/invitations/<key>/``)."""

    key = StrictCharField(max_length=200, trim_whitespace=True)


class InvitationAcceptedSerializer(serializers.Serializer):
    """The membership an accepted invitation made."""

    organization = serializers.CharField(source="organization.slug", read_only=True)
    name = StrictCharField(source="organization.name", read_only=True)
    role = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_role(self, membership: Membership) -> str:
        return Role(membership.role).label
