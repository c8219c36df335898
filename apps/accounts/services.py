"""Account workflows: API tokens and the profile. Views, API, admin and tasks all call these.

Every change writes one audit event in the same transaction. Token events go to the chain of the
organization the token is bound to, else to the owner's personal organization; profile changes go to the
personal organization's chain. A token's secret is never recorded anywhere but in the answer that creates it.

Privilege rules for tokens (docs/api/tokens.md explains them to users):

* a token bound to an organization needs its owner to be a member of it, and its scope may not exceed what
  the owner's role there allows (viewer: read; member: run; admin and owner: admin);
* a token used to create another token (``via_token``) must be able to manage tokens (scope admin), the new
  token's scope may not exceed its own, a bound token may only create tokens bound to the same organization,
  and the new token may not outlive it (when the new one names no binding or expiry, it inherits them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, TokenKind, TokenScope, User
from apps.audit.services import changes, record_event
from apps.core import shortlived
from apps.core.access import Role, role_of
from apps.core.errors import field_error
from apps.organizations.models import Organization
from apps.organizations.services import check_slug_available, create_personal_organization

# The widest scope that makes sense for a token bound to an organization where its owner has this role:
# a viewer can only read there, a member may create, change and run, admins and owners may administer.
WIDEST_SCOPE_FOR_ROLE = {
    Role.VIEWER: TokenScope.READ,
    Role.MEMBER: TokenScope.RUN,
    Role.ADMIN: TokenScope.ADMIN,
    Role.OWNER: TokenScope.ADMIN,
}

_UNSET: Any = object()
PREFIX_ATTEMPTS = 3


def personal_organization_of(user: User) -> Organization | None:
    """The user's personal organization (slug = handle), or None for a user made without one."""
    return Organization.objects.filter(personal_owner=user, is_personal=True).first()


def acting_organization(user: Any, bound_organization_id: int | None, fallback: Any) -> Any:
    """Whom a run counts against: the token's bound organization, else the caller's personal one."""
    if bound_organization_id:
        return bound_organization_id
    personal = _personal_organizations.get(user.pk)
    if personal is None:
        found = personal_organization_of(user)
        if found is None:
            return fallback
        if len(_personal_organizations) > 10_000:
            _personal_organizations.clear()
        personal = _personal_organizations[user.pk] = found.pk  # a personal organization never changes hands
    return personal


_personal_organizations: dict[int, int] = {}


def token_chain_organization(token: ApiToken) -> Organization | None:
    """Which audit chain a token's events belong to: the bound organization, else the owner's personal one."""
    return token.organization if token.organization_id else personal_organization_of(token.user)


