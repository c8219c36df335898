"""An organization's single sign-on settings: its SAML IdP (metadata pasted or fetched), the attributes to read,
IdP groups mapped to roles and teams, enforced SSO, and verified e-mail domains (docs/admin/sso-saml.md).

Services as in ``services.py``: keyword-only, one transaction, the organization's row locked first, the caller's
role checked, one audit event with a diff. SAML settings and group mappings are for admins; requiring SSO is an
owners' setting (it can lock members out), like requiring MFA.

IdP metadata is XML from outside: it is parsed with defusedxml first, so a DOCTYPE, an entity (XXE, "billion
laughs") or an external reference is refused before pysaml2 reads it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import changes, record_event
from apps.core.access import Role
from apps.core.errors import Problems, field_error
from apps.core.outbound import AddressPolicy, UnsafeAddress, pinned_client
from apps.organizations.models import GroupMapping, Organization, SamlSettings, Team, VerifiedDomain
from apps.organizations.services import _UNSET, _lock_organization, _require_role, as_role

MAX_METADATA_BYTES = 1024 * 1024
ATTRIBUTE_MAX_LENGTH = 255
DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def saml_available() -> tuple[bool, str]:
    """Whether SAML can run here (the ``enterprise`` extra and xmlsec1), and if not, why."""
    from apps.accounts.enterprise import saml_capability

    capability = saml_capability()
    return capability.available, capability.reason


# -- IdP metadata ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IdpMetadata:
    """What the portal reads from an IdP's metadata."""

    xml: str
    entity_id: str
    sso_url: str
    fingerprints: tuple[str, ...]


def _refuse_unsafe_xml(xml: str, field: str) -> None:
    import defusedxml.ElementTree
    from defusedxml import DefusedXmlException

    try:
        defusedxml.ElementTree.fromstring(xml.encode(), forbid_dtd=True)
    except DefusedXmlException:
        raise field_error(
            field, "The metadata may not contain a DOCTYPE, entities or external references.", "unsafe_xml"
        ) from None
    except Exception as exc:  # ParseError and friends: not XML at all
        raise field_error(field, f"This is not well-formed XML: {exc}.", "invalid_xml") from None


