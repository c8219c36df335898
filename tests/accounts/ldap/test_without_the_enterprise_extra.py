"""Without python-ldap (the enterprise extra) the portal still starts, and says why LDAP sign-in is off.

Each case runs ``manage.py check`` in a subprocess in which python-ldap and django-auth-ldap cannot be imported
(``sys.modules[name] = None``), as on a machine where the extra was never installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gpux")
WITHOUT_LDAP = (
    "import runpy, sys; "
    "sys.modules.update(dict.fromkeys(['ldap', 'django_auth_ldap'])); "
    "sys.argv = ['manage.py', 'check']; "
    "runpy.run_path('manage.py', run_name='__main__')"
)


def run_check(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDAP_", "DJANGO_")) and k != "DATABASE_URL"}
    env.update({"GPUX_VAR_DIR": str(tmp_path), "LDAP_SERVER_URI": "ldap://dc1.corp.example", **variables})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_LDAP], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_portal_starts_and_its_check_says_ldap_sign_in_is_off_and_why(tmp_path):
    result = run_check(tmp_path, DJANGO_ENV="development", LDAP_USER_SEARCH_BASE="ou=people,dc=corp,dc=example")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "accounts.W001" in output
    assert "python-ldap" in output
    assert "Only local accounts can sign in" in output


def test_production_refuses_to_start_with_ldap_configured_but_unavailable(tmp_path):
    result = run_check(
        tmp_path,
        DJANGO_ENV="production",
        SECRET_KEY="x" * 30 + "abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL=DATABASE_URL,
    )
    assert result.returncode != 0
    assert "LDAP_SERVER_URI is set, but LDAP sign-in is not available: python-ldap" in result.stderr
