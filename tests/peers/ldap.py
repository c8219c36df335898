"""A real LDAP directory on loopback: Debian's OpenLDAP ``slapd``, throwaway, started and stopped by the suite.

One ``slapd`` process (``slapd -f slapd.conf -d 0``: in the foreground, so its pid is ours) serves one database,
``dc=gpux,dc=test``, seeded with ``slapadd`` before it starts. It holds two directories side by side:

* ``ou=people`` / ``ou=groups``: an OpenLDAP-style directory (inetOrgPerson, groupOfNames, ppolicy), where
  ``cn=platform-admins`` contains the *group* ``cn=ml-leads`` (a nested group) and ``carol`` is locked by an
  administrator (``pwdAccountLockedTime: 000001010000Z``: slapd itself refuses her password);
* ``ou=corp``: an Active Directory-style one, with Debian's ``msuser.schema`` (Microsoft's ``user`` and ``group``
  classes, ``sAMAccountName``, ``userPrincipalName``, ``userAccountControl``), nested groups, and Fox Mulder's
  account disabled the AD way (``userAccountControl: 514``). slapd does not act on ``userAccountControl`` as a
  domain controller does, so there the portal's own check is what refuses him.

The service account ``cn=portal,ou=services`` may read everything; anonymous clients may only bind. StartTLS is
offered with the certificate python-ldap's ``slapdtest`` ships for 127.0.0.1 (its CA is :attr:`ca_file`).

Tests that change the directory (moving someone between groups) use :meth:`SlapdServer.modify` on entries that
only they touch, and put them back, since the server lives for the whole session. ../shared/PEERS.md has more.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.peers import free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
START_TIMEOUT = 15.0

SUFFIX = "dc=gpux,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"
BIND_DN = f"cn=portal,ou=services,{SUFFIX}"
BIND_PASSWORD = "portal-bind-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
CORP = f"ou=corp,{SUFFIX}"


@dataclass(frozen=True)
class Person:
    """Someone in the test directory, with the password that signs them in."""

    dn: str
    email: str
    password: str
    name: str
    handle: str


# OpenLDAP style.
ALICE = Person(f"uid=alice,{PEOPLE}", "alice@corp.example", "alice-directory-pw", "Alice Liddell", "alice")
BOB = Person(f"uid=bob,{PEOPLE}", "bob@corp.example", "bob-directory-pw", "Bob Builder", "bob")
CAROL = Person(f"uid=carol,{PEOPLE}", "carol@corp.example", "carol-directory-pw", "Carol Danvers", "carol")
# Moved between groups by the tests that check role changes at the next sign-in (and put back).
ERIN = Person(f"uid=erin,{PEOPLE}", "erin@corp.example", "erin-directory-pw", "Erin Hannon", "erin")
# Active Directory style.
DANA = Person(f"cn=Dana Scully,{CORP}", "dana@corp.example", "dana-directory-pw", "Dana Scully", "dscully")
FOX = Person(f"cn=Fox Mulder,{CORP}", "fox@corp.example", "fox-directory-pw", "Fox Mulder", "fmulder")
WALTER = Person(f"cn=Walter Skinner,{CORP}", "walter@corp.example", "walter-directory-pw", "Walter Skinner", "wskinner")

ML_ENGINEERS = f"cn=ml-engineers,{GROUPS}"
ML_LEADS = f"cn=ml-leads,{GROUPS}"
PLATFORM_ADMINS = f"cn=platform-admins,{GROUPS}"  # contains the group ml-leads
PORTAL_STAFF = f"cn=portal-staff,{GROUPS}"
VIEWERS = f"cn=viewers,{GROUPS}"
X_FILES = f"cn=X-Files,{CORP}"
XF_LEADS = f"cn=XF Leads,{CORP}"
BUREAU_ADMINS = f"cn=Bureau Admins,{CORP}"  # contains the group XF Leads

CERTS = "slapdtest/certs"  # inside python-ldap's installation


def _person(p: Person, *extra: str) -> str:
    given, _, family = p.name.partition(" ")
    return "\n".join(
        [
            f"dn: {p.dn}",
            "objectClass: inetOrgPerson",
            f"uid: {p.handle}",
            f"cn: {p.name}",
            f"givenName: {given}",
            f"sn: {family or given}",
            f"mail: {p.email}",
            f"userPassword: {p.password}",
            *extra,
        ]
    )


def object_guid(p: Person) -> uuid.UUID:
    """The AD-style person's objectGUID (stored as AD stores it: 16 bytes, little-endian fields)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, p.dn)


