"""SCIM 2.0 provisioning per organization (RFC 7643 resources, RFC 7644 protocol): docs/admin/scim.md.

An organization's IdP (Okta, Microsoft Entra ID...) provisions it at ``/orgs/<slug>/scim/v2/`` with the
organization's bearer token (``ScimToken``: shown once, kept as an HMAC like API tokens, rotatable, audited).

* A SCIM **User** is a person the IdP provisions into this organization: accounts' ``ExternalIdentity`` with the
  source ``scim:<organization uuid>`` (its ``subject`` is the SCIM id; userName, externalId, names and ``active``
  are its attributes), linked to the portal user with that address. The address must be at one of the
  organization's verified domains, as for SAML. An active user is a member (with the organization's default role
  when they were not one already); ``active: false`` or DELETE **deprovisions**: the membership ends at once (teams,
  tokens bound to the organization), and an account that exists only through this organization (no password, no
  other organization) is deactivated, which ends its sessions and API tokens. The audit trail stays.
* A SCIM **Group** is a team of the organization (``ScimGroup``; its id is the team's uuid); its members are
  SCIM users of the organization.

Why not django-scim2: it keeps one SCIM identity (scim_id, externalId, userName) on the user model and one global
service provider configuration with Django's own authentication, and deletes users on DELETE. Here a person
belongs to many organizations, each IdP with its own ids for them, each organization with its own token, and a
DELETE ends a membership, not an account. What is here is small: the resources, a filter parser for the
comparisons IdPs send, and RFC 7644's PATCH operations.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ExternalIdentity, hash_token_secret
from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import Membership, Organization, SamlSettings, ScimGroup, ScimToken, Team
from apps.organizations.services import (
    TEAM_SLUG_PATTERN,
    _lock_organization,
    _owner_count,
    _remove_from_teams,
    _require_role,
    _revoke_bound_tokens,
)
from apps.organizations.sso import verified_domain_of

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
TOKEN_PREFIX = "gpuxscim_"
MAX_COUNT = 200


class ScimError(Exception):
    """An RFC 7644 error: ``status``, ``scim_type`` (invalidFilter, invalidValue, uniqueness...) and ``detail``."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def source_of(organization: Organization) -> str:
    return f"scim:{organization.uuid}"


def label_of(token: ScimToken) -> str:
    return f"SCIM token {token.prefix}…"


# -- tokens ---------------------------------------------------------------------------------------------------
@transaction.atomic
def create_scim_token(*, actor: Any, organization: Organization) -> tuple[ScimToken, str]:
    """A new SCIM token for the organization (admins and owners); the active one, if any, is revoked (rotation).
    Returns the token and its secret, shown once."""
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.ADMIN, "manage the SCIM token")
    for old in ScimToken.objects.filter(organization=organization, revoked_at__isnull=True):
        _revoke(old, actor, reason="rotated")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ScimToken.objects.create(
        organization=organization, prefix=prefix, secret_hash=hash_token_secret(raw), created_by=actor
    )
    record_event(action="scim.token_created", organization=organization, actor=actor, target=token)
    return token, raw


def _revoke(token: ScimToken, actor: Any, *, reason: str) -> None:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record_event(
        action="scim.token_revoked",
        organization=token.organization,
        actor=actor,
        target=token,
        metadata={"reason": reason},
    )


@transaction.atomic
def revoke_scim_token(*, actor: Any, token: ScimToken) -> None:
    organization = _lock_organization(token.organization)
    _require_role(actor, organization, Role.ADMIN, "manage the SCIM token")
    if token.revoked_at is None:
        _revoke(token, actor, reason="revoked")