def token_summary(token: ApiToken) -> dict[str, Any]:
    """What the audit trail keeps about a token: never the secret (only its visible prefix)."""
    return {
        "name": token.name,
        "prefix": token.prefix,
        "scope": token.get_scope_display(),
        "organization": token.organization.slug if token.organization_id else None,
        "owner": token.user.handle,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def _as_scope(scope: TokenScope | int | str) -> TokenScope:
    try:
        if isinstance(scope, str) and not scope.isdigit():
            return TokenScope.from_name(scope.strip().lower())
        return TokenScope(int(scope))
    except (TypeError, ValueError):
        names = ", ".join(s.label for s in TokenScope)
        raise field_error(
            "scope", f"“{scope}” is not a token scope; choose one of {names}.", code="invalid_scope"
        ) from None


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise field_error("name", "Give the token a name, so that you can recognise it later.", code="blank")
    if len(name) > ApiToken.NAME_MAX_LENGTH:
        raise field_error(
            "name",
            f"A token name has at most {ApiToken.NAME_MAX_LENGTH} characters (this one has {len(name)}).",
            code="max_length",
        )
    return name


def create_api_token(
    *,
    user: User,
    name: str,
    scope: TokenScope | int | str,
    organization: Organization | None = None,
    expires_at: datetime | None = None,
    via_token: ApiToken | None = None,
    kind: str = "personal",
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it with the raw secret, which is shown once and never stored.

    ``via_token`` is the token the request was authenticated with, when it was one: the new token may not
    be wider, bound elsewhere or longer-lived than it (see the module docstring).
    """
    name = _clean_name(name)
    scope = _as_scope(scope)
    now = timezone.now()
    if kind not in TokenKind.values:
        raise field_error("kind", f"“{kind}” is not a token kind: use one of {', '.join(TokenKind.values)}.")

    if via_token is not None:
        if not via_token.allows(TokenScope.ADMIN):
            raise PermissionDenied("Only a token of scope “admin” (or a signed-in session) may create tokens.")
        if scope > via_token.scope:
            raise field_error(
                "scope",
                f"A token cannot create a token wider than itself (“{via_token.get_scope_display()}”).",
                code="scope_escalation",
            )
        if via_token.organization_id is not None:
            if organization is None:
                organization = via_token.organization
            elif organization.pk != via_token.organization_id:
                raise field_error(
                    "organization",
                    f"This token is bound to “{via_token.organization.slug}”: it may only create tokens "
                    "bound to that organization.",
                    code="binding_escalation",
                )
        if via_token.expires_at is not None:
            if expires_at is None:
                expires_at = via_token.expires_at
            elif expires_at > via_token.expires_at:
                raise field_error(
                    "expires_at",
                    "A token cannot create a token that outlives it; choose an earlier expiry.",
                    code="expiry_escalation",
                )

    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at, timezone.get_default_timezone())
        if expires_at <= now:
            raise field_error("expires_at", "The expiry must be in the future.", code="expiry_in_past")

    if organization is not None:
        role = role_of(user, organization)
        if role is None:
            raise field_error(
                "organization",
                f"You are not a member of “{organization.slug}”; a token can only be bound to one.",
                code="not_a_member",
            )
        widest = WIDEST_SCOPE_FOR_ROLE[role]
        if scope > widest:
            raise field_error(
                "scope",
                f"Your role in “{organization.slug}” is {role.label}: a token bound to it can have at most "
                f"the scope “{widest.label}”.",
                code="scope_exceeds_role",
            )

    with transaction.atomic():
        for attempt in range(PREFIX_ATTEMPTS):
            raw, prefix, secret_hash = ApiToken.generate()
            try:
                with transaction.atomic():
                    token = ApiToken.objects.create(
                        user=user,
                        name=name,
                        prefix=prefix,
                        secret_hash=secret_hash,
                        scope=scope,
                        organization=organization,
                        expires_at=expires_at,
                        created_at=now,
                        kind=kind,
                    )
                break
            except IntegrityError:
                # Two tokens drew the same 32-bit prefix: draw again rather than fail.
                if attempt == PREFIX_ATTEMPTS - 1:
                    raise
        record_event(
            action="token.created",
            organization=token_chain_organization(token),
            actor=user,
            target=token,
            metadata={**token_summary(token), "created_with_token": via_token.prefix if via_token else None},
        )
    return token, raw


def can_revoke_api_token(*, token: ApiToken, by: Any) -> bool:
    """The token's owner, or an admin or owner of the organization it is bound to."""
    if not getattr(by, "is_authenticated", False):
        return False
    if token.user_id == by.pk:
        return True
    if token.organization_id is None:
        return False
    role = role_of(by, token.organization)
    return role is not None and role >= Role.ADMIN


def revoke_api_token(*, token: ApiToken, by: Any, as_operator: bool = False) -> ApiToken:
    """Revoke ``token`` (idempotent: revoking a revoked token changes nothing and records nothing).

    Allowed to the token's owner and to admins and owners of the organization it is bound to; ``as_operator``
    is for the Django admin, whose own permission check has already passed.
    """
    if not as_operator and not can_revoke_api_token(token=token, by=by):
        raise PermissionDenied("Only the token's owner or an admin of the organization it is bound to may revoke it.")
    return _revoke(token, by=by, metadata={"by_operator": as_operator})


def _revoke(token: ApiToken, *, by: Any, metadata: dict[str, Any]) -> ApiToken:
    with transaction.atomic():
        tokens = ApiToken.objects.select_related("user", "organization")
        locked = tokens.select_for_update(of=("self",)).get(pk=token.pk)
        if locked.revoked_at is not None:
            token.revoked_at, token.revoked_by_id = locked.revoked_at, locked.revoked_by_id
            return token
        now = timezone.now()
        revoked_by = by if getattr(by, "is_authenticated", False) else None
        ApiToken.objects.filter(pk=locked.pk).update(revoked_at=now, revoked_by=revoked_by)
        shortlived.invalidate_on_commit()  # every web process stops accepting it (apps/core/shortlived.py)
        locked.revoked_at, locked.revoked_by = now, revoked_by
        record_event(
            action="token.revoked",
            organization=token_chain_organization(locked),
            actor=by,
            target=locked,
            metadata={**token_summary(locked), **metadata},
        )
    token.revoked_at, token.revoked_by = now, revoked_by
    return token


def revoke_member_tokens(*, organization: Organization, user: User, by: Any) -> int:
    """Revoke ``user``'s tokens bound to ``organization``: call it when they leave it or are removed from it.

    The caller (the membership workflow) has already decided that ``by`` may end the membership. A bound token
    of someone who is no longer a member could only see public objects anyway; revoking it keeps the
    organization's token list honest. Returns how many were revoked; each revocation is audited.
    """
    revoked = 0
    with transaction.atomic():
        for token in ApiToken.objects.filter(organization=organization, user=user, revoked_at__isnull=True):
            _revoke(token, by=by, metadata={"reason": "membership ended"})
            revoked += 1
    return revoked


def _clean_handle(handle: str, personal: Organization | None) -> str:
    handle = (handle or "").strip().lower()
    check_slug_available(handle, field="handle", exclude_organization_id=personal.pk if personal else None)
    return handle


def update_profile(*, user: User, name: str | None = _UNSET, handle: str | None = _UNSET, by: Any = None) -> User:
    """Change the user's display name and/or handle (omitted arguments stay as they are).

    Renaming the handle renames the personal organization's slug in the same transaction: they share one
    namespace, so the new handle must be free for both (the user's own personal organization excepted).
    ``by`` is who made the change (the user themself unless an operator did it in the admin).
    """
    by = by or user
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        personal = personal_organization_of(locked)
        if personal is not None:
            personal = Organization.objects.select_for_update().get(pk=personal.pk)
        before = {"name": locked.name, "handle": locked.handle}
        if name is not _UNSET and name is not None:
            name = name.strip()
            max_length = User._meta.get_field("name").max_length
            if len(name) > max_length:
                raise field_error(
                    "name", f"A name has at most {max_length} characters (this one has {len(name)}).", code="max_length"
                )
            locked.name = name
        if handle is not _UNSET and handle is not None and handle.strip().lower() != locked.handle:
            locked.handle = _clean_handle(handle, personal)
        diff = changes(locked, before, ["name", "handle"])
        if not diff:
            return locked
        try:
            with transaction.atomic():
                locked.save(update_fields=["name", "handle"])
                if personal is None:
                    personal = create_personal_organization(user=locked)
                else:
                    org_before = {"slug": personal.slug, "name": personal.name}
                    personal.slug = locked.handle
                    # The personal organization is named after its owner unless they renamed it themselves.
                    if personal.name in (before["name"], before["handle"]):
                        personal.name = locked.name or locked.handle
                    org_diff = changes(personal, org_before, ["slug", "name"])
                    if org_diff:
                        personal.save(update_fields=["slug", "name", "updated_at"])
                        record_event(
                            action="organization.updated",
                            organization=personal,
                            actor=by,
                            target=personal,
                            diff=org_diff,
                            metadata={"reason": "handle renamed" if "handle" in diff else "name changed"},
                        )
        except IntegrityError:
            # Someone took the handle between the check and the write.
            raise field_error(
                "handle", f"“{locked.handle}” is already taken by a user or an organization.", code="taken"
            ) from None
        record_event(action="user.updated", organization=personal, actor=by, target=locked, diff=diff)
    user.name, user.handle = locked.name, locked.handle
    return locked


def replace_email_address(*, user: User, old_email: str, by: Any) -> None:
    """After an operator changed ``user.email``: the old address stops being a login, the new one is primary.

    allauth signs people in by any of their EmailAddress rows, so the old row must go. The new address keeps
    its verified flag if the user already had it, else it is unverified and allauth asks for verification at
    the next sign-in.
    """
    from allauth.account.models import EmailAddress

    with transaction.atomic():
        EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()
        address = EmailAddress.objects.filter(user=user, email__iexact=user.email).first()
        if address is None:
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
        elif not address.primary:
            address.primary = True
            address.save(update_fields=["primary"])
        record_event(
            action="user.updated",
            organization=personal_organization_of(user),
            actor=by,
            target=user,
            diff={"email": [old_email, user.email]},
        )