def _ad_user(p: Person, account_control: int) -> str:
    given, _, family = p.name.partition(" ")
    return "\n".join(
        [
            f"dn: {p.dn}",
            f"objectGUID:: {base64.b64encode(object_guid(p).bytes_le).decode()}",
            "objectClass: user",
            # msuser.schema has no securityPrincipal class to carry sAMAccountName: allow it this way.
            "objectClass: extensibleObject",
            f"cn: {p.name}",
            f"sn: {family}",
            f"givenName: {given}",
            f"displayName: {p.name}",
            f"sAMAccountName: {p.handle}",
            f"userPrincipalName: {p.handle}@corp.example",
            f"mail: {p.email}",
            f"userAccountControl: {account_control}",
            f"userPassword: {p.password}",
            # What msuser.schema's top class requires; meaningless here.
            "instanceType: 4",
            "nTSecurityDescriptor: none",
            f"objectCategory: cn=Person,cn=Schema,cn=Configuration,{SUFFIX}",
        ]
    )


def _group(dn: str, *members: str) -> str:
    name = dn.split(",", 1)[0].split("=", 1)[1]
    return "\n".join([f"dn: {dn}", "objectClass: groupOfNames", f"cn: {name}", *(f"member: {m}" for m in members)])


def _ad_group(dn: str, *members: str) -> str:
    name = dn.split(",", 1)[0].split("=", 1)[1]
    return "\n".join(
        [
            f"dn: {dn}",
            "objectClass: group",
            f"cn: {name}",
            "groupType: -2147483646",  # a global security group
            "instanceType: 4",
            "nTSecurityDescriptor: none",
            f"objectCategory: cn=Group,cn=Schema,cn=Configuration,{SUFFIX}",
            *(f"member: {m}" for m in members),
        ]
    )


def seed_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: gpux\no: GPUX tests",
        *(
            f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}"
            for ou in ("people", "groups", "services", "policies", "corp")
        ),
        f"dn: {BIND_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: portal\n"
        f"userPassword: {BIND_PASSWORD}",
        # ppolicy's default policy: with pwdLockout on, slapd refuses a locked account's password.
        f"dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: pwdPolicy\nobjectClass: device\ncn: default\n"
        "pwdAttribute: userPassword\npwdLockout: TRUE",
        _person(ALICE),
        _person(BOB),
        _person(CAROL, "pwdAccountLockedTime: 000001010000Z"),
        _person(ERIN),
        _group(ML_ENGINEERS, ALICE.dn, ERIN.dn),
        _group(ML_LEADS, BOB.dn),
        _group(PLATFORM_ADMINS, ML_LEADS),
        _group(PORTAL_STAFF, BOB.dn),
        _group(VIEWERS, CAROL.dn),
        _ad_user(DANA, 512),
        _ad_user(FOX, 514),  # NORMAL_ACCOUNT | ACCOUNTDISABLE
        _ad_user(WALTER, 512),
        _ad_group(X_FILES, DANA.dn, FOX.dn),
        _ad_group(XF_LEADS, WALTER.dn),
        _ad_group(BUREAU_ADMINS, XF_LEADS),
    ]
    return "\n\n".join(entries) + "\n"


def slapd_conf(root: Path, certs: Path) -> str:
    schemas = "\n".join(
        f"include {SCHEMA_DIR / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis", "msuser")
    )
    return f"""{schemas}
pidfile {root / "slapd.pid"}
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload ppolicy
TLSCACertificateFile {certs / "ca.pem"}
TLSCertificateFile {certs / "server.pem"}
TLSCertificateKeyFile {certs / "server.key"}
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {root / "db"}
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{SUFFIX}"
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by users read by * none
"""


