"""Which enterprise sign-in methods this installation can offer, and why not when it cannot.

LDAP / Active Directory needs python-ldap (built against libldap and libsasl) and django-auth-ldap; SAML needs
pysaml2, djangosaml2 and the ``xmlsec1`` binary. They come with the ``enterprise`` extra and its Debian packages
(docs/operator/ldap.md). Settings read this module before any app is loaded, so it imports nothing of Django's
apps: only the standard library, and the optional libraries themselves to see whether they load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
from dataclasses import dataclass
from functools import cache

INSTALL_HINT = (
    "install the enterprise extra (pip install 'gpux-portal[enterprise]') after its Debian packages "
    "(apt-get install libldap2-dev libsasl2-dev xmlsec1)"
)


@dataclass(frozen=True)
class Capability:
    """One optional sign-in method: whether it can be offered here, and if not, what is missing and how to fix it."""

    name: str
    available: bool
    versions: dict[str, str]
    missing: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """Why it cannot be offered (empty when it can)."""
        if self.available:
            return ""
        return f"{self.name} sign-in is not available: {', '.join(self.missing)} missing; {INSTALL_HINT}."


def _module_problem(module: str, distribution: str) -> str | None:
    """None when ``module`` imports; else what is wrong, naming the distribution to install."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        # python-ldap installed but its shared library gone reads differently from not installed at all.
        detail = "" if isinstance(exc, ModuleNotFoundError) and exc.name == module.split(".")[0] else f" ({exc})"
        return f"{distribution}{detail}"
    return None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _capability(name: str, modules: dict[str, str], binaries: tuple[str, ...] = ()) -> Capability:
    missing = [problem for module, dist in modules.items() if (problem := _module_problem(module, dist))]
    missing += [f"the {binary} program" for binary in binaries if shutil.which(binary) is None]
    versions = {dist: _version(dist) for dist in modules.values()} if not missing else {}
    return Capability(name=name, available=not missing, versions=versions, missing=tuple(missing))


@cache
def ldap_capability() -> Capability:
    """LDAP / Active Directory sign-in: python-ldap and django-auth-ldap."""
    return _capability("LDAP", {"ldap": "python-ldap", "django_auth_ldap": "django-auth-ldap"})


@cache
def saml_capability() -> Capability:
    """SAML 2.0 sign-in: pysaml2, djangosaml2 and xmlsec1, which pysaml2 calls to sign and verify."""
    return _capability("SAML", {"saml2": "pysaml2", "djangosaml2": "djangosaml2"}, binaries=("xmlsec1",))