def parse_idp_metadata(xml: Any, *, field: str = "idp_metadata_xml") -> IdpMetadata:
    """Check an IdP's metadata: one identity provider with an SSO endpoint and a signing certificate.

    A ValidationError naming ``field`` says what is wrong.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise field_error(field, "Paste the identity provider's SAML metadata (XML), or give its URL.", "blank")
    xml = xml.strip()
    if len(xml.encode()) > MAX_METADATA_BYTES:
        raise field_error(field, f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KiB.", "too_large")
    _refuse_unsafe_xml(xml, field)
    available, why = saml_available()
    if not available:
        raise field_error(field, why, "saml_unavailable")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.config import SPConfig
    from saml2.mdstore import MetadataStore

    store = MetadataStore(None, SPConfig())
    try:
        store.load("inline", xml)
    except Exception as exc:
        raise field_error(field, f"This is not SAML metadata pysaml2 can read: {exc}.", "invalid_metadata") from None
    idps = store.identity_providers()
    if len(idps) != 1:
        found = "no identity provider" if not idps else f"{len(idps)} identity providers"
        raise field_error(field, f"The metadata must describe one identity provider; it has {found}.", "no_idp")
    entity_id = idps[0]
    endpoints = []
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        endpoints += list(store.single_sign_on_service(entity_id, binding))
    if not endpoints:
        raise field_error(
            field, "The identity provider has no SingleSignOnService (HTTP-Redirect or HTTP-POST).", "no_sso_endpoint"
        )
    certificates = [cert for _name, cert in store.certs(entity_id, "idpsso", "signing")]
    if not certificates:
        raise field_error(
            field,
            "The identity provider's metadata has no signing certificate: assertions could not be checked.",
            "no_certificate",
        )
    fingerprints = tuple(_fingerprint(cert) for cert in certificates)
    sso_url = endpoints[0]["location"] if isinstance(endpoints[0], dict) else str(endpoints[0])
    return IdpMetadata(xml=xml, entity_id=entity_id, sso_url=sso_url, fingerprints=fingerprints)


def _fingerprint(certificate: str) -> str:
    import base64

    der = base64.b64decode("".join(certificate.split()))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def metadata_url_policy() -> AddressPolicy:
    """Where IdP metadata URLs may point: public addresses, and what the operator allow-lists."""
    return AddressPolicy(
        allowed=tuple(settings.SSO_METADATA_ALLOWED_NETWORKS),
        setting="GPUX_SSO_ALLOWED_NETWORKS",
        purpose="identity-provider metadata URLs",
    )


METADATA_MAX_REDIRECTS = 5


def fetch_idp_metadata(url: Any, *, field: str = "idp_metadata_url") -> str:
    """The XML at ``url``, fetched through ``apps.core.outbound``: every hop (redirects included) vetted by
    ``metadata_url_policy()`` and connected to the vetted address, the body read up to ``MAX_METADATA_BYTES``.
    A ValidationError naming ``field`` for an unsafe URL, a failed fetch or a body too large."""
    url = url.strip() if isinstance(url, str) else ""
    if not url:
        raise field_error(field, "Give the URL of the identity provider's metadata.", "blank")
    policy = metadata_url_policy()
    try:
        with (
            pinned_client(
                policy,
                field=field,
                timeout=settings.SSO_METADATA_TIMEOUT_SECONDS,
                follow_redirects=True,
                max_redirects=METADATA_MAX_REDIRECTS,
                headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise field_error(
                    field, f"The metadata could not be fetched: the server answered {response.status_code}.",
                    "fetch_failed",
                )  # fmt: skip
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_METADATA_BYTES:
                    raise field_error(
                        field, f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KiB.", "too_large"
                    )
    except UnsafeAddress as exc:
        raise field_error(field, exc.message, "unsafe_url") from None
    except httpx.TooManyRedirects:
        raise field_error(
            field, f"The metadata could not be fetched: more than {METADATA_MAX_REDIRECTS} redirects.", "fetch_failed"
        ) from None
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise field_error(field, f"The metadata could not be fetched: {reason}", "fetch_failed") from None
    return bytes(body).decode("utf-8", errors="replace")


# -- SAML settings --------------------------------------------------------------------------------------------
SAML_FIELDS = (
    "enabled",
    "idp_metadata_url",
    "idp_entity_id",
    "email_attribute",
    "name_attribute",
    "groups_attribute",
    "default_role",
    "allow_idp_initiated",
)


def saml_settings_of(organization: Organization) -> SamlSettings:
    """The organization's SAML settings (an unsaved, disabled row when it has none yet)."""
    try:
        return organization.saml
    except SamlSettings.DoesNotExist:
        return SamlSettings(organization=organization)


def _clean_attribute(value: Any, field: str, problems: Problems, *, required: bool) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if required and not value:
        problems.add(field, "Name the attribute that carries this (e.g. “email”).", "blank")
    elif len(value) > ATTRIBUTE_MAX_LENGTH:
        problems.add(field, f"At most {ATTRIBUTE_MAX_LENGTH} characters.", "max_length")
    return value