def authenticate(header: str, organization_slug: str) -> ScimToken:
    """The token an ``Authorization: Bearer`` header carries, for the organization named by the URL: 401 when it
    is missing or not valid, 404 when it is another organization's (its resources do not exist for it)."""
    parts = (header or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].startswith(TOKEN_PREFIX):
        raise ScimError(401, "Authenticate with the organization's SCIM token: Authorization: Bearer gpuxscim_….")
    raw = parts[1]
    prefix = raw[len(TOKEN_PREFIX) :].split("_", 1)[0]
    token = ScimToken.objects.select_related("organization").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(raw)):
        raise ScimError(401, "This SCIM token is not valid.")
    if token.revoked_at is not None:
        raise ScimError(401, "This SCIM token has been revoked: make a new one on the organization's SCIM page.")
    if token.organization.slug != organization_slug:
        raise ScimError(404, "No such organization for this token.")
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# -- filters --------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')
STRING_OPS = {"eq", "ne", "co", "sw", "ew"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ScimError(400, f"Cannot read the filter at “{text[position:]}”.", "invalidFilter")
        opening, closing, quoted, word = match.groups()
        if opening:
            tokens.append(("(", "("))
        elif closing:
            tokens.append((")", ")"))
        elif quoted is not None:
            tokens.append(("string", re.sub(r"\\(.)", r"\1", quoted)))
        else:
            tokens.append(("word", word))
        position = match.end()
    return tokens


class FilterParser:
    """RFC 7644 §3.4.2.2 filters: ``attr op value``, ``attr pr``, ``and``, ``or``, ``not (...)`` and parentheses,
    with eq, ne, co, sw, ew and pr; ``fields`` maps each filterable attribute (lower case) to a function
    ``(op, value) -> Q``."""

    def __init__(self, text: str, fields: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.fields = fields

    def parse(self) -> Q:
        if not self.tokens:
            raise ScimError(400, "The filter is empty.", "invalidFilter")
        q = self._or()
        if self.position != len(self.tokens):
            raise ScimError(400, f"Unexpected “{self.tokens[self.position][1]}” in the filter.", "invalidFilter")
        return q

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ScimError(400, "The filter ends too early.", "invalidFilter")
        self.position += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.position += 1
            return True
        return False

    def _or(self) -> Q:
        q = self._and()
        while self._keyword("or"):
            q |= self._and()
        return q

    def _and(self) -> Q:
        q = self._atom()
        while self._keyword("and"):
            q &= self._atom()
        return q

    def _atom(self) -> Q:
        if self._keyword("not"):
            return ~self._group()
        token = self._peek()
        if token and token[0] == "(":
            return self._group()
        kind, attribute = self._take()
        if kind != "word":
            raise ScimError(400, f"Expected an attribute name, found “{attribute}”.", "invalidFilter")
        field = self.fields.get(attribute.lower())
        if field is None:
            raise ScimError(400, f"Filtering on “{attribute}” is not supported.", "invalidFilter")
        _kind, op = self._take()
        op = op.lower()
        if op == "pr":
            return field("pr", None)
        if op not in STRING_OPS:
            raise ScimError(
                400, f"The operator “{op}” is not supported (use eq, ne, co, sw, ew or pr).", "invalidFilter"
            )
        kind, value = self._take()
        if kind == "word":
            value = {"true": True, "false": False, "null": None}.get(value.lower(), value)
        elif kind != "string":
            raise ScimError(400, "Expected a value after the operator.", "invalidFilter")
        if op == "ne":
            return ~field("eq", value)
        return field(op, value)

    def _group(self) -> Q:
        kind, _ = self._take()
        if kind != "(":
            raise ScimError(400, "Expected “(”.", "invalidFilter")
        q = self._or()
        kind, _ = self._take()
        if kind != ")":
            raise ScimError(400, "Expected “)”.", "invalidFilter")
        return q


def _text(path: str, *, case_exact: bool = False):
    lookups = {"eq": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}

    def build(op: str, value: Any) -> Q:
        if op == "pr":
            return Q(**{f"{path}__isnull": False}) & ~Q(**{path: ""})
        if isinstance(value, bool) or value is None:
            return Q(**{path: value}) if op == "eq" else Q(pk__in=[])
        lookup = lookups[op]
        return Q(**{f"{path}__{lookup if case_exact else 'i' + lookup}": str(value)})

    return build


def _boolean(path: str):
    def build(op: str, value: Any) -> Q:
        if op == "pr":
            return Q(**{f"{path}__isnull": False})
        if op != "eq" or not isinstance(value, bool):
            raise ScimError(400, "“active” compares only with eq true or eq false.", "invalidFilter")
        return Q(**{path: value})

    return build


USER_FILTERS = {
    "id": _text("subject", case_exact=True),
    "username": _text("attributes__userName"),
    "externalid": _text("attributes__externalId", case_exact=True),
    "displayname": _text("attributes__displayName"),
    "name.givenname": _text("attributes__givenName"),
    "name.familyname": _text("attributes__familyName"),
    "emails": _text("email"),
    "emails.value": _text("email"),
    "active": _boolean("attributes__active"),
}
GROUP_FILTERS = {
    "id": _text("team__uuid", case_exact=True),
    "displayname": _text("display_name"),
    "externalid": _text("external_id", case_exact=True),
    "members.value": _text("team__group__user__external_identities__subject", case_exact=True),
    "members": _text("team__group__user__external_identities__subject", case_exact=True),
}


def filtered(queryset: QuerySet, text: str | None, fields: dict[str, Any]) -> QuerySet:
    if not text:
        return queryset
    return queryset.filter(FilterParser(text, fields).parse()).distinct()


# -- users ----------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """One SCIM request: the organization, the token, and the base URL for ``meta.location``."""

    organization: Organization
    token: ScimToken
    base_url: str

    @property
    def source(self) -> str:
        return source_of(self.organization)

    @property
    def label(self) -> str:
        return label_of(self.token)


def users(ctx: Context) -> QuerySet:
    return ExternalIdentity.objects.filter(source=ctx.source).select_related("user").order_by("created_at", "pk")


def user_or_404(ctx: Context, scim_id: str) -> ExternalIdentity:
    identity = users(ctx).filter(subject=scim_id).first()
    if identity is None:
        raise ScimError(404, f"No user {scim_id} in this organization.")
    return identity


def user_resource(ctx: Context, identity: ExternalIdentity) -> dict[str, Any]:
    attrs = identity.attributes or {}
    teams = Team.objects.filter(organization=ctx.organization, group__user=identity.user, scim__isnull=False)
    name = {k: attrs[k] for k in ("givenName", "familyName") if attrs.get(k)}
    if name:
        name["formatted"] = " ".join(name[k] for k in ("givenName", "familyName") if k in name)
    resource = {
        "schemas": [USER_SCHEMA],
        "id": identity.subject,
        "userName": attrs.get("userName", identity.email),
        "displayName": attrs.get("displayName") or identity.user.name or identity.user.handle,
        "emails": [{"value": identity.email, "primary": True, "type": "work"}],
        "active": bool(attrs.get("active", True)),
        "groups": [{"value": str(team.uuid), "display": team.name} for team in teams.order_by("slug")],
        "meta": {
            "resourceType": "User",
            "created": identity.created_at.isoformat(),
            "lastModified": identity.last_seen_at.isoformat(),
            "location": f"{ctx.base_url}/Users/{identity.subject}",
        },
    }
    if name:
        resource["name"] = name
    if attrs.get("externalId"):
        resource["externalId"] = attrs["externalId"]
    return resource


def _as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # Entra ID sends "False"
        return value.lower() == "true"
    raise ScimError(400, f"“{field}” must be true or false.", "invalidValue")


def _as_text(value: Any, field: str, *, max_length: int = 254) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ScimError(400, f"“{field}” must be a string.", "invalidValue")
    if len(value) > max_length:
        raise ScimError(400, f"“{field}” has more than {max_length} characters.", "invalidValue")
    return value.strip()


def _user_attributes(payload: dict[str, Any]) -> dict[str, Any]:
    """The attributes a User payload sets (full or partial), checked; the address it gives, under "email"."""
    if not isinstance(payload, dict):
        raise ScimError(400, "A User must be a JSON object.", "invalidSyntax")
    attrs: dict[str, Any] = {}
    if "userName" in payload:
        attrs["userName"] = _as_text(payload["userName"], "userName")
        if not attrs["userName"]:
            raise ScimError(400, "“userName” may not be empty.", "invalidValue")
    if "externalId" in payload:
        attrs["externalId"] = _as_text(payload["externalId"], "externalId", max_length=1024)
    if "displayName" in payload:
        attrs["displayName"] = _as_text(payload["displayName"], "displayName", max_length=150)
    if "name" in payload:
        name = payload["name"] or {}
        if not isinstance(name, dict):
            raise ScimError(400, "“name” must be an object.", "invalidValue")
        for key in ("givenName", "familyName"):
            if key in name:
                attrs[key] = _as_text(name[key], f"name.{key}", max_length=150)
    if "active" in payload:
        attrs["active"] = _as_bool(payload["active"], "active")
    if "emails" in payload:
        emails = payload["emails"] or []
        if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
            raise ScimError(400, "“emails” must be a list of objects with a value.", "invalidValue")
        chosen = next((e for e in emails if e.get("primary") in (True, "true", "True")), emails[0] if emails else None)
        if chosen is not None:
            attrs["email"] = _as_text(chosen.get("value"), "emails.value").lower()
    return attrs


def _email_of(attrs: dict[str, Any], identity: ExternalIdentity | None = None) -> str:
    email = attrs.get("email") or (attrs.get("userName") if "@" in attrs.get("userName", "") else "")
    if not email and identity is not None:
        email = identity.email
    return (email or "").lower()


def _default_role(organization: Organization) -> Role:
    saml = SamlSettings.objects.filter(organization=organization).first()
    return Role(saml.default_role) if saml and saml.default_role is not None else Role.MEMBER


def _event(ctx: Context, action: str, target: Any, **kwargs: Any) -> None:
    record_event(action=action, organization=ctx.organization, actor_label=ctx.label, target=target, **kwargs)


def _grant_membership(ctx: Context, identity: ExternalIdentity) -> None:
    user = identity.user
    if identity.deactivated_at is not None:
        type(user).objects.filter(pk=user.pk).update(is_active=True)
        user.is_active = True
        identity.deactivated_at = None
        identity.save(update_fields=["deactivated_at"])
        record_event(action="user.reactivated", actor_label=ctx.label, target=user, metadata={"source": ctx.source})
    if not user.is_active:
        raise ScimError(
            400, f"{identity.email}'s account is disabled in the portal; an operator must enable it.", "invalidValue"
        )
    role = _default_role(ctx.organization)
    membership, created = Membership.objects.get_or_create(
        organization=ctx.organization, user=user, defaults={"role": role}
    )
    if created:
        _event(
            ctx,
            "member.added",
            membership,
            diff={"role": [None, role.label]},
            metadata={"user": user.handle, "source": ctx.source},
        )


def deprovision(ctx: Context, identity: ExternalIdentity, *, reason: str) -> None:
    """End the person's membership at once (teams, bound tokens); deactivate an account that exists only through
    this organization. The last owner is never removed by an IdP."""
    user = identity.user
    membership = Membership.objects.select_for_update().filter(organization=ctx.organization, user=user).first()
    if membership is not None:
        if membership.role == Role.OWNER and _owner_count(ctx.organization) <= 1:
            raise ScimError(
                400, f"{user.handle} is the last owner of “{ctx.organization.slug}” and stays.", "mutability"
            )
        teams = _remove_from_teams(ctx.organization, user)
        _event(
            ctx, "member.removed", membership,
            diff={"role": [Role(membership.role).label, None]},
            metadata={"user": user.handle, "teams": teams, "source": ctx.source, "reason": reason},
        )  # fmt: skip
        membership.delete()
        _revoke_bound_tokens(organization=ctx.organization, user=user, by=None)
    others = Membership.objects.filter(user=user, organization__is_personal=False).exists()
    if user.is_active and not others and not user.has_usable_password():
        type(user).objects.filter(pk=user.pk).update(is_active=False)
        from apps.core.shortlived import invalidate_on_commit

        invalidate_on_commit()  # cached token and access decisions (apps/core/shortlived.py)
        user.is_active = False
        identity.deactivated_at = timezone.now()
        identity.save(update_fields=["deactivated_at"])
        record_event(
            action="user.deactivated",
            actor_label=ctx.label,
            target=user,
            metadata={"source": ctx.source, "reason": reason, "organization": ctx.organization.slug},
        )


def _apply_user_attributes(ctx: Context, identity: ExternalIdentity, attrs: dict[str, Any], *, replace: bool) -> None:
    """Store ``attrs`` on the identity (all of them for PUT), then follow ``active``."""
    before = dict(identity.attributes or {})
    new = {} if replace else dict(before)
    new.update({k: v for k, v in attrs.items() if k != "email"})
    new.setdefault("userName", before.get("userName", identity.email))
    new.setdefault("active", True)
    if replace and "active" not in attrs:
        new["active"] = True
    user_name = new["userName"]
    if users(ctx).filter(attributes__userName__iexact=user_name).exclude(pk=identity.pk).exists():
        raise ScimError(409, f"Another user of this organization has the userName {user_name}.", "uniqueness")
    email = _email_of(attrs, identity)
    if email != identity.email:
        if not verified_domain_of(ctx.organization, email):
            raise ScimError(400, f"{email} is not at a domain this organization has verified.", "invalidValue")
        identity.email = email
    identity.attributes = new
    identity.last_seen_at = timezone.now()
    identity.save(update_fields=["attributes", "email", "last_seen_at"])
    name = new.get("displayName") or " ".join(filter(None, [new.get("givenName"), new.get("familyName")]))
    if name and name != identity.user.name and not identity.user.has_usable_password():
        type(identity.user).objects.filter(pk=identity.user_id).update(name=name[:150])
    diff = {k: [before.get(k), new.get(k)] for k in set(before) | set(new) if before.get(k) != new.get(k)}
    if diff:
        _event(ctx, "scim.user_updated", identity.user, diff=diff, metadata={"scim_id": identity.subject})
    if new["active"] and not before.get("active", True):
        _grant_membership(ctx, identity)
    elif not new["active"] and before.get("active", True):
        deprovision(ctx, identity, reason="active set to false")


@transaction.atomic
def create_user(ctx: Context, payload: Any) -> ExternalIdentity:
    from apps.accounts.provisioning import ExternalProfile, ProvisioningRefused, provision_user

    attrs = _user_attributes(payload)
    if not attrs.get("userName"):
        raise ScimError(400, "“userName” is required.", "invalidValue")
    _lock_organization(ctx.organization)
    if users(ctx).filter(attributes__userName__iexact=attrs["userName"]).exists():
        raise ScimError(409, f"A user with the userName {attrs['userName']} exists already.", "uniqueness")
    email = _email_of(attrs)
    if not email or "@" not in email:
        raise ScimError(400, "Give the person's e-mail address (emails, or a userName that is one).", "invalidValue")
    if not verified_domain_of(ctx.organization, email):
        raise ScimError(
            400, f"{email} is not at a domain “{ctx.organization.slug}” has verified (verify it first).", "invalidValue"
        )
    subject = str(uuid.uuid4())
    name = attrs.get("displayName") or " ".join(filter(None, [attrs.get("givenName"), attrs.get("familyName")]))
    try:
        user, created = provision_user(
            ExternalProfile(source=ctx.source, subject=subject, email=email, email_verified=True, name=name)
        )
    except ProvisioningRefused as exc:
        raise ScimError(400, str(exc), "invalidValue") from exc
    if ExternalIdentity.objects.filter(source=ctx.source, user=user).exclude(subject=subject).exists():
        raise ScimError(409, f"{email} is provisioned already under another userName.", "uniqueness")
    identity = ExternalIdentity.objects.get(source=ctx.source, subject=subject)
    identity.attributes = {k: v for k, v in attrs.items() if k != "email"} | {"active": attrs.get("active", True)}
    identity.save(update_fields=["attributes"])
    _event(
        ctx,
        "scim.user_created",
        user,
        metadata={"scim_id": subject, "userName": attrs["userName"], "new_account": created},
    )
    if identity.attributes["active"]:
        _grant_membership(ctx, identity)
    return identity


@transaction.atomic
def replace_user(ctx: Context, identity: ExternalIdentity, payload: Any) -> ExternalIdentity:
    attrs = _user_attributes(payload)
    if not attrs.get("userName"):
        raise ScimError(400, "“userName” is required.", "invalidValue")
    _lock_organization(ctx.organization)
    _apply_user_attributes(ctx, identity, attrs, replace=True)
    return identity


USER_PATHS = {
    "username": "userName",
    "externalid": "externalId",
    "displayname": "displayName",
    "active": "active",
    "name.givenname": "name.givenName",
    "name.familyname": "name.familyName",
    "emails": "emails",
    'emails[type eq "work"].value': "emails",
}


def _operations(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or PATCH_SCHEMA not in (payload.get("schemas") or []):
        raise ScimError(400, f"A PATCH body is a PatchOp message (schemas: [{PATCH_SCHEMA}]).", "invalidSyntax")
    operations = payload.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "“Operations” must be a non-empty list.", "invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict) or str(operation.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise ScimError(400, "Each operation's “op” is add, replace or remove.", "invalidSyntax")
    return operations


@transaction.atomic
def patch_user(ctx: Context, identity: ExternalIdentity, payload: Any) -> ExternalIdentity:
    attrs: dict[str, Any] = {}
    for operation in _operations(payload):
        op, path, value = operation["op"].lower(), operation.get("path"), operation.get("value")
        if path is None:
            if op == "remove" or not isinstance(value, dict):
                raise ScimError(400, "An operation without a path gives its attributes as an object.", "invalidValue")
            payload_part = dict(value)
        else:
            key = USER_PATHS.get(str(path).lower())
            if key is None:
                raise ScimError(400, f"The path “{path}” is not supported.", "invalidPath")
            if op == "remove":
                if key in ("userName", "active", "emails"):
                    raise ScimError(400, f"“{key}” cannot be removed.", "mutability")
                value = ""
            if key == "emails" and isinstance(value, str):
                value = [{"value": value, "primary": True}]
            payload_part = {"name": {key.split(".", 1)[1]: value}} if key.startswith("name.") else {key: value}
        attrs.update(_user_attributes(payload_part))
    _lock_organization(ctx.organization)
    _apply_user_attributes(ctx, identity, attrs, replace=False)
    return identity


@transaction.atomic
def delete_user(ctx: Context, identity: ExternalIdentity) -> None:
    _lock_organization(ctx.organization)
    deprovision(ctx, identity, reason="deleted")
    _event(ctx, "scim.user_deleted", identity.user, metadata={"scim_id": identity.subject})
    identity.delete()


# -- groups ---------------------------------------------------------------------------------------------------
def groups(ctx: Context) -> QuerySet:
    return (
        ScimGroup.objects.filter(team__organization=ctx.organization)
        .select_related("team__group")
        .order_by("created_at", "pk")
    )


def group_or_404(ctx: Context, scim_id: str) -> ScimGroup:
    try:
        uuid.UUID(str(scim_id))
    except ValueError:
        raise ScimError(404, f"No group {scim_id} in this organization.") from None
    group = groups(ctx).filter(team__uuid=scim_id).first()
    if group is None:
        raise ScimError(404, f"No group {scim_id} in this organization.")
    return group


def group_resource(ctx: Context, group: ScimGroup, *, members: bool = True) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.team.uuid),
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": group.created_at.isoformat(),
            "lastModified": group.updated_at.isoformat(),
            "location": f"{ctx.base_url}/Groups/{group.team.uuid}",
        },
    }
    if group.external_id:
        resource["externalId"] = group.external_id
    if members:
        identities = users(ctx).filter(user__groups=group.team.group_id)
        resource["members"] = [
            {"value": i.subject, "display": (i.attributes or {}).get("userName", i.email), "type": "User"}
            for i in identities
        ]
    return resource


