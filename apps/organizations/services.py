"""Organization workflows. Views, API and tasks all call these; each writes its audit event."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import Membership, Organization
from apps.organizations.validators import namespace_is_taken, validate_namespace_slug


def role_of(user: Any, organization: Organization) -> Role | None:
    """The user's role in the organization, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    role = Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True).first()
    return Role(role) if role is not None else None


def check_slug_available(slug: str, *, field: str = "slug", exclude_organization_id: int | None = None) -> None:
    try:
        validate_namespace_slug(slug)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}, code=exc.code) from exc
    if namespace_is_taken(slug, exclude_organization_id=exclude_organization_id):
        raise ValidationError({field: [f"“{slug}” is already taken by a user or an organization."]}, code="taken")


@transaction.atomic
def create_personal_organization(*, user: Any) -> Organization:
    """The organization named by the user's handle, owned by them. Made once, at sign-up."""
    organization = Organization.objects.create(
        slug=user.handle, name=user.name or user.handle, is_personal=True, personal_owner=user
    )
    Membership.objects.create(organization=organization, user=user, role=Role.OWNER)
    record_event(
        action="organization.created",
        organization=organization,
        actor=user,
        target=organization,
        metadata={"personal": True},
    )
    return organization


@transaction.atomic
def create_organization(
    *, creator: Any, slug: str, name: str, description: str = "", visibility: str = "private"
) -> Organization:
    """A new organization whose first owner is ``creator``."""
    slug = (slug or "").strip().lower()
    check_slug_available(slug)
    organization = Organization.objects.create(slug=slug, name=name, description=description, visibility=visibility)
    Membership.objects.create(organization=organization, user=creator, role=Role.OWNER)
    record_event(
        action="organization.created",
        organization=organization,
        actor=creator,
        target=organization,
        diff={"slug": [None, slug], "name": [None, name], "visibility": [None, visibility]},
    )
    return organization
