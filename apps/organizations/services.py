"""Organization workflows. Views, API and tasks all call these; each writes its audit event.

Every service is a keyword-only function that runs in one transaction, locks the organization's row first
(so that two concurrent changes of the same organization's members queue up instead of both seeing "two
owners" and leaving none), checks the caller's role with ``role_of()`` and records one audit event with a
diff in the same transaction. User errors are raised as Django ``ValidationError({"field": [message]})``
whose messages carry a stable code (the API answers 400 naming the field and the code) or
``PermissionDenied`` (the API answers 403).

The rules (DESIGN.md's role table):

* owners manage org settings and other owners, and delete the organization; a personal organization is
  neither renamed here (its slug follows its owner's handle) nor deleted;
* admins manage teams, invitations and members up to admin; nobody grants a role above their own;
* the last owner cannot leave, be demoted or be removed;
* invitations: one open invitation per address and organization; inviting an address that already has an
  open (pending or expired) invitation *refreshes* it: a new key (the old link stops working), a new expiry,
  the role given now, and the e-mail is sent again.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from apps.audit.services import changes, record_event
from apps.core.access import Role, Visibility, role_of
from apps.core.errors import Problems, field_errors
from apps.core.validators import SLUG_RULES, SLUG_VALIDATOR
from apps.organizations.models import Invitation, Membership, Organization, Team, hash_invitation_key
from apps.organizations.signals import membership_ended
from apps.organizations.validators import namespace_is_taken, validate_namespace_slug

logger = logging.getLogger(__name__)

_UNSET: Any = object()

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 2000
EMAIL_MAX_LENGTH = 254
TEAM_SLUG_PATTERN = SLUG_VALIDATOR.regex  # a team's slug follows the rule of the other slugs inside an organization
# Team slugs that would shadow a page such as /orgs/<slug>/teams/new/.
RESERVED_TEAM_SLUGS = frozenset({"new", "edit", "members", "delete"})


# -- lookups --------------------------------------------------------------------------------------------------
def check_slug_available(slug: str, *, field: str = "slug", exclude_organization_id: int | None = None) -> None:
    """Refuse a malformed, reserved or taken (by an organization or a user's handle) slug, naming ``field``."""
    try:
        validate_namespace_slug(slug)
    except ValidationError as exc:
        raise ValidationError({field: exc.error_list}) from exc
    if namespace_is_taken(slug, exclude_organization_id=exclude_organization_id):
        raise slug_taken(slug, field=field)


def slug_taken(slug: str, *, field: str = "slug") -> ValidationError:
    return field_errors({field: [f"“{slug}” is already taken by a user or an organization."]}, code="taken")


def invitation_for_key(key: str) -> Invitation | None:
    """The invitation a (raw) key opens, whatever its status, or None. For the accept page."""
    key = (key or "").strip() if isinstance(key, str) else ""
    if not key:
        return None
    invitations = Invitation.objects.select_related("organization", "invited_by")
    return invitations.filter(key_hash=hash_invitation_key(key)).first()


def invitation_accept_url(key: str) -> str:
    """The link an invitation e-mail carries."""
    return f"{settings.PORTAL_URL.rstrip('/')}/invitations/{key}/"


def team_members(team: Team):
    """The users in a team (its auth group), by handle."""
    return get_user_model().objects.filter(groups=team.group_id).order_by("handle")


# -- helpers --------------------------------------------------------------------------------------------------
def as_role(value: Role | int | str, *, field: str = "role") -> Role:
    """A Role from a Role, its number or its name (``"admin"``); a ValidationError naming ``field`` otherwise."""
    try:
        if isinstance(value, Role):
            return value
        if isinstance(value, str) and not value.strip().isdigit():
            return Role.from_name(value.strip().lower())
        if isinstance(value, bool):
            raise ValueError(value)
        return Role(int(value))
    except (TypeError, ValueError):
        names = ", ".join(role.label for role in Role)
        raise field_errors({field: [f"“{value}” is not a role; choose one of {names}."]}, code="invalid_role") from None


def _lock_organization(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _require_role(actor: Any, organization: Organization, role: Role, doing: str) -> Role:
    mine = role_of(actor, organization)
    if mine is None or mine < role:
        raise PermissionDenied(f"Only an organization {role.label} or above may {doing} in “{organization.slug}”.")
    return mine


def _owner_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def _clean_name(value: Any, problems: Problems, *, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        problems.add(field, "This field may not be blank.", "blank")
        return ""
    value = value.strip()
    if len(value) > NAME_MAX_LENGTH:
        problems.add(field, f"At most {NAME_MAX_LENGTH} characters (this one has {len(value)}).", "max_length")
    return value


def _clean_description(value: Any, problems: Problems) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add("description", "Not a valid string.")
        return ""
    if len(value) > DESCRIPTION_MAX_LENGTH:
        problems.add(
            "description",
            f"At most {DESCRIPTION_MAX_LENGTH} characters (this one has {len(value)}).",
            "max_length",
        )
    return value


def _clean_visibility(value: Any, problems: Problems) -> str:
    if value not in Visibility.values:
        problems.add(
            "visibility",
            f"“{value}” is not a visibility; choose one of {', '.join(Visibility.values)}.",
            "invalid_choice",
        )
    return value


def _remove_from_teams(organization: Organization, user: Any) -> list[str]:
    """Take ``user`` out of every team of the organization; the slugs of the teams they were in."""
    teams = list(Team.objects.filter(organization=organization, group__user=user).select_related("group"))
    for team in teams:
        team.group.user_set.remove(user)
    return [team.slug for team in teams]


# -- organizations --------------------------------------------------------------------------------------------
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
    if not getattr(creator, "is_authenticated", False):
        raise PermissionDenied("Sign in to create an organization.")
    slug = (slug or "").strip().lower() if isinstance(slug, str) else ""
    problems = Problems()
    try:
        check_slug_available(slug)
    except ValidationError as exc:
        problems.add_error(exc)
    name = _clean_name(name, problems)
    description = _clean_description(description, problems)
    _clean_visibility(visibility, problems)
    problems.raise_if_any()
    try:
        with transaction.atomic():
            organization = Organization.objects.create(
                slug=slug, name=name, description=description, visibility=visibility
            )
    except IntegrityError:  # the slug is the only unique field: taken since the check, by a concurrent request
        raise slug_taken(slug) from None
    Membership.objects.create(organization=organization, user=creator, role=Role.OWNER)
    record_event(
        action="organization.created",
        organization=organization,
        actor=creator,
        target=organization,
        diff={"slug": [None, slug], "name": [None, name], "visibility": [None, visibility]},
    )
    return organization


ORGANIZATION_SETTINGS = ("slug", "name", "description", "visibility", "require_mfa")


@transaction.atomic
def update_organization(
    *,
    actor: Any,
    organization: Organization,
    slug: str = _UNSET,
    name: str = _UNSET,
    description: str = _UNSET,
    visibility: str = _UNSET,
    require_mfa: bool = _UNSET,
) -> Organization:
    """Change an organization's settings (owners only). Arguments left out stay as they are.

    A new slug is checked like a new organization's (format, reserved words, taken by an organization or a
    user's handle, case-insensitively). A personal organization keeps the slug of its owner's handle.
    """
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.OWNER, "change the organization's settings")
    problems = Problems()
    before = {field: getattr(organization, field) for field in ORGANIZATION_SETTINGS}
    if slug is not _UNSET:
        slug = slug.strip().lower() if isinstance(slug, str) else ""
        if slug != organization.slug:
            if organization.is_personal:
                problems.add(
                    "slug",
                    "A personal organization is named by its owner's handle: change the handle in your profile "
                    "to rename it.",
                    "personal_organization",
                )
            else:
                try:
                    check_slug_available(slug, exclude_organization_id=organization.pk)
                except ValidationError as exc:
                    problems.add_error(exc)
                organization.slug = slug
    if name is not _UNSET:
        organization.name = _clean_name(name, problems)
    if description is not _UNSET:
        organization.description = _clean_description(description, problems)
    if visibility is not _UNSET:
        organization.visibility = _clean_visibility(visibility, problems)
    if require_mfa is not _UNSET:
        if not isinstance(require_mfa, bool):
            problems.add("require_mfa", "Must be true or false.")
        organization.require_mfa = require_mfa
    problems.raise_if_any()
    diff = changes(organization, before, list(ORGANIZATION_SETTINGS))
    if diff:
        try:
            with transaction.atomic():
                organization.save()
        except IntegrityError:  # the new slug was taken since the check, by a concurrent request
            raise slug_taken(organization.slug) from None
        record_event(
            action="organization.updated", organization=organization, actor=actor, target=organization, diff=diff
        )
    return organization


@transaction.atomic
def delete_organization(*, actor: Any, organization: Organization) -> None:
    """Delete an organization with its memberships, teams (and their groups) and invitations (owners only).

    The deletion is recorded in the organization's own chain and in the platform chain, which outlives it.
    A personal organization is deleted only with its user.
    """
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.OWNER, "delete the organization")
    if organization.is_personal:
        raise field_errors(
            {"organization": ["A personal organization cannot be deleted; it goes when its user's account does."]},
            code="personal_organization",
        )
    summary = {
        "slug": organization.slug,
        "name": organization.name,
        "members": Membership.objects.filter(organization=organization).count(),
        "teams": Team.objects.filter(organization=organization).count(),
    }
    record_event(
        action="organization.deleted",
        organization=organization,
        actor=actor,
        target=organization,
        diff={"slug": [organization.slug, None]},
        metadata=summary,
    )
    record_event(
        action="organization.deleted",
        organization=None,
        actor=actor,
        target=organization,
        diff={"slug": [organization.slug, None]},
        metadata={**summary, "organization_id": organization.pk},
    )
    group_ids = list(Team.objects.filter(organization=organization).values_list("group_id", flat=True))
    organization.delete()
    Group.objects.filter(pk__in=group_ids).delete()


# -- members --------------------------------------------------------------------------------------------------
@transaction.atomic
def change_member_role(*, actor: Any, membership: Membership, role: Role | int | str) -> Membership:
    """Give a member another role.

    Admins may set roles up to admin; only owners grant or revoke the owner role; nobody grants a role above
    their own; the last owner cannot be demoted.
    """
    new = as_role(role)
    organization = _lock_organization(membership.organization)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    mine = _require_role(actor, organization, Role.ADMIN, "change members' roles")
    old = Role(membership.role)
    if new > mine:
        raise PermissionDenied(f"You cannot grant a role above your own ({mine.label}).")
    if Role.OWNER in (old, new) and mine < Role.OWNER:
        raise PermissionDenied("Only an owner may grant or revoke the owner role.")
    if new == old:
        return membership
    if old == Role.OWNER and _owner_count(organization) <= 1:
        raise field_errors(
            {
                "role": [
                    f"{membership.user.handle} is the last owner of “{organization.slug}”: make someone else an "
                    "owner first."
                ]
            },
            code="last_owner",
        )
    membership.role = new
    membership.save(update_fields=["role"])
    record_event(
        action="member.role_changed",
        organization=organization,
        actor=actor,
        target=membership,
        diff={"role": [old.label, new.label]},
        metadata={"user": membership.user.handle},
    )
    return membership


@transaction.atomic
def remove_member(*, actor: Any, membership: Membership) -> None:
    """Remove a member (and take them out of the organization's teams).

    Admins remove members up to admin; only owners remove owners; the last owner cannot be removed.
    Removing oneself is leaving (``leave_organization``).
    """
    if getattr(actor, "pk", None) == membership.user_id:
        leave_organization(user=actor, organization=membership.organization)
        return
    organization = _lock_organization(membership.organization)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    mine = _require_role(actor, organization, Role.ADMIN, "remove members")
    old = Role(membership.role)
    if old > mine:
        raise PermissionDenied(f"Only an {old.label} or above may remove an {old.label}.")
    if old == Role.OWNER and _owner_count(organization) <= 1:
        raise field_errors(
            {"user": [f"{membership.user.handle} is the last owner of “{organization.slug}” and cannot be removed."]},
            code="last_owner",
        )
    teams = _remove_from_teams(organization, membership.user)
    record_event(
        action="member.removed",
        organization=organization,
        actor=actor,
        target=membership,
        diff={"role": [old.label, None]},
        metadata={"user": membership.user.handle, "teams": teams},
    )
    membership.delete()
    _revoke_bound_tokens(organization=organization, user=membership.user, by=actor)


@transaction.atomic
def leave_organization(*, user: Any, organization: Organization) -> None:
    """The user leaves the organization (and its teams). The last owner cannot leave."""
    organization = _lock_organization(organization)
    user_id = getattr(user, "pk", None)
    membership = Membership.objects.select_for_update().filter(organization=organization, user_id=user_id).first()
    if membership is None:
        raise field_errors({"organization": [f"You are not a member of “{organization.slug}”."]}, code="not_a_member")
    if organization.is_personal:
        raise field_errors(
            {"organization": ["You cannot leave your personal organization."]}, code="personal_organization"
        )
    if membership.role == Role.OWNER and _owner_count(organization) <= 1:
        raise field_errors(
            {
                "organization": [
                    f"You are the last owner of “{organization.slug}”: make someone else an owner first, or "
                    "delete the organization."
                ]
            },
            code="last_owner",
        )
    old = Role(membership.role)
    teams = _remove_from_teams(organization, user)
    record_event(
        action="member.left",
        organization=organization,
        actor=user,
        target=membership,
        diff={"role": [old.label, None]},
        metadata={"user": user.handle, "teams": teams},
    )
    membership.delete()
    _revoke_bound_tokens(organization=organization, user=user, by=user)


def _revoke_bound_tokens(*, organization: Organization, user: Any, by: Any) -> None:
    """A membership ended: ``membership_ended`` tells the accounts app, which revokes the user's tokens bound to the
    organization (each revocation audited), in this transaction."""
    membership_ended.send(sender=Membership, organization=organization, user=user, by=by)


# -- teams ----------------------------------------------------------------------------------------------------
def _clean_team_slug(
    slug: Any, organization: Organization, problems: Problems, *, exclude_team_id: int | None = None
) -> str:
    slug = slug.strip().lower() if isinstance(slug, str) else ""
    if not TEAM_SLUG_PATTERN.match(slug):
        problems.add("slug", f"Enter a valid team name: {SLUG_RULES}.", "invalid_slug")
    elif slug in RESERVED_TEAM_SLUGS:
        problems.add("slug", f"“{slug}” is reserved; choose another team name.", "reserved")
    else:
        taken = Team.objects.filter(organization=organization, slug__iexact=slug)
        if exclude_team_id is not None:
            taken = taken.exclude(pk=exclude_team_id)
        if taken.exists():
            problems.add("slug", f"“{organization.slug}” already has a team “{slug}”.", "taken")
    return slug


@transaction.atomic
def create_team(*, actor: Any, organization: Organization, slug: str, name: str = "", description: str = "") -> Team:
    """A new team (admins and owners). Its auth group, named ``team:<uuid>``, carries guardian grants."""
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.ADMIN, "create teams")
    problems = Problems()
    slug = _clean_team_slug(slug, organization, problems)
    if name is None or (isinstance(name, str) and not name.strip()):
        name = slug  # a team named by its slug until someone names it
    name = _clean_name(name, problems)
    description = _clean_description(description, problems)
    problems.raise_if_any()
    team_uuid = uuid.uuid4()
    group = Group.objects.create(name=f"team:{team_uuid}")
    team = Team.objects.create(
        uuid=team_uuid, organization=organization, slug=slug, name=name, description=description, group=group
    )
    record_event(
        action="team.created",
        organization=organization,
        actor=actor,
        target=team,
        diff={"slug": [None, slug], "name": [None, name], "description": [None, description]},
    )
    return team