@transaction.atomic
def update_saml_settings(
    *,
    actor: Any,
    organization: Organization,
    idp_metadata_xml: str = _UNSET,
    idp_metadata_url: str = _UNSET,
    enabled: bool = _UNSET,
    email_attribute: str = _UNSET,
    name_attribute: str = _UNSET,
    groups_attribute: str = _UNSET,
    default_role: Role | int | str | None = _UNSET,
    allow_idp_initiated: bool = _UNSET,
) -> SamlSettings:
    """Change the organization's SAML settings (admins and owners). Arguments left out stay as they are.

    New metadata is checked (``parse_idp_metadata``); a metadata URL is fetched through the SSRF guard when given
    without XML. Enabling needs usable metadata. Disabling SAML also stops requiring SSO.
    """
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.ADMIN, "change the organization's single sign-on")
    if organization.is_personal:
        raise field_error(
            "organization",
            "A personal organization has no single sign-on: create an organization.",
            "personal_organization",
        )
    saml = saml_settings_of(organization)
    before = {name: getattr(saml, name) for name in SAML_FIELDS}
    before_fingerprints = list(saml.idp_certificate_fingerprints or [])
    problems = Problems()
    metadata: IdpMetadata | None = None
    if idp_metadata_url is not _UNSET:
        saml.idp_metadata_url = idp_metadata_url.strip() if isinstance(idp_metadata_url, str) else ""
    xml = idp_metadata_xml.strip() if isinstance(idp_metadata_xml, str) else ""
    try:
        if xml:
            metadata = parse_idp_metadata(xml)
        elif idp_metadata_url is not _UNSET and saml.idp_metadata_url:
            metadata = parse_idp_metadata(fetch_idp_metadata(saml.idp_metadata_url), field="idp_metadata_url")
            saml.metadata_fetched_at = timezone.now()
    except ValidationError as exc:
        problems.add_error(exc)
    if metadata is not None:
        saml.idp_metadata_xml = metadata.xml
        saml.idp_entity_id = metadata.entity_id
        saml.idp_sso_url = metadata.sso_url
        saml.idp_certificate_fingerprints = list(metadata.fingerprints)
    if email_attribute is not _UNSET:
        saml.email_attribute = _clean_attribute(email_attribute, "email_attribute", problems, required=True)
    if name_attribute is not _UNSET:
        saml.name_attribute = _clean_attribute(name_attribute, "name_attribute", problems, required=False)
    if groups_attribute is not _UNSET:
        saml.groups_attribute = _clean_attribute(groups_attribute, "groups_attribute", problems, required=False)
    if default_role is not _UNSET:
        if default_role in (None, ""):
            saml.default_role = None
        else:
            try:
                role = as_role(default_role, field="default_role")
            except ValidationError as exc:
                problems.add_error(exc)
            else:
                if role >= Role.OWNER:
                    problems.add(
                        "default_role", "Owners are appointed in the portal, never by the IdP.", "invalid_role"
                    )
                saml.default_role = role
    if allow_idp_initiated is not _UNSET:
        if not isinstance(allow_idp_initiated, bool):
            problems.add("allow_idp_initiated", "Must be true or false.", "invalid")
        saml.allow_idp_initiated = allow_idp_initiated
    if enabled is not _UNSET:
        if not isinstance(enabled, bool):
            problems.add("enabled", "Must be true or false.", "invalid")
        elif (
            enabled and not (saml.idp_metadata_xml and saml.idp_entity_id) and "idp_metadata_xml" not in problems.errors
        ):
            problems.add("enabled", "Give the identity provider's metadata before enabling SAML.", "no_metadata")
        saml.enabled = enabled is True
    problems.raise_if_any()
    diff = changes(saml, before, list(SAML_FIELDS))
    if list(saml.idp_certificate_fingerprints or []) != before_fingerprints:
        diff["idp_certificate_fingerprints"] = [before_fingerprints, list(saml.idp_certificate_fingerprints)]
    if diff or saml.pk is None:
        saml.save()
        record_event(action="sso.saml_updated", organization=organization, actor=actor, target=organization, diff=diff)
    if not saml.enabled and organization.require_sso:
        organization.require_sso = False
        organization.save(update_fields=["require_sso", "updated_at"])
        record_event(
            action="organization.updated",
            organization=organization,
            actor=actor,
            target=organization,
            diff={"require_sso": [True, False]},
            metadata={"reason": "SAML was disabled"},
        )
    return saml


