"""django-auth-ldap's settings, built from the environment (docs/operator/ldap.md lists every variable).

``gpux_portal/settings.py`` calls :func:`ldap_settings` when ``LDAP_SERVER_URI`` is set and python-ldap can be
imported; tests call it with a mapping of their own. Two presets fill in the defaults of the two directory kinds
people run: ``LDAP_PRESET=openldap`` (inetOrgPerson, groupOfNames, ppolicy) and ``LDAP_PRESET=active-directory``
(user, group, sAMAccountName, userAccountControl, nested groups). Any variable set overrides its preset's value.

Only ``ldap`` and ``django_auth_ldap.config`` are imported here (both safe in settings), never Django apps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ldap
from django.core.exceptions import ImproperlyConfigured
from django_auth_ldap import config as ldap_config

# An AD account whose userAccountControl has ACCOUNTDISABLE (2) set; OpenLDAP answers this filter too
# (1.2.840.113556.1.4.803 is integerBitAndMatch there).
AD_DISABLED_FILTER = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
# ppolicy's "locked by an administrator" value (a lockout after failed passwords carries a real time instead).
OPENLDAP_DISABLED_FILTER = "(pwdAccountLockedTime=000001010000Z)"

PRESETS: dict[str, dict[str, str]] = {
    "openldap": {
        "LDAP_USER_SEARCH_FILTER": "(&(objectClass=inetOrgPerson)(mail=%(user)s))",
        "LDAP_GROUP_SEARCH_FILTER": "(objectClass=groupOfNames)",
        "LDAP_GROUP_TYPE": "nested-group-of-names",
        "LDAP_EMAIL_ATTRIBUTE": "mail",
        "LDAP_NAME_ATTRIBUTE": "cn",
        "LDAP_HANDLE_ATTRIBUTE": "uid",
        "LDAP_UID_ATTRIBUTE": "entryUUID",
        "LDAP_DISABLED_FILTER": OPENLDAP_DISABLED_FILTER,
    },
    "active-directory": {
        # People type their e-mail address; AD knows it as mail or as the userPrincipalName.
        "LDAP_USER_SEARCH_FILTER": "(&(objectClass=user)(|(mail=%(user)s)(userPrincipalName=%(user)s)))",
        "LDAP_GROUP_SEARCH_FILTER": "(objectClass=group)",
        "LDAP_GROUP_TYPE": "nested-active-directory",
        "LDAP_EMAIL_ATTRIBUTE": "mail",
        "LDAP_NAME_ATTRIBUTE": "displayName",
        "LDAP_HANDLE_ATTRIBUTE": "sAMAccountName",
        "LDAP_UID_ATTRIBUTE": "objectGUID",
        "LDAP_DISABLED_FILTER": AD_DISABLED_FILTER,
    },
}

GROUP_TYPES: dict[str, Any] = {
    "group-of-names": ldap_config.GroupOfNamesType,
    "nested-group-of-names": ldap_config.NestedGroupOfNamesType,
    "group-of-unique-names": ldap_config.GroupOfUniqueNamesType,
    "nested-group-of-unique-names": ldap_config.NestedGroupOfUniqueNamesType,
    "active-directory": ldap_config.ActiveDirectoryGroupType,
    "nested-active-directory": ldap_config.NestedActiveDirectoryGroupType,
    "posix": ldap_config.PosixGroupType,
}

TLS_REQUIRE_CERT = {
    "demand": ldap.OPT_X_TLS_DEMAND,
    "hard": ldap.OPT_X_TLS_HARD,
    "try": ldap.OPT_X_TLS_TRY,
    "allow": ldap.OPT_X_TLS_ALLOW,
    "never": ldap.OPT_X_TLS_NEVER,
}


class _Env:
    """Reads one variable at a time from ``environ``, falling back to the preset, naming the variable in errors."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        preset = (environ.get("LDAP_PRESET") or "openldap").strip().lower()
        if preset not in PRESETS:
            raise ImproperlyConfigured(f"LDAP_PRESET must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.preset_name = preset
        self.preset = PRESETS[preset]

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return self.preset.get(name, default)
        return value.strip()

    def required(self, name: str, why: str) -> str:
        value = self.get(name)
        if value is None:
            raise ImproperlyConfigured(f"Set {name}: {why}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")

    def number(self, name: str, default: float) -> float:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number of seconds, got {value!r}") from None
        if number <= 0:
            raise ImproperlyConfigured(f"{name} must be more than 0 seconds, got {value!r}")
        return number

    def secret(self, name: str) -> str:
        """``NAME`` or the contents of the file named by ``NAME_FILE`` (a mounted secret)."""
        value = self.environ.get(name)
        if value:
            return value
        path = self.environ.get(f"{name}_FILE")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from exc
        return ""


def _search(base: str, filterstr: str, variable: str, attrlist: list[str] | None = None) -> ldap_config.LDAPSearch:
    if not (filterstr.startswith("(") and filterstr.endswith(")")):
        raise ImproperlyConfigured(f"{variable} must be an LDAP filter in parentheses, got {filterstr!r}")
    return ldap_config.LDAPSearch(base, ldap.SCOPE_SUBTREE, filterstr, attrlist=attrlist)


def _disabled_filter(env: _Env) -> str:
    """The filter that finds disabled accounts ("none": the directory has no such notion)."""
    value = env.get("LDAP_DISABLED_FILTER") or ""
    if value.lower() == "none":
        return ""
    if value and not (value.startswith("(") and value.endswith(")")):
        raise ImproperlyConfigured(f"LDAP_DISABLED_FILTER must be an LDAP filter in parentheses, got {value!r}")
    return value


def ldap_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``AUTH_LDAP_*`` settings of django-auth-ldap and the portal's own ``LDAP_*`` ones, from ``environ``."""
    env = _Env(environ)
    uri = env.required("LDAP_SERVER_URI", "the directory's address, e.g. ldaps://dc1.corp.example")
    timeout = env.number("LDAP_TIMEOUT", 5.0)
    start_tls = env.boolean("LDAP_START_TLS", False)
    require_cert = (env.get("LDAP_TLS_REQUIRE_CERT", "demand") or "demand").lower()
    if require_cert not in TLS_REQUIRE_CERT:
        raise ImproperlyConfigured(f"LDAP_TLS_REQUIRE_CERT must be one of {', '.join(TLS_REQUIRE_CERT)}")

    options: dict[int, Any] = {
        # Active Directory answers searches at the domain root with referrals the portal cannot follow anonymously.
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        ldap.OPT_X_TLS_REQUIRE_CERT: TLS_REQUIRE_CERT[require_cert],
    }
    ca_file = env.get("LDAP_CA_CERT_FILE")
    if ca_file:
        if not Path(ca_file).is_file():
            raise ImproperlyConfigured(f"LDAP_CA_CERT_FILE={ca_file!r} is not a file")
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
    # The TLS options above apply only to a new TLS context, which this makes: it must come last.
    options[ldap.OPT_X_TLS_NEWCTX] = 0

    # The person's stable identifier: it survives renames and moves that change the DN (an operational attribute
    # such as entryUUID is only returned when asked for by name).
    uid_attribute = env.get("LDAP_UID_ATTRIBUTE") or ""
    user_attributes = ["*", uid_attribute] if uid_attribute else None
    user_dn_template = env.get("LDAP_USER_DN_TEMPLATE")
    user_search = None
    if not user_dn_template:
        user_search = _search(
            env.required("LDAP_USER_SEARCH_BASE", "where to look for people, e.g. ou=people,dc=corp,dc=example"),
            env.required("LDAP_USER_SEARCH_FILTER", "how to find a person by the e-mail address they type"),
            "LDAP_USER_SEARCH_FILTER",
            user_attributes,
        )

    group_base = env.get("LDAP_GROUP_SEARCH_BASE")
    group_search = group_type = None
    if group_base:
        group_search = _search(
            group_base, env.get("LDAP_GROUP_SEARCH_FILTER") or "(objectClass=*)", "LDAP_GROUP_SEARCH_FILTER"
        )
        type_name = (env.get("LDAP_GROUP_TYPE") or "").lower()
        if type_name not in GROUP_TYPES:
            raise ImproperlyConfigured(f"LDAP_GROUP_TYPE must be one of {', '.join(GROUP_TYPES)}, got {type_name!r}")
        group_type = GROUP_TYPES[type_name]()

    flags = {}
    for flag, variable in (("is_staff", "LDAP_STAFF_GROUP"), ("is_superuser", "LDAP_SUPERUSER_GROUP")):
        if env.get(variable):
            flags[flag] = env.get(variable)
    needs_groups = [
        v for v in ("LDAP_STAFF_GROUP", "LDAP_SUPERUSER_GROUP", "LDAP_REQUIRE_GROUP", "LDAP_DENY_GROUP") if env.get(v)
    ]
    if needs_groups and group_search is None:
        raise ImproperlyConfigured(f"{', '.join(needs_groups)} need LDAP_GROUP_SEARCH_BASE (where the groups are)")

    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_BIND_DN": env.get("LDAP_BIND_DN") or "",
        "AUTH_LDAP_BIND_PASSWORD": env.secret("LDAP_BIND_PASSWORD"),
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_USER_DN_TEMPLATE": user_dn_template,
        "AUTH_LDAP_USER_SEARCH": user_search,
        "AUTH_LDAP_GROUP_SEARCH": group_search,
        "AUTH_LDAP_GROUP_TYPE": group_type,
        "AUTH_LDAP_REQUIRE_GROUP": env.get("LDAP_REQUIRE_GROUP"),
        "AUTH_LDAP_DENY_GROUP": env.get("LDAP_DENY_GROUP"),
        "AUTH_LDAP_USER_FLAGS_BY_GROUP": flags,
        # The portal copies e-mail, name and handle itself (apps.accounts.provisioning), keeping allauth's
        # e-mail addresses in step; django-auth-ldap only sets the flags above.
        "AUTH_LDAP_USER_ATTR_MAP": {},
        "AUTH_LDAP_USER_ATTRLIST": user_attributes,
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_FIND_GROUP_PERMS": False,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
        "LDAP_ENABLED": True,
        "LDAP_PRESET": env.preset_name,
        "LDAP_EMAIL_ATTRIBUTE": env.get("LDAP_EMAIL_ATTRIBUTE") or "mail",
        "LDAP_NAME_ATTRIBUTE": env.get("LDAP_NAME_ATTRIBUTE") or "cn",
        "LDAP_HANDLE_ATTRIBUTE": env.get("LDAP_HANDLE_ATTRIBUTE") or "uid",
        "LDAP_UID_ATTRIBUTE": uid_attribute,
        "LDAP_DISABLED_FILTER": _disabled_filter(env),
    }