@dataclass
class SlapdServer:
    """A running slapd: its address, the service account, the CA of its StartTLS certificate, and its log."""

    uri: str
    port: int
    ca_file: str
    process: subprocess.Popen
    log: IO[bytes]
    root: Path | None = None
    started_in: float = 0.0
    suffix: str = SUFFIX
    bind_dn: str = BIND_DN
    bind_password: str = BIND_PASSWORD

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def connect(self, who: str = ROOT_DN, password: str = ROOT_PASSWORD):
        import ldap

        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(who, password)
        return connection

    def environment(self, **overrides: str) -> dict[str, str]:
        """The LDAP_* variables an operator would set for the OpenLDAP-style directory (overrides win)."""
        values = {
            "LDAP_SERVER_URI": self.uri,
            "LDAP_PRESET": "openldap",
            "LDAP_BIND_DN": self.bind_dn,
            "LDAP_BIND_PASSWORD": self.bind_password,
            "LDAP_USER_SEARCH_BASE": PEOPLE,
            "LDAP_GROUP_SEARCH_BASE": GROUPS,
            "LDAP_TIMEOUT": "3",
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    def ad_environment(self, **overrides: str) -> dict[str, str]:
        """The LDAP_* variables for the Active Directory-style directory under ``ou=corp``."""
        return self.environment(
            LDAP_PRESET="active-directory", LDAP_USER_SEARCH_BASE=CORP, LDAP_GROUP_SEARCH_BASE=CORP, **overrides
        )

    @contextmanager
    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes] | None]]) -> Iterator[None]:
        """Apply ``changes`` (python-ldap modlist) to ``dn`` for the block, then undo them."""
        import ldap

        undo = []
        for op, attr, values in changes:
            reverse = {ldap.MOD_ADD: ldap.MOD_DELETE, ldap.MOD_DELETE: ldap.MOD_ADD}.get(op)
            if reverse is None:
                raise ValueError("modify() undoes MOD_ADD and MOD_DELETE only")
            undo.append((reverse, attr, values))
        connection = self.connect()
        connection.modify_s(dn, changes)
        try:
            yield
        finally:
            connection.modify_s(dn, list(reversed(undo)))
            connection.unbind_s()


def _wait_until_ready(server: SlapdServer) -> None:
    import ldap

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"slapd exited with {server.process.returncode}:\n{server.output()}")
        try:
            server.connect().unbind_s()
            return
        except ldap.SERVER_DOWN:
            time.sleep(0.02)
    raise RuntimeError(f"slapd did not answer on {server.uri} within {START_TIMEOUT:.0f} s:\n{server.output()}")


def start_slapd() -> SlapdServer:
    """Seed a fresh database and start slapd on a free loopback port (the caller stops it: :func:`stop_slapd`)."""
    ldap = pytest.importorskip("ldap", reason="python-ldap (the enterprise extra) is not installed")
    if not (SLAPD.exists() and SLAPADD.exists()):
        pytest.skip("Debian's slapd is not installed (apt-get install slapd ldap-utils)")
    certs = Path(ldap.__file__).resolve().parent.parent / CERTS
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="gpux-slapd-"))
    (root / "db").mkdir()
    conf = root / "slapd.conf"
    conf.write_text(slapd_conf(root, certs))
    seed = root / "seed.ldif"
    seed.write_text(seed_ldif())
    subprocess.run([str(SLAPADD), "-q", "-f", str(conf), "-l", str(seed)], check=True, capture_output=True)
    port = free_port()
    # The log goes to a file, not a pipe: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [str(SLAPD), "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LDAPNOINIT": "1"},
    )
    server = SlapdServer(
        uri=f"ldap://127.0.0.1:{port}/", port=port, ca_file=str(certs / "ca.pem"), process=process, log=log, root=root
    )
    try:
        _wait_until_ready(server)
    except BaseException:
        stop_slapd(server)
        raise
    server.started_in = time.monotonic() - began
    return server


def stop_slapd(server: SlapdServer) -> None:
    """Stop slapd by its pid and remove its database."""
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    server.log.close()
    if server.root is not None:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """slapd with the test directory on a free loopback port for the whole session; stopped by its pid."""
    server = start_slapd()
    try:
        yield server
    finally:
        stop_slapd(server)