@transaction.atomic
def set_require_sso(*, actor: Any, organization: Organization, require_sso: bool) -> Organization:
    """Require (or stop requiring) that members reach the organization through its IdP (owners only).

    Requiring it needs SAML enabled with usable metadata; the owner who turns it on keeps a break-glass local
    sign-in with two-factor authentication, so they must have an authenticator.
    """
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.OWNER, "require single sign-on")
    if not isinstance(require_sso, bool):
        raise field_error("require_sso", "Must be true or false.")
    if require_sso and not saml_settings_of(organization).is_usable:
        raise field_error(
            "require_sso", "Set up and enable SAML first: members could not sign in otherwise.", "saml_not_enabled"
        )
    if require_sso:
        from allauth.mfa.utils import is_mfa_enabled

        if not is_mfa_enabled(actor):
            raise field_error(
                "require_sso",
                "Set up two-factor authentication first: owners keep a local sign-in only with it (break-glass).",
                "mfa_required",
            )
    if organization.require_sso != require_sso:
        organization.require_sso = require_sso
        organization.save(update_fields=["require_sso", "updated_at"])
        record_event(
            action="organization.updated",
            organization=organization,
            actor=actor,
            target=organization,
            diff={"require_sso": [not require_sso, require_sso]},
        )
    return organization


# -- IdP groups → roles and teams ----------------------------------------------------------------------------
@transaction.atomic
def set_group_mapping(
    *, actor: Any, organization: Organization, group: Any, role: Role | int | str, team: Team | None = None
) -> GroupMapping:
    """Map a group of the organization's SAML IdP onto a role and, optionally, a team (owners: GroupMapping's
    policy, a mapping may grant any role). The same group and team mapped again has its role replaced."""
    from apps.organizations.provisioning import saml_source

    organization = _lock_organization(organization)
    _require_role(actor, organization, GroupMapping.access.role_for("change"), "map identity-provider groups")
    problems = Problems()
    name = group.strip() if isinstance(group, str) else ""
    if not name:
        problems.add("group", "Name the group as the identity provider sends it.", "blank")
    elif len(name) > 500:
        problems.add("group", "At most 500 characters.", "max_length")
    new_role = None
    try:
        new_role = as_role(role)
    except ValidationError as exc:
        problems.add_error(exc)
    if team is not None and team.organization_id != organization.pk:
        problems.add("team", "That team is not one of this organization's.", "invalid")
    problems.raise_if_any()
    source = saml_source(organization)
    mapping = GroupMapping.objects.filter(
        source=source, organization=organization, group__iexact=name, team=team
    ).first()
    old = Role(mapping.role).label if mapping else None
    if mapping is None:
        mapping = GroupMapping(source=source, organization=organization, group=name, team=team)
    mapping.role = new_role
    mapping.save()
    record_event(
        action="sso.group_mapping_set",
        organization=organization,
        actor=actor,
        target=mapping,
        diff={"role": [old, new_role.label]},
        metadata={"group": name, "team": team.slug if team else None, "source": source},
    )
    return mapping


@transaction.atomic
def delete_group_mapping(*, actor: Any, mapping: GroupMapping) -> None:
    organization = _lock_organization(mapping.organization)
    _require_role(actor, organization, GroupMapping.access.role_for("delete"), "map identity-provider groups")
    record_event(
        action="sso.group_mapping_deleted",
        organization=organization,
        actor=actor,
        target=mapping,
        metadata={"group": mapping.group, "team": mapping.team.slug if mapping.team_id else None},
    )
    mapping.delete()


# -- verified e-mail domains ----------------------------------------------------------------------------------
DNS_TXT_PREFIX = "gpux-portal-verification="