TEAM_FIELDS = ("slug", "name", "description")


@transaction.atomic
def update_team(*, actor: Any, team: Team, slug: str = _UNSET, name: str = _UNSET, description: str = _UNSET) -> Team:
    """Rename or describe a team (admins and owners). Arguments left out stay as they are."""
    organization = _lock_organization(team.organization)
    team = Team.objects.select_for_update().get(pk=team.pk)
    _require_role(actor, organization, Role.ADMIN, "change teams")
    problems = Problems()
    before = {field: getattr(team, field) for field in TEAM_FIELDS}
    if slug is not _UNSET:
        team.slug = _clean_team_slug(slug, organization, problems, exclude_team_id=team.pk)
    if name is not _UNSET:
        team.name = _clean_name(name, problems)
    if description is not _UNSET:
        team.description = _clean_description(description, problems)
    problems.raise_if_any()
    diff = changes(team, before, list(TEAM_FIELDS))
    if diff:
        team.save()
        record_event(action="team.updated", organization=organization, actor=actor, target=team, diff=diff)
    return team


@transaction.atomic
def delete_team(*, actor: Any, team: Team) -> None:
    """Delete a team and its auth group (with the grants made to it). Admins and owners."""
    organization = _lock_organization(team.organization)
    team = Team.objects.select_for_update().select_related("group").get(pk=team.pk)
    _require_role(actor, organization, Role.ADMIN, "delete teams")
    members = list(team_members(team).values_list("handle", flat=True))
    record_event(
        action="team.deleted",
        organization=organization,
        actor=actor,
        target=team,
        diff={"slug": [team.slug, None]},
        metadata={"members": members},
    )
    group = team.group
    team.delete()
    group.delete()


