"""`DJANGO_ENV=production` passes `manage.py check --deploy` and refuses insecure defaults.

Each case runs `manage.py` in a subprocess, because settings are read once per process: the environment given
to the subprocess is the whole configuration (nothing leaks in from the test run's own environment).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Settings variables that must not leak from the developer's or CI's environment into the subprocess.
CONFIG_VARIABLES = {
    "DJANGO_ENV",
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "DATABASE_TEST_NAME",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "EMAIL_BACKEND",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # the browser tests set it; `check --deploy` refuses it (async.E001)
}
STRONG_KEY = secrets.token_urlsafe(64)


def production_environment(**overrides: str | None) -> dict[str, str]:
    """A production-like environment: a strong key, one host, the test PostgreSQL and Redis.

    An override of ``None`` removes the variable.
    """
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    env.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
            "SECRET_KEY": STRONG_KEY,
            "ALLOWED_HOSTS": "portal.example.com",
            "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gpux"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_no_warning_in_a_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout, output
    # A system-check warning is printed as "?: (security.W004) ..." or "app.Model: (app.W001) ...".
    assert ".W0" not in output, output
    assert "WARNINGS:" not in output, output


def test_secret_key_file_is_read_in_production(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(STRONG_KEY + "\n")
    env = production_environment(SECRET_KEY=None, SECRET_KEY_FILE=str(key_file))
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "named_variable"),
    [
        pytest.param({"SECRET_KEY": None}, "SECRET_KEY", id="no-secret-key"),
        pytest.param({"SECRET_KEY": "short-and-weak"}, "SECRET_KEY", id="weak-secret-key"),
        pytest.param({"SECRET_KEY": "a" * 80}, "SECRET_KEY", id="long-but-repetitive-secret-key"),
        pytest.param(
            {"SECRET_KEY": "django-insecure-gpux-portal-development-key-do-not-use-in-production"},
            "SECRET_KEY",
            id="development-secret-key",
        ),
        pytest.param({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS", id="no-allowed-hosts"),
        pytest.param({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS", id="wildcard-allowed-hosts"),
        pytest.param({"DEBUG": "true"}, "DEBUG", id="debug-on"),
        pytest.param({"DATABASE_URL": None}, "DATABASE_URL", id="no-database-url"),
    ],
)
def test_production_refuses_an_insecure_default_and_names_the_variable(overrides, named_variable):
    result = manage("check", env=production_environment(**overrides))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ImproperlyConfigured" in output, output
    assert named_variable in output.splitlines()[-1], output


def test_development_mode_still_starts_with_nothing_set(tmp_path):
    """The refusals are production's only: with no configuration the embedded default starts."""
    env = production_environment(
        DJANGO_ENV=None, SECRET_KEY=None, ALLOWED_HOSTS=None, DATABASE_URL=None, REDIS_URL=None
    )
    env["GPUX_VAR_DIR"] = str(tmp_path / "var")
    result = manage("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