def clean_domain(value: Any, *, field: str = "domain") -> str:
    domain = value.strip().lower().rstrip(".") if isinstance(value, str) else ""
    if domain.startswith("@"):
        domain = domain[1:]
    try:
        domain = domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        domain = ""
    if not DOMAIN_PATTERN.match(domain):
        raise field_error(field, "Enter a domain name such as “example.com”.", "invalid_domain")
    return domain


@transaction.atomic
def claim_domain(*, actor: Any, organization: Organization, domain: Any) -> VerifiedDomain:
    """Start verifying an e-mail domain for the organization (admins and owners): returns the claim with the
    token to publish as a DNS TXT record (``gpux-portal-verification=<token>``)."""
    domain = clean_domain(domain)
    organization = _lock_organization(organization)
    _require_role(actor, organization, Role.ADMIN, "verify domains")
    if organization.is_personal:
        raise field_error("domain", "A personal organization cannot claim a domain.", "personal_organization")
    if (
        VerifiedDomain.objects.filter(domain=domain, verified_at__isnull=False)
        .exclude(organization=organization)
        .exists()
    ):
        raise field_error("domain", f"{domain} is already verified by another organization.", "taken")
    claim, created = VerifiedDomain.objects.get_or_create(
        organization=organization, domain=domain, defaults={"token": secrets.token_hex(16)}
    )
    if not created:
        raise field_error("domain", f"{domain} is already claimed by this organization.", "already_claimed")
    record_event(
        action="sso.domain_claimed",
        organization=organization,
        actor=actor,
        target=claim,
        diff={"domain": [None, domain]},
    )
    return claim