@transaction.atomic
def add_team_member(*, actor: Any, team: Team, user: Any) -> Team:
    """Put a member of the organization into one of its teams (admins and owners)."""
    organization = _lock_organization(team.organization)
    team = Team.objects.select_related("group").get(pk=team.pk)
    _require_role(actor, organization, Role.ADMIN, "manage teams")
    if not Membership.objects.filter(organization=organization, user=user).exists():
        raise field_errors(
            {"handle": [f"{user.handle} is not a member of “{organization.slug}”: invite them first."]},
            code="not_a_member",
        )
    if team.group.user_set.filter(pk=user.pk).exists():
        raise field_errors({"handle": [f"{user.handle} is already in team “{team.slug}”."]}, code="already_in_team")
    team.group.user_set.add(user)
    record_event(
        action="team.member_added",
        organization=organization,
        actor=actor,
        target=team,
        diff={"members": [None, user.handle]},
        metadata={"user": user.handle},
    )
    return team


@transaction.atomic
def remove_team_member(*, actor: Any, team: Team, user: Any) -> Team:
    """Take a user out of a team (admins and owners)."""
    organization = _lock_organization(team.organization)
    team = Team.objects.select_related("group").get(pk=team.pk)
    _require_role(actor, organization, Role.ADMIN, "manage teams")
    if not team.group.user_set.filter(pk=user.pk).exists():
        raise field_errors({"handle": [f"{user.handle} is not in team “{team.slug}”."]}, code="not_in_team")
    team.group.user_set.remove(user)
    record_event(
        action="team.member_removed",
        organization=organization,
        actor=actor,
        target=team,
        diff={"members": [user.handle, None]},
        metadata={"user": user.handle},
    )
    return team