def _team_slug(ctx: Context, display_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")[:40] or "group"
    slug, n = base, 1
    while not TEAM_SLUG_PATTERN.match(slug) or Team.objects.filter(organization=ctx.organization, slug=slug).exists():
        n += 1
        slug = f"{base[:40]}-{n}".strip("-")
        if n > 1000:
            raise ScimError(409, "No free team name for this group.", "uniqueness")
    return slug


def _member_identities(ctx: Context, members: Any) -> list[ExternalIdentity]:
    if members is None:
        return []
    if not isinstance(members, list) or not all(isinstance(m, dict) and m.get("value") for m in members):
        raise ScimError(400, "“members” must be a list of objects with a value (a user's id).", "invalidValue")
    found = []
    for member in members:
        identity = users(ctx).filter(subject=str(member["value"])).first()
        if identity is None:
            raise ScimError(400, f"members: no user {member['value']} in this organization.", "invalidValue")
        found.append(identity)
    return found


def _set_members(ctx: Context, group: ScimGroup, add: list[ExternalIdentity], remove: list[ExternalIdentity]) -> None:
    team = group.team
    for identity in add:
        user = identity.user
        if not Membership.objects.filter(organization=ctx.organization, user=user).exists():
            continue  # a deprovisioned person joins the team again only once active
        if not team.group.user_set.filter(pk=user.pk).exists():
            team.group.user_set.add(user)
            _event(
                ctx,
                "team.member_added",
                team,
                diff={"members": [None, user.handle]},
                metadata={"user": user.handle, "source": ctx.source},
            )
    for identity in remove:
        user = identity.user
        if team.group.user_set.filter(pk=user.pk).exists():
            team.group.user_set.remove(user)
            _event(
                ctx,
                "team.member_removed",
                team,
                diff={"members": [user.handle, None]},
                metadata={"user": user.handle, "source": ctx.source},
            )


def _group_fields(payload: Any) -> tuple[str | None, str | None]:
    if not isinstance(payload, dict):
        raise ScimError(400, "A Group must be a JSON object.", "invalidSyntax")
    name = _as_text(payload["displayName"], "displayName", max_length=100) if "displayName" in payload else None
    external = _as_text(payload["externalId"], "externalId", max_length=1024) if "externalId" in payload else None
    return name, external


@transaction.atomic
def create_group(ctx: Context, payload: Any) -> ScimGroup:
    name, external = _group_fields(payload)
    if not name:
        raise ScimError(400, "“displayName” is required.", "invalidValue")
    members = _member_identities(ctx, payload.get("members"))
    _lock_organization(ctx.organization)
    if groups(ctx).filter(display_name__iexact=name).exists():
        raise ScimError(409, f"A group named {name} exists already.", "uniqueness")
    team_uuid = uuid.uuid4()
    auth_group = Group.objects.create(name=f"team:{team_uuid}")
    team = Team.objects.create(
        uuid=team_uuid, organization=ctx.organization, slug=_team_slug(ctx, name), name=name, group=auth_group
    )
    group = ScimGroup.objects.create(team=team, display_name=name, external_id=external or "")
    _event(
        ctx,
        "team.created",
        team,
        diff={"slug": [None, team.slug], "name": [None, name]},
        metadata={"source": ctx.source},
    )
    _set_members(ctx, group, members, [])
    return group


def _rename(ctx: Context, group: ScimGroup, name: str | None, external: str | None) -> None:
    changes = {}
    if name and name != group.display_name:
        if groups(ctx).filter(display_name__iexact=name).exclude(pk=group.pk).exists():
            raise ScimError(409, f"A group named {name} exists already.", "uniqueness")
        changes["name"] = [group.display_name, name]
        group.display_name = name
        group.team.name = name
        group.team.save(update_fields=["name"])
    if external is not None and external != group.external_id:
        changes["externalId"] = [group.external_id, external]
        group.external_id = external
    if changes:
        group.save()
        _event(ctx, "team.updated", group.team, diff=changes, metadata={"source": ctx.source})


@transaction.atomic
def replace_group(ctx: Context, group: ScimGroup, payload: Any) -> ScimGroup:
    name, external = _group_fields(payload)
    if not name:
        raise ScimError(400, "“displayName” is required.", "invalidValue")
    wanted = _member_identities(ctx, payload.get("members"))
    _lock_organization(ctx.organization)
    _rename(ctx, group, name, external if external is not None else "")
    current = list(users(ctx).filter(user__groups=group.team.group_id))
    wanted_ids = {i.pk for i in wanted}
    _set_members(ctx, group, wanted, [i for i in current if i.pk not in wanted_ids])
    return group


MEMBER_PATH = re.compile(r'^members\[value eq "([^"]+)"\]$', re.I)


@transaction.atomic
def patch_group(ctx: Context, group: ScimGroup, payload: Any) -> ScimGroup:
    operations = _operations(payload)
    _lock_organization(ctx.organization)
    for operation in operations:
        op, path, value = operation["op"].lower(), operation.get("path"), operation.get("value")
        lowered = str(path or "").lower()
        if path is None:
            if not isinstance(value, dict) or op == "remove":
                raise ScimError(400, "An operation without a path gives its attributes as an object.", "invalidValue")
            name, external = _group_fields(value)
            _rename(ctx, group, name, external)
            if "members" in value:
                _set_members(ctx, group, _member_identities(ctx, value["members"]), [])
        elif lowered == "displayname":
            _rename(ctx, group, _as_text(value, "displayName", max_length=100) or None, None)
        elif lowered == "externalid":
            _rename(ctx, group, None, "" if op == "remove" else _as_text(value, "externalId", max_length=1024))
        elif lowered == "members":
            if op == "add":
                _set_members(ctx, group, _member_identities(ctx, value), [])
            elif op == "remove":
                current = list(users(ctx).filter(user__groups=group.team.group_id))
                gone = current if value is None else _member_identities(ctx, value)
                _set_members(ctx, group, [], gone)
            else:
                wanted = _member_identities(ctx, value)
                wanted_ids = {i.pk for i in wanted}
                current = list(users(ctx).filter(user__groups=group.team.group_id))
                _set_members(ctx, group, wanted, [i for i in current if i.pk not in wanted_ids])
        elif (match := MEMBER_PATH.match(str(path))) and op == "remove":
            _set_members(ctx, group, [], _member_identities(ctx, [{"value": match.group(1)}]))
        else:
            raise ScimError(400, f"The path “{path}” is not supported for {op}.", "invalidPath")
    group.refresh_from_db()
    return group


@transaction.atomic
def delete_group(ctx: Context, group: ScimGroup) -> None:
    _lock_organization(ctx.organization)
    team = group.team
    members = [i.user.handle for i in users(ctx).filter(user__groups=team.group_id)]
    _event(
        ctx, "team.deleted", team, diff={"slug": [team.slug, None]}, metadata={"members": members, "source": ctx.source}
    )
    auth_group = team.group
    team.delete()
    auth_group.delete()


# -- discovery ------------------------------------------------------------------------------------------------
def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": f"{settings.PORTAL_URL.rstrip('/')}/docs/admin/scim.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The organization's SCIM token (Authorization: Bearer gpuxscim_…).",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": kind,
            "name": kind,
            "endpoint": f"/{kind}s",
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{kind}"},
        }
        for kind, schema in (("User", USER_SCHEMA), ("Group", GROUP_SCHEMA))
    ]


def _attribute(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


def schemas(base_url: str) -> list[dict[str, Any]]:
    user = [
        _attribute("userName", required=True, uniqueness="server"),
        _attribute("externalId", caseExact=True),
        _attribute("displayName"),
        _attribute(
            "name",
            "complex",
            subAttributes=[
                _attribute("givenName"),
                _attribute("familyName"),
                _attribute("formatted", mutability="readOnly"),
            ],
        ),
        _attribute(
            "emails",
            "complex",
            multiValued=True,
            subAttributes=[_attribute("value"), _attribute("primary", "boolean"), _attribute("type")],
        ),
        _attribute("active", "boolean"),
        _attribute(
            "groups",
            "complex",
            multiValued=True,
            mutability="readOnly",
            subAttributes=[_attribute("value"), _attribute("display")],
        ),
    ]
    group = [
        _attribute("displayName", required=True),
        _attribute("externalId", caseExact=True),
        _attribute("members", "complex", multiValued=True, subAttributes=[_attribute("value"), _attribute("display")]),
    ]
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": schema,
            "name": name,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{schema}"},
        }
        for schema, name, attributes in ((USER_SCHEMA, "User", user), (GROUP_SCHEMA, "Group", group))
    ]