def dns_txt_records(name: str) -> list[str]:
    """The TXT records of ``name`` through the system's resolver (dnspython). Tests inject their own resolver."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=settings.SSO_DNS_TIMEOUT_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise field_error(
            "domain", f"The DNS lookup of {name} failed: {exc.__class__.__name__}.", "dns_failed"
        ) from None
    return [b"".join(record.strings).decode("utf-8", errors="replace") for record in answer]


def configured_resolver():
    """``SSO_DNS_TXT_RESOLVER`` (a dotted path to ``name -> [TXT strings]``) when the operator names one, else DNS."""
    from django.utils.module_loading import import_string

    path = getattr(settings, "SSO_DNS_TXT_RESOLVER", None)
    return import_string(path) if path else dns_txt_records


@transaction.atomic
def verify_domain_by_dns(*, actor: Any, claim: VerifiedDomain, resolver=None) -> VerifiedDomain:
    """Look for ``gpux-portal-verification=<token>`` in the TXT records of the domain (or of
    ``_gpux-portal.<domain>``); found, the domain is verified."""
    organization = _lock_organization(claim.organization)
    _require_role(actor, organization, Role.ADMIN, "verify domains")
    claim = VerifiedDomain.objects.select_for_update().get(pk=claim.pk)
    if claim.is_verified:
        return claim
    lookup = resolver or configured_resolver()
    expected = f"{DNS_TXT_PREFIX}{claim.token}"
    records = [*lookup(claim.domain), *lookup(f"_gpux-portal.{claim.domain}")]
    if expected not in {record.strip() for record in records}:
        raise field_error(
            "domain",
            f"No TXT record “{expected}” was found at {claim.domain}: add it at your DNS provider, wait for it to "
            "propagate, and try again.",
            "txt_record_missing",
        )
    return _mark_verified(claim, actor=actor, method=VerifiedDomain.Method.DNS)


def _mark_verified(claim: VerifiedDomain, *, actor: Any, method: str) -> VerifiedDomain:
    if VerifiedDomain.objects.filter(domain=claim.domain, verified_at__isnull=False).exclude(pk=claim.pk).exists():
        raise field_error("domain", f"{claim.domain} is already verified by another organization.", "taken")
    claim.verified_at = timezone.now()
    claim.method = method
    claim.save(update_fields=["verified_at", "method"])
    record_event(
        action="sso.domain_verified",
        organization=claim.organization,
        actor=actor,
        target=claim,
        diff={"verified": [False, True]},
        metadata={"domain": claim.domain, "method": method},
    )
    return claim


def domain_email_link_token(claim: VerifiedDomain, address: str) -> str:
    """A signed token for the link e-mailed to ``address`` (at the domain); it proves that someone reading that
    mailbox followed it."""
    from django.core import signing

    return signing.dumps({"claim": str(claim.uuid), "address": address, "token": claim.token}, salt="sso.domain")


@transaction.atomic
def send_domain_verification_email(*, actor: Any, claim: VerifiedDomain, address: Any) -> str:
    """E-mail a verification link to an address at the claimed domain (admins and owners): following it
    verifies the domain. Returns the link."""
    from django.core.mail import send_mail

    from apps.organizations.services import normalize_email

    organization = _lock_organization(claim.organization)
    _require_role(actor, organization, Role.ADMIN, "verify domains")
    address = normalize_email(address)
    if address.rsplit("@", 1)[1] != claim.domain:
        raise field_error("email", f"Give an address at {claim.domain}.", "wrong_domain")
    link = f"{settings.PORTAL_URL.rstrip('/')}/sso/domains/verify/{domain_email_link_token(claim, address)}/"
    send_mail(
        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Verify {claim.domain} for {organization.name}",
        f"{actor.get_full_name()} asked to verify that {organization.name} ({organization.slug}) controls the domain "
        f"{claim.domain}. If that is right, open this link:\n\n{link}\n\nIf not, ignore this message.",
        None,
        [address],
    )
    record_event(
        action="sso.domain_email_sent",
        organization=organization,
        actor=actor,
        target=claim,
        metadata={"email": address},
    )
    return link


@transaction.atomic
def verify_domain_by_email_link(*, token: str) -> VerifiedDomain:
    """Follow a verification link: the claim it names is verified (links are valid for 7 days)."""
    from django.core import signing

    try:
        data = signing.loads(token, salt="sso.domain", max_age=7 * 24 * 3600)
    except signing.SignatureExpired:
        raise field_error("token", "This verification link has expired: ask for a new one.", "expired") from None
    except signing.BadSignature:
        raise field_error("token", "This verification link is not valid.", "invalid") from None
    claim = VerifiedDomain.objects.select_for_update().filter(uuid=data.get("claim"), token=data.get("token")).first()
    if claim is None:
        raise field_error("token", "This verification link is no longer valid (the claim was removed).", "invalid")
    if claim.is_verified:
        return claim
    _lock_organization(claim.organization)
    return _mark_verified(claim, actor=None, method=VerifiedDomain.Method.EMAIL)


@transaction.atomic
def delete_domain(*, actor: Any, claim: VerifiedDomain) -> None:
    organization = _lock_organization(claim.organization)
    _require_role(actor, organization, Role.ADMIN, "verify domains")
    record_event(
        action="sso.domain_removed",
        organization=organization,
        actor=actor,
        target=claim,
        diff={"domain": [claim.domain, None]},
    )
    claim.delete()


def organization_for_email(email: str) -> Organization | None:
    """The organization whose verified domain ``email`` is at, with SAML enabled: where sign-in routes it."""
    email = email.strip().lower() if isinstance(email, str) else ""
    if "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1]
    claim = (
        VerifiedDomain.objects.filter(domain=domain, verified_at__isnull=False, organization__saml__enabled=True)
        .select_related("organization")
        .first()
    )
    return claim.organization if claim else None


def verified_domain_of(organization: Organization, email: str) -> bool:
    """Whether ``email`` is at one of the organization's verified domains."""
    if not isinstance(email, str) or "@" not in email:
        return False
    domain = email.strip().lower().rsplit("@", 1)[1]
    return VerifiedDomain.objects.filter(organization=organization, domain=domain, verified_at__isnull=False).exists()