# -- invitations ----------------------------------------------------------------------------------------------
def normalize_email(email: Any) -> str:
    """A stripped, lower-cased, valid e-mail address, or a ValidationError on ``email``."""
    email = email.strip().lower() if isinstance(email, str) else ""
    if not email:
        raise field_errors({"email": ["This field may not be blank."]}, code="blank")
    if len(email) > EMAIL_MAX_LENGTH:
        raise field_errors(
            {"email": [f"An e-mail address has at most {EMAIL_MAX_LENGTH} characters."]}, code="max_length"
        )
    try:
        validate_email(email)
    except ValidationError:
        raise field_errors({"email": [f"“{email}” is not a valid e-mail address."]}, code="invalid_email") from None
    return email


def _member_with_email(organization: Organization, email: str) -> bool:
    from allauth.account.models import EmailAddress

    verified_owners = EmailAddress.objects.filter(email__iexact=email, verified=True).values("user_id")
    return (
        Membership.objects.filter(organization=organization)
        .filter(Q(user__email__iexact=email) | Q(user_id__in=verified_owners))
        .exists()
    )


def send_invitation_email(*, invitation: Invitation, key: str, inviter: Any) -> None:
    """E-mail the accept link (``{PORTAL_URL}/invitations/<key>/``) to the invited address."""
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "inviter": inviter,
        "role": invitation.get_role_display(),
        "accept_url": invitation_accept_url(key),
        "expires_at": invitation.expires_at,
        "portal_url": settings.PORTAL_URL,
    }
    prefix = getattr(settings, "ACCOUNT_EMAIL_SUBJECT_PREFIX", "")
    subject = prefix + " ".join(render_to_string("organizations/email/invitation_subject.txt", context).split())
    body = render_to_string("organizations/email/invitation_message.txt", context)
    html = render_to_string("organizations/email/invitation_message.html", context)
    try:
        send_mail(subject, body, None, [invitation.email], html_message=html)
    except (OSError, smtplib.SMTPException) as exc:
        # Raised inside the invitation's transaction: nothing is kept of an invitation nobody was told about.
        logger.warning("Invitation e-mail to %s could not be sent: %s", invitation.email, exc)
        raise field_errors(
            {"email": ["The invitation e-mail could not be sent; nothing was saved. Try again later."]},
            code="email_not_sent",
        ) from exc


