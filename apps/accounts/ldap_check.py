"""What ``manage.py ldap_check`` checks, step by step, with the exact reason and fix of what fails.

The steps follow a sign-in: the libraries load; the configuration is there; each server address accepts a TCP
connection; StartTLS succeeds (when asked for); the service account binds; the user search base exists; with
``--user``, exactly one entry matches the address, with the attributes the portal reads, not disabled, and (with a
password) the directory accepts the password; the group search base exists and the person's groups are found
with the configured group type (the same code the sign-in runs); the groups named by the flag settings and by
every LDAP group mapping exist; with ``--user``, what the mappings give the person in each organization.

A step that cannot run because an earlier one failed is reported as skipped. The command exits 1 when any step
failed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from apps.accounts.enterprise import ldap_capability

OK, FAILED, SKIPPED, WARNING = "ok", "FAILED", "skipped", "warning"


@dataclass(frozen=True)
class Line:
    status: str
    step: str
    message: str
    fix: str = ""


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(line.status == FAILED for line in self.lines)

    def add(self, status: str, step: str, message: str, fix: str = "") -> None:
        self.lines.append(Line(status, step, message, fix))

    def render(self) -> str:
        width = max((len(line.step) for line in self.lines), default=0)
        out = []
        for line in self.lines:
            out.append(f"[{line.status:<7}] {line.step:<{width}}  {line.message}")
            if line.fix:
                out.append(f"{'':>10}{'':<{width}}  fix: {line.fix}")
        return "\n".join(out)


def _ldap_message(exc: Exception) -> str:
    """python-ldap's error as a sentence: its description and the server's additional info."""
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    parts = [str(detail.get("desc") or type(exc).__name__)]
    if detail.get("info"):
        parts.append(str(detail["info"]))
    return ": ".join(parts)


def _addresses(uri_setting: str) -> list[tuple[str, str, int]]:
    """(uri, host, port) for each address of AUTH_LDAP_SERVER_URI (several may be given, space-separated)."""
    found = []
    for uri in uri_setting.split():
        parts = urlsplit(uri)
        default = 636 if parts.scheme == "ldaps" else 389
        found.append((uri, parts.hostname or "localhost", parts.port or default))
    return found


class LdapCheck:
    """Runs the steps against the configured directory; ``user``/``password`` add the per-person steps."""

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        self.user = user.strip().lower() if user else None
        self.password = password
        self.report = Report()
        self.connection: Any = None
        self.user_dn: str | None = None

    def run(self) -> Report:
        steps: list[tuple[str, Callable[[], bool]]] = [
            ("libraries", self.check_libraries),
            ("configuration", self.check_configuration),
            ("connect", self.check_connect),
            ("starttls", self.check_starttls),
            ("bind", self.check_bind),
            ("user search", self.check_user_search),
            ("user", self.check_user),
            ("groups", self.check_groups),
            ("mapping", self.check_mapping),
        ]
        stopped_by = None
        for name, step in steps:
            if stopped_by is not None:
                self.report.add(SKIPPED, name, f"not checked: “{stopped_by}” failed")
                continue
            if not step():
                stopped_by = name
        if self.connection is not None:
            self.connection.unbind_s()
        return self.report

    # -- steps: each answers whether the following ones can run ---------------------------------------------------
    def check_libraries(self) -> bool:
        capability = ldap_capability()
        if not capability.available:
            self.report.add(FAILED, "libraries", capability.reason, "docs/operator/ldap.md, 'Installing'")
            return False
        versions = ", ".join(f"{name} {version}" for name, version in capability.versions.items())
        self.report.add(OK, "libraries", versions)
        return True

    def check_configuration(self) -> bool:
        if not getattr(settings, "LDAP_ENABLED", False):
            self.report.add(
                FAILED,
                "configuration",
                "LDAP sign-in is off: LDAP_SERVER_URI is not set",
                "set LDAP_SERVER_URI and the other LDAP_* variables (docs/operator/ldap.md)",
            )
            return False
        search = settings.AUTH_LDAP_USER_SEARCH
        how = (
            f"user search {search.filterstr} under {search.base_dn}"
            if search is not None
            else f"user DN template {settings.AUTH_LDAP_USER_DN_TEMPLATE}"
        )
        self.report.add(OK, "configuration", f"preset {settings.LDAP_PRESET}; {settings.AUTH_LDAP_SERVER_URI}; {how}")
        return True

    def check_connect(self) -> bool:
        timeout = settings.AUTH_LDAP_CONNECTION_OPTIONS.get(self._ldap.OPT_NETWORK_TIMEOUT, 5)
        reachable = 0
        for uri, host, port in _addresses(settings.AUTH_LDAP_SERVER_URI):
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    pass
            except OSError as exc:
                self.report.add(
                    FAILED,
                    "connect",
                    f"cannot connect to {host}:{port} ({uri}): {exc.strerror or exc}",
                    "check LDAP_SERVER_URI, that the directory server runs, and that the network lets the portal "
                    "reach that port",
                )
            else:
                reachable += 1
                self.report.add(OK, "connect", f"{host}:{port} accepts connections")
        return reachable > 0

    def check_starttls(self) -> bool:
        ldap = self._ldap
        self.connection = ldap.initialize(settings.AUTH_LDAP_SERVER_URI, bytes_mode=False)
        for option, value in settings.AUTH_LDAP_CONNECTION_OPTIONS.items():
            self.connection.set_option(option, value)
        if not settings.AUTH_LDAP_START_TLS:
            if all(uri.startswith("ldap://") for uri in settings.AUTH_LDAP_SERVER_URI.split()):
                self.report.add(
                    WARNING,
                    "starttls",
                    "not used: passwords cross the network unencrypted",
                    "set LDAP_START_TLS=true, or use an ldaps:// address",
                )
            else:
                self.report.add(SKIPPED, "starttls", "not used (ldaps:// encrypts the connection)")
            return True
        try:
            self.connection.start_tls_s()
        except ldap.LDAPError as exc:
            ca = settings.AUTH_LDAP_CONNECTION_OPTIONS.get(ldap.OPT_X_TLS_CACERTFILE)
            fix = (
                f"make sure {ca} (LDAP_CA_CERT_FILE) is the CA that signed the directory's certificate, and that the "
                "certificate names the host of LDAP_SERVER_URI"
                if ca
                else "set LDAP_CA_CERT_FILE to the CA that signed the directory's certificate"
            )
            reason = _ldap_message(exc)
            if isinstance(exc, ldap.CONNECT_ERROR):
                # libldap says no more than "Connect error" when the TLS handshake fails.
                reason += (
                    " (the TLS handshake failed: the server's certificate is not trusted or does not name the host)"
                )
            self.report.add(FAILED, "starttls", f"StartTLS failed: {reason}", fix)
            return False
        self.report.add(OK, "starttls", "StartTLS succeeded; the server's certificate is trusted")
        return True

    def check_bind(self) -> bool:
        ldap = self._ldap
        bind_dn = settings.AUTH_LDAP_BIND_DN
        try:
            self.connection.simple_bind_s(bind_dn, settings.AUTH_LDAP_BIND_PASSWORD)
            who = self.connection.whoami_s() or "anonymous"
        except ldap.INVALID_CREDENTIALS:
            self.report.add(
                FAILED,
                "bind",
                f"the directory refused the service account {bind_dn or '(anonymous)'}: invalid credentials",
                "check LDAP_BIND_DN and LDAP_BIND_PASSWORD (or LDAP_BIND_PASSWORD_FILE)",
            )
            return False
        except ldap.LDAPError as exc:
            self.report.add(FAILED, "bind", f"binding as {bind_dn or '(anonymous)'} failed: {_ldap_message(exc)}")
            return False
        self.report.add(OK, "bind", f"bound as {who}")
        return True

    def check_user_search(self) -> bool:
        search = settings.AUTH_LDAP_USER_SEARCH
        if search is None:
            self.report.add(SKIPPED, "user search", "not used: LDAP_USER_DN_TEMPLATE builds the DN")
            return True
        if not self._exists(search.base_dn, "user search", "LDAP_USER_SEARCH_BASE"):
            return False
        self.report.add(OK, "user search", f"{search.base_dn} exists")
        return True

    def check_user(self) -> bool:
        ldap = self._ldap
        if self.user is None:
            self.report.add(SKIPPED, "user", "no --user given: pass an e-mail address to check one person")
            return True
        search = settings.AUTH_LDAP_USER_SEARCH
        attributes = [
            a
            for a in (
                settings.LDAP_EMAIL_ATTRIBUTE,
                settings.LDAP_NAME_ATTRIBUTE,
                settings.LDAP_HANDLE_ATTRIBUTE,
                settings.LDAP_UID_ATTRIBUTE,
            )
            if a
        ]
        if search is None:
            dn = settings.AUTH_LDAP_USER_DN_TEMPLATE % {"user": ldap.dn.escape_dn_chars(self.user)}
            base, scope, filterstr = dn, ldap.SCOPE_BASE, "(objectClass=*)"
        else:
            filterstr = search.filterstr % {"user": ldap.filter.escape_filter_chars(self.user)}
            base, scope = search.base_dn, search.scope
        try:
            found = [(dn, attrs) for dn, attrs in self.connection.search_s(base, scope, filterstr, attributes) if dn]
        except ldap.NO_SUCH_OBJECT:
            found = []
        except ldap.LDAPError as exc:
            self.report.add(FAILED, "user", f"searching for {self.user} failed: {_ldap_message(exc)}")
            return False
        if not found:
            self.report.add(
                FAILED,
                "user",
                f"no entry under {base} matches {filterstr}",
                "check the address, LDAP_USER_SEARCH_BASE and LDAP_USER_SEARCH_FILTER (the person types their "
                "e-mail address; the filter must find it)",
            )
            return False
        if len(found) > 1:
            self.report.add(
                FAILED,
                "user",
                f"{len(found)} entries match {filterstr}: {', '.join(dn for dn, _ in found[:5])}",
                "make LDAP_USER_SEARCH_FILTER find exactly one person per address",
            )
            return False
        self.user_dn, attrs = found[0]
        self.report.add(OK, "user", f"found {self.user_dn}")
        for setting in ("LDAP_EMAIL_ATTRIBUTE", "LDAP_NAME_ATTRIBUTE", "LDAP_HANDLE_ATTRIBUTE", "LDAP_UID_ATTRIBUTE"):
            name = getattr(settings, setting)
            if not name:
                continue
            values = next((v for k, v in attrs.items() if k.lower() == name.lower()), None)
            if values:
                shown = values[0].decode(errors="replace") if name != settings.LDAP_UID_ATTRIBUTE else "present"
                self.report.add(OK, "user", f"{name} ({setting}): {shown}")
            else:
                self.report.add(
                    WARNING,
                    "user",
                    f"the entry has no {name} ({setting})",
                    f"set {setting} to an attribute the entries have",
                )
        disabled = settings.LDAP_DISABLED_FILTER
        if disabled and self.connection.search_s(self.user_dn, ldap.SCOPE_BASE, disabled, ["1.1"]):
            self.report.add(
                FAILED,
                "user",
                f"the account is disabled ({disabled} matches it): it cannot sign in",
                "enable the account in the directory, or change LDAP_DISABLED_FILTER",
            )
            return False
        if self.password is not None:
            probe = ldap.initialize(settings.AUTH_LDAP_SERVER_URI, bytes_mode=False)
            for option, value in settings.AUTH_LDAP_CONNECTION_OPTIONS.items():
                probe.set_option(option, value)
            try:
                if settings.AUTH_LDAP_START_TLS:
                    probe.start_tls_s()
                probe.simple_bind_s(self.user_dn, self.password)
            except ldap.INVALID_CREDENTIALS:
                self.report.add(FAILED, "user", f"the directory refused this password for {self.user_dn}")
                return False
            except ldap.LDAPError as exc:
                self.report.add(FAILED, "user", f"binding as {self.user_dn} failed: {_ldap_message(exc)}")
                return False
            finally:
                probe.unbind_s()
            self.report.add(OK, "user", "the directory accepted the password")
        return True

    def check_groups(self) -> bool:
        search = settings.AUTH_LDAP_GROUP_SEARCH
        if search is None:
            self.report.add(
                SKIPPED,
                "groups",
                "no LDAP_GROUP_SEARCH_BASE: groups are not read (no roles from the directory)",
            )
            return True
        if not self._exists(search.base_dn, "groups", "LDAP_GROUP_SEARCH_BASE"):
            return False
        self.report.add(
            OK, "groups", f"{search.base_dn} exists; group type {type(settings.AUTH_LDAP_GROUP_TYPE).__name__}"
        )
        for setting in ("LDAP_STAFF_GROUP", "LDAP_SUPERUSER_GROUP", "LDAP_REQUIRE_GROUP", "LDAP_DENY_GROUP"):
            dn = self._setting_group(setting)
            if dn and not self._exists(dn, "groups", setting):
                return False
        if self.user_dn is not None:
            self.groups = sorted(self._user_groups())
            self.report.add(
                OK, "groups", f"{self.user} is in {len(self.groups)} group(s): {'; '.join(self.groups) or '-'}"
            )
        return True

    def check_mapping(self) -> bool:
        from apps.organizations.group_sync import resolve_group_mappings
        from apps.organizations.models import GroupMapping

        mappings = list(GroupMapping.objects.filter(source="ldap").select_related("organization", "team"))
        if not mappings:
            self.report.add(SKIPPED, "mapping", "no LDAP group mappings (Django admin: Organizations › Group mappings)")
            return True
        ok = True
        for mapping in mappings:
            if not self._exists(mapping.group, "mapping", f"the mapping “{mapping}”", report_ok=False):
                ok = False
        if ok:
            self.report.add(OK, "mapping", f"{len(mappings)} mapping(s); every mapped group exists")
        if self.user_dn is not None and getattr(self, "groups", None) is not None:
            placements = resolve_group_mappings(source="ldap", groups=self.groups)
            given = [
                f"{p.organization.slug}: {p.role.label}"
                + (f" (teams {', '.join(sorted(t.slug for t in p.teams))})" if p.teams else "")
                for p in placements.values()
                if p.role is not None
            ]
            self.report.add(OK, "mapping", f"{self.user} would get: {'; '.join(given) or 'no organization'}")
        return ok

    # -- helpers ------------------------------------------------------------------------------------------------
    @property
    def _ldap(self) -> Any:
        import ldap
        import ldap.dn
        import ldap.filter

        return ldap

    def _setting_group(self, setting: str) -> str | None:
        value = {
            "LDAP_STAFF_GROUP": settings.AUTH_LDAP_USER_FLAGS_BY_GROUP.get("is_staff"),
            "LDAP_SUPERUSER_GROUP": settings.AUTH_LDAP_USER_FLAGS_BY_GROUP.get("is_superuser"),
            "LDAP_REQUIRE_GROUP": settings.AUTH_LDAP_REQUIRE_GROUP,
            "LDAP_DENY_GROUP": settings.AUTH_LDAP_DENY_GROUP,
        }[setting]
        return value if isinstance(value, str) else None

    def _exists(self, dn: str, step: str, what: str, *, report_ok: bool = False) -> bool:
        ldap = self._ldap
        try:
            self.connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            self.report.add(FAILED, step, f"{dn} does not exist in the directory ({what})", f"correct {what}")
            return False
        except ldap.INVALID_DN_SYNTAX:
            self.report.add(FAILED, step, f"“{dn}” is not a DN ({what})", f"correct {what}")
            return False
        except ldap.LDAPError as exc:
            self.report.add(FAILED, step, f"reading {dn} failed: {_ldap_message(exc)}")
            return False
        if report_ok:
            self.report.add(OK, step, f"{dn} exists")
        return True

    def _user_groups(self) -> set[str]:
        """The person's groups, found by django-auth-ldap's own code (as at sign-in, nested groups included)."""
        from django_auth_ldap.backend import _LDAPUser

        from apps.accounts.ldap import DirectoryBackend

        ldap_user = _LDAPUser(DirectoryBackend(), username=self.user)
        ldap_user._user_dn = self.user_dn
        return set(ldap_user.group_dns)
