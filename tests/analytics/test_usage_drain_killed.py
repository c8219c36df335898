"""The drain killed (SIGKILL) between reading the stream and acknowledging it loses nothing and doubles nothing:
the next drain reads the entries left pending first and inserts only those not already committed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from apps.analytics import drain, usage
from apps.analytics.models import UsageEvent
from gpux_portal.settings import BASE_DIR
from tests.factories import OrganizationFactory
from tests.jobs_support import database_url_of_this_test_run
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db(transaction=True)

# A drain in its own process that SIGKILLs itself at the named moment of its first batch.
DRAIN_THAT_DIES = """
import os, signal, django
django.setup()
from apps.analytics import drain
where = os.environ["DIE"]
if where == "after_read":
    drain.store_events = lambda events: os.kill(os.getpid(), signal.SIGKILL)
else:
    drain.acknowledge = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
drain.drain_usage_stream(batch_size=int(os.environ["BATCH"]))
"""


def _drain_killed(where: str, batch: int) -> int:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_this_test_run(),
        "DATABASE_TEST_NAME": "",
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
        "PYTHONPATH": str(BASE_DIR),
        "DIE": where,
        "BATCH": str(batch),
    }
    return subprocess.run([sys.executable, "-c", DRAIN_THAT_DIES], cwd=BASE_DIR, env=env, timeout=120).returncode


def _record(org, count: int) -> list[str]:
    ids = [usage.record("download", organization_id=org.pk, items=1) for _ in range(count)]
    usage.flush()
    return ids


@pytest.mark.parametrize("where", ["after_read", "after_commit"])
def test_a_drain_killed_before_acknowledging_loses_and_doubles_nothing(where):
    org = OrganizationFactory()
    ids = _record(org, 25)
    assert _drain_killed(where, batch=10) == -9
    committed = UsageEvent.objects.count()
    assert committed == (10 if where == "after_commit" else 0)
    assert usage.client().xlen(usage.STREAM) == 25  # nothing acknowledged
    assert 0 < usage.client().ttl(drain.LOCK) <= 30  # the dead drain's lock lapses on its own; lapse it now
    usage.client().delete(drain.LOCK)
    report = drain_now()
    assert report.inserted == 25 - committed
    assert report.duplicates == committed
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(
        __import__("uuid").UUID(event_id) for event_id in ids
    )
    assert usage.client().xlen(usage.STREAM) == 0