@transaction.atomic
def create_invitation(
    *, actor: Any, organization: Organization, email: str, role: Role | int | str = Role.MEMBER
) -> Invitation:
    """Invite an e-mail address to join with ``role`` (admins and owners; owner invitations only by owners).

    Returns the invitation with the raw key on ``invitation.key`` (it is stored only hashed). The address
    is normalized to lower case; a member's address is refused; an address with an open invitation gets
    that invitation refreshed (new key, expiry and role; the e-mail is sent again).
    """
    email = normalize_email(email)
    new = as_role(role)
    organization = _lock_organization(organization)
    mine = _require_role(actor, organization, Role.ADMIN, "invite members")
    if organization.is_personal:
        raise field_errors(
            {"organization": ["A personal organization has only its owner: create an organization to invite people."]},
            code="personal_organization",
        )
    if new > mine:
        raise PermissionDenied(f"You cannot invite with a role above your own ({mine.label}).")
    if _member_with_email(organization, email):
        raise field_errors({"email": [f"{email} is already a member of “{organization.slug}”."]}, code="already_member")
    existing = (
        Invitation.objects.select_for_update()
        .filter(organization=organization, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if existing is not None and existing.role > mine:
        raise PermissionDenied(
            f"{email} has an open invitation as {existing.get_role_display()}, which only an owner may renew."
        )
    key = Invitation.new_key()
    expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    if existing is None:
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=new,
            key_hash=hash_invitation_key(key),
            invited_by=actor,
            expires_at=expires_at,
        )
        action, diff = "invitation.created", {"email": [None, email], "role": [None, new.label]}
    else:
        invitation = existing
        old_role, old_expiry = Role(invitation.role), invitation.expires_at
        invitation.role, invitation.key_hash, invitation.invited_by = new, hash_invitation_key(key), actor
        invitation.expires_at = expires_at
        invitation.save(update_fields=["role", "key_hash", "invited_by", "expires_at"])
        action, diff = "invitation.refreshed", {"expires_at": [old_expiry.isoformat(), expires_at.isoformat()]}
        if old_role != new:
            diff["role"] = [old_role.label, new.label]
    record_event(
        action=action,
        organization=organization,
        actor=actor,
        target=invitation,
        diff=diff,
        metadata={"email": email, "expires_at": expires_at.isoformat()},
    )
    send_invitation_email(invitation=invitation, key=key, inviter=actor)
    invitation.key = key
    return invitation


@transaction.atomic
def revoke_invitation(*, actor: Any, invitation: Invitation) -> Invitation:
    """Revoke an open invitation (admins and owners; owner invitations only by owners): its link stops working."""
    organization = _lock_organization(invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    mine = _require_role(actor, organization, Role.ADMIN, "revoke invitations")
    if invitation.role > mine:
        raise PermissionDenied(f"Only an owner may revoke an invitation as {invitation.get_role_display()}.")
    status = invitation.status
    if status == Invitation.Status.ACCEPTED:
        raise field_errors({"invitation": ["This invitation has already been accepted."]}, code="already_accepted")
    if status == Invitation.Status.REVOKED:
        raise field_errors({"invitation": ["This invitation has already been revoked."]}, code="already_revoked")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_event(
        action="invitation.revoked",
        organization=organization,
        actor=actor,
        target=invitation,
        diff={"status": [status, Invitation.Status.REVOKED]},
        metadata={"email": invitation.email},
    )
    return invitation


@transaction.atomic
def accept_invitation(*, user: Any, key: str) -> Membership:
    """Join an organization through an invitation's key.

    Refused, each with its own code on the ``key`` field: an unknown key (``unknown_key``), a revoked
    (``revoked``), used (``already_used``) or expired (``expired``) invitation, a user already a member
    (``already_member``). The signed-in user must have the invited address as a *verified* e-mail address,
    else ``email_unverified`` (they have it, unverified) or ``email_mismatch`` on the ``email`` field.
    """
    from allauth.account.models import EmailAddress

    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied("Sign in to accept an invitation.")
    key = key.strip() if isinstance(key, str) else ""
    if not key:
        raise field_errors({"key": ["This field may not be blank."]}, code="blank")
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(key_hash=hash_invitation_key(key))
        .first()
    )
    if invitation is None:
        raise field_errors(
            {"key": ["This invitation link is not valid: check it, or ask for a new invitation."]}, code="unknown_key"
        )
    status = invitation.status
    refusals = {
        Invitation.Status.ACCEPTED: ("already_used", "This invitation has already been used."),
        Invitation.Status.REVOKED: ("revoked", "This invitation has been revoked."),
        Invitation.Status.EXPIRED: ("expired", "This invitation has expired: ask for a new one."),
    }
    if status in refusals:
        code, message = refusals[status]
        raise field_errors({"key": [message]}, code=code)
    organization = _lock_organization(invitation.organization)
    addresses = EmailAddress.objects.filter(user=user, email__iexact=invitation.email)
    if not addresses.filter(verified=True).exists():
        if addresses.exists():
            raise field_errors(
                {"email": [f"Verify your e-mail address {invitation.email} first, then accept the invitation."]},
                code="email_unverified",
            )
        raise field_errors(
            {
                "email": [
                    "This invitation was sent to another e-mail address: sign in with the account that has it "
                    "verified, or add and verify that address in your account."
                ]
            },
            code="email_mismatch",
        )
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise field_errors({"key": [f"You are already a member of “{organization.slug}”."]}, code="already_member")
    membership = Membership.objects.create(organization=organization, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_event(
        action="invitation.accepted",
        organization=organization,
        actor=user,
        target=invitation,
        diff={"status": [status, Invitation.Status.ACCEPTED]},
        metadata={"email": invitation.email, "user": user.handle},
    )
    record_event(
        action="member.added",
        organization=organization,
        actor=user,
        target=membership,
        diff={"role": [None, Role(membership.role).label]},
        metadata={"user": user.handle, "invitation": str(invitation.uuid)},
    )
    return membership
