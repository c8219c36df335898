"""``manage.py verify_audit_chain`` prints an OK line per intact chain and fails naming the first broken link."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.audit.services import record_event
from tests.audit.conftest import chain_key, record_many, tamper

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit_chain", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_an_intact_organization_chain_prints_ok(org):
    events = record_many(org, 3)

    out, _ = run("--organization", "acme")

    assert out.startswith(f"OK {chain_key(org)}: 3 events verified, seq 1..3, starting from genesis")
    assert events[-1].hash in out


def test_a_broken_chain_fails_naming_the_first_broken_link(org):
    events = record_many(org, 3)
    tamper("UPDATE audit_auditevent SET diff = '{\"role\": [10, 40]}' WHERE id = %s", [events[1].pk])
    err = StringIO()

    with pytest.raises(CommandError, match=rf"1 of 1 audit chain\(s\) broken: {chain_key(org)} at seq 2"):
        call_command("verify_audit_chain", "--organization", "acme", stderr=err)

    assert f"BROKEN {chain_key(org)}: first broken link at seq 2 (event {events[1].uuid})" in err.getvalue()
    assert "hash mismatch: the event was edited" in err.getvalue()


def test_the_platform_chain_is_verified_with_platform(db):
    record_event(action="auth.login_failed", actor_label="someone@example.com")

    out, _ = run("--platform")

    assert out.startswith("OK platform: 1 events verified")


def test_all_checks_every_chain_and_fails_if_any_is_broken(org, world):
    other = world.user("owner").personal_organization
    record_many(other, 2)
    events = record_many(org, 2)
    record_event(action="auth.login", actor=world.user("owner"))
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="broken"):
        call_command("verify_audit_chain", "--all", stdout=out, stderr=err)

    assert "OK platform" in out.getvalue()
    assert f"OK {chain_key(other)}" in out.getvalue()
    assert f"BROKEN {chain_key(org)}: first broken link at seq 1" in err.getvalue()
    assert "missing seq 1: an event was deleted" in err.getvalue()


def test_an_organization_without_events_is_an_empty_ok_chain(world):
    from tests.factories import OrganizationFactory

    OrganizationFactory(slug="quiet")

    out, _ = run("--organization", "quiet")

    assert "OK" in out
    assert "empty chain" in out


def test_an_unknown_organization_is_an_error(db):
    with pytest.raises(CommandError, match="No organization with the slug “nope”"):
        run("--organization", "nope")


def test_a_chain_must_be_named(db):
    with pytest.raises(CommandError, match="one of the arguments --organization --platform --all is required"):
        run()
