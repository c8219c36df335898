"""Signing in with a directory account (LDAP / Active Directory) through the normal sign-in form.

``DirectoryBackend`` is django-auth-ldap's backend with the portal's rules around it (settings: apps.accounts
.ldap_config; the operator's guide: docs/operator/ldap.md):

* it comes after the local backends: a portal password is tried first, the directory only when that fails;
* the person is found by the address they type (the user search), refused when the directory marks the account
  disabled (``LDAP_DISABLED_FILTER``: the linked portal user is deactivated too), then their password is checked
  by binding as them;
* the portal user is found, linked or created by apps.accounts.provisioning (the directory is trusted for its
  e-mail addresses), django-auth-ldap sets the flags of ``LDAP_STAFF_GROUP`` / ``LDAP_SUPERUSER_GROUP``, and the
  person's groups decide their organizations' roles and teams (apps.organizations.group_sync, source ``ldap``);
* a directory that cannot be reached (or searched) is said so on the sign-in form, instead of "wrong password".

Importing this module needs python-ldap; settings add the backend only when it can be imported.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import ldap
from django.conf import settings
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from apps.accounts.adapters import DIRECTORY_PROBLEM
from apps.accounts.provisioning import ExternalProfile, ProvisioningRefused, deactivate_external_user, provision_user
from apps.organizations.group_sync import apply_group_mappings

logger = logging.getLogger(__name__)

SOURCE = "ldap"
# Nothing answers (refused, timed out). A TLS handshake that fails is a CONNECT_ERROR: "not working", not "down".
UNREACHABLE = (ldap.SERVER_DOWN, ldap.TIMEOUT)
UNREACHABLE_MESSAGE = (
    "The directory (LDAP) server cannot be reached, so directory accounts cannot sign in right now. "
    "Accounts with a portal password still can."
)
BROKEN_MESSAGE = (
    "Directory (LDAP) sign-in is not working right now, so directory accounts cannot sign in. Accounts with a "
    "portal password still can; operators can run `manage.py ldap_check` to see why."
)
# Where the sign-in form finds what went wrong with the directory during this request (AccountAdapter reads it).
REQUEST_ATTRIBUTE = DIRECTORY_PROBLEM


def first_value(attrs: Any, name: str) -> Any:
    """The first value of attribute ``name`` in django-auth-ldap's (case-insensitive) attribute dict, or None."""
    if not attrs or not name:
        return None
    values = attrs.get(name) or []
    return values[0] if values else None


def subject_of(ldap_user: Any) -> str:
    """The person's stable identifier: ``LDAP_UID_ATTRIBUTE`` (entryUUID; AD's binary objectGUID as a GUID string),
    else their DN (lower-cased by django-auth-ldap)."""
    value = first_value(ldap_user.attrs, getattr(settings, "LDAP_UID_ATTRIBUTE", ""))
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes_le=value)) if len(value) == 16 else value.hex()
    return str(value) if value else ldap_user.dn


def profile_of(ldap_user: Any, username: str, groups: tuple[str, ...] = ()) -> ExternalProfile:
    attrs = ldap_user.attrs
    email = first_value(attrs, settings.LDAP_EMAIL_ATTRIBUTE) or username
    return ExternalProfile(
        source=SOURCE,
        subject=subject_of(ldap_user),
        email=str(email),
        # The operator's directory is trusted for its e-mail addresses (docs/operator/ldap.md, "Who is who").
        email_verified=True,
        name=str(first_value(attrs, settings.LDAP_NAME_ATTRIBUTE) or ""),
        handle_hints=tuple(str(v) for v in [first_value(attrs, settings.LDAP_HANDLE_ATTRIBUTE)] if v),
        groups=groups,
        attributes={"dn": ldap_user.dn},
    )


def groups_of(ldap_user: Any) -> tuple[str, ...]:
    """The DNs (lower-cased) of the person's groups, nested ones included when the group type follows them."""
    if getattr(settings, "AUTH_LDAP_GROUP_SEARCH", None) is None:
        return ()
    return tuple(sorted(ldap_user.group_dns))


def is_disabled(ldap_user: Any) -> bool:
    """Whether ``LDAP_DISABLED_FILTER`` matches the person's entry (read with the service account)."""
    filterstr = getattr(settings, "LDAP_DISABLED_FILTER", "")
    if not filterstr or ldap_user.dn is None:
        return False
    found = ldap_user.connection.search_s(ldap_user.dn, ldap.SCOPE_BASE, filterstr, ["1.1"])
    return any(dn for dn, _ in found)


def _note_problem(request: Any, message: str) -> None:
    """Keep the first problem of the request: later errors are often that one's echo (a closed connection)."""
    if request is not None and not getattr(request, REQUEST_ATTRIBUTE, None):
        setattr(request, REQUEST_ATTRIBUTE, message)


@receiver(ldap_error, dispatch_uid="accounts.ldap.directory_problem")
def note_directory_error(sender: Any, context: str, user: Any, request: Any = None, exception: Any = None, **kwargs):
    """django-auth-ldap swallowed an LDAP error: keep a message for the sign-in form."""
    logger.warning("LDAP error while %s: %r", context, exception)
    _note_problem(request, UNREACHABLE_MESSAGE if isinstance(exception, UNREACHABLE) else BROKEN_MESSAGE)


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap's backend, provisioning through the portal's services (see the module docstring)."""

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        try:
            if is_disabled(ldap_user):
                deactivate_external_user(
                    source=SOURCE, subject=subject_of(ldap_user), reason="disabled in the directory"
                )
                logger.info("directory account %s is disabled: refused", ldap_user.dn)
                return None
            user = super().authenticate_ldap_user(ldap_user, password)
            if user is None or not user.is_active:
                return None
            groups = groups_of(ldap_user)
        except ProvisioningRefused as exc:
            _note_problem(ldap_user._request, str(exc))
            return None
        except ldap.LDAPError as exc:
            ldap_error.send(type(self), context="authenticate", user=None, request=ldap_user._request, exception=exc)
            return None
        apply_group_mappings(user=user, source=SOURCE, groups=groups)
        return user

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[Any, bool]:
        """The portal user for the directory entry: found, linked or created by apps.accounts.provisioning.

        Never "built": the user exists when this answers, so django-auth-ldap only sets the flags and saves.
        """
        user, _ = provision_user(profile_of(ldap_user, username, groups_of(ldap_user)))
        return user, False

    def get_user(self, user_id: Any) -> Any:
        """A deactivated user's session ends (ModelBackend does the same; django-auth-ldap's would not)."""
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None
