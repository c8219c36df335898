"""Usage events: recorded once per use through the stream, drained into the database, and "has this user used it
before" for the yank rule."""

from __future__ import annotations

import uuid

import pytest

from apps.analytics import usage
from apps.analytics.models import PendingRollup, UsageEvent
from apps.analytics.services import has_used
from tests.factories import OrganizationFactory, UserFactory
from tests.jobs_support import a_closed_port
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db


def _download(world, user=None, **fields):
    defaults = {
        "organization_id": world.org.pk,
        "user_id": getattr(user, "pk", None),
        "subject_type": world.org._meta.label_lower,
        "subject_id": str(world.org.uuid),
    }
    return usage.record("download", **{**defaults, **fields})


def test_recording_writes_nothing_to_the_database(world, django_assert_num_queries):
    with django_assert_num_queries(0):
        _download(world, world.user("member"))
    assert not UsageEvent.objects.exists()
    # Buffered in the process and sent together by its recorder thread (every 50 ms, so under load it may already
    # be gone by now): after a flush it is in the stream, once.
    usage.flush()
    assert usage.client().xlen(usage.STREAM) == 1


def test_a_drained_event_keeps_every_field(world):
    member = world.user("member")
    event_id = usage.record(
        "prediction",
        organization_id=world.org.pk,
        user_id=member.pk,
        token_id=7,
        token_kind="ci",
        model_id=11,
        version_id=12,
        deployment_id=13,
        items=32,
        bytes=4096,
        latency_ms=12.5,
        outcome="error",
        status_code=500,
        compute_seconds=0.25,
        device="gpu",
        subject_label="acme/iris@1.0",
        metadata={"provider": "CUDAExecutionProvider"},
    )
    assert drain_now().inserted == 1
    event = UsageEvent.objects.get()
    assert event.event_id == uuid.UUID(event_id)
    assert (event.kind, event.organization, event.actor, event.token_id, event.token_kind) == (
        "prediction", world.org, member, 7, "ci",
    )  # fmt: skip
    assert (event.model_id, event.version_id, event.deployment_id) == (11, 12, 13)
    assert (event.items, event.bytes, event.latency_ms, event.outcome, event.status_code) == (
        32,
        4096,
        12.5,
        "error",
        500,
    )
    assert (event.compute_seconds, event.device) == (0.25, "gpu")
    assert event.metadata == {"provider": "CUDAExecutionProvider"}


def test_the_same_event_recorded_twice_is_stored_once(world):
    event_id = uuid.uuid4().hex
    _download(world, event_id=event_id)
    _download(world, event_id=event_id)
    report = drain_now()
    assert (report.inserted, report.duplicates) == (1, 1)
    _download(world, event_id=event_id)
    assert drain_now().inserted == 0
    assert UsageEvent.objects.count() == 1


def test_draining_empties_the_stream_and_marks_the_hour_and_day_for_the_rollup(world):
    for _ in range(3):
        _download(world)
    drain_now()
    assert usage.client().xlen(usage.STREAM) == 0
    assert sorted(PendingRollup.objects.values_list("granularity", flat=True)) == ["day", "hour"]


def test_events_of_an_organization_deleted_before_the_drain_are_dropped(world):
    gone = OrganizationFactory()
    usage.record("download", organization_id=gone.pk)
    _download(world)
    gone.delete()
    report = drain_now()
    assert (report.inserted, report.dropped) == (1, 1)


def test_a_user_deleted_before_the_drain_leaves_an_anonymous_event(world):
    user = UserFactory()
    _download(world, user)
    user.delete()
    drain_now()
    assert UsageEvent.objects.get().actor is None


def test_unknown_arguments_are_refused_at_the_call(world):
    with pytest.raises(TypeError, match="colour"):
        usage.record("download", organization_id=world.org.pk, colour="blue")


def test_recording_off_records_nothing(world, settings):
    settings.USAGE_RECORDING = False
    assert _download(world) is None
    drain_now()
    assert not UsageEvent.objects.exists()


def test_without_redis_the_event_is_written_directly(world, settings):
    settings.REDIS_URL = None
    settings.USAGE_REDIS_URL = None
    _download(world, world.user("member"))
    assert UsageEvent.objects.get().actor == world.user("member")
    assert PendingRollup.objects.count() == 2


def test_when_redis_does_not_answer_the_event_is_written_directly(world, settings):
    settings.USAGE_REDIS_URL = f"redis://127.0.0.1:{a_closed_port()}/0"
    settings.USAGE_REDIS_TIMEOUT_SECONDS = 0.2
    _download(world)
    usage.flush()
    assert UsageEvent.objects.count() == 1
    _download(world)  # Redis is not tried again for a while
    usage.flush()
    assert UsageEvent.objects.count() == 2


def test_a_recorded_download_is_found_for_its_actor_only_before_and_after_the_drain(world):
    user, other = UserFactory(), UserFactory()
    _download(world, user, bytes=10)
    assert has_used(actor=user, subject=world.org)
    drain_now()
    usage.client().delete(f"{usage.RECENT_DOWNLOADS_PREFIX}{world.org.uuid}")
    assert has_used(actor=user, subject=world.org)
    assert not has_used(actor=other, subject=world.org)


def test_anonymous_use_is_recorded_without_an_actor_and_never_counts_as_pinned(world):
    from django.contrib.auth.models import AnonymousUser

    _download(world)
    drain_now()
    event = UsageEvent.objects.get()
    assert event.actor is None
    assert event.subject_id == str(world.org.uuid)
    assert not has_used(actor=AnonymousUser(), subject=world.org)


def test_a_not_modified_answer_does_not_count_as_a_download(world):
    user = UserFactory()
    _download(world, user, status_code=304)
    drain_now()
    assert not has_used(actor=user, subject=world.org)


def test_usage_events_are_for_the_organizations_admins(world):
    _download(world)
    drain_now()
    assert UsageEvent.objects.restrict(world.user("admin"), "view").count() == 1
    assert UsageEvent.objects.restrict(world.user("member"), "view").count() == 0
    assert UsageEvent.objects.restrict(world.user("outsider"), "view").count() == 0


def test_buffered_events_reach_the_stream_within_the_interval_without_a_flush(world, settings):
    settings.USAGE_RECORD_BUFFER_SECONDS = 0.05
    for _ in range(3):
        _download(world)
    from tests.jobs_support import wait_for

    wait_for(lambda: usage.client().xlen(usage.STREAM) == 3, timeout=10, what="the recorder's thread to send")


def test_unbuffered_recording_sends_from_the_call(world, settings):
    settings.USAGE_RECORD_BUFFER_SECONDS = 0
    _download(world)
    assert usage.client().xlen(usage.STREAM) == 1


def test_one_flush_touches_each_counter_once_and_counts_every_event(world, monkeypatch):
    """A flush of many events (one busy web process's tens of predictions) sends one XADD each, but adds each
    organization's and month's compute once, with the sum, and each download set once, with every user."""
    from datetime import UTC, datetime

    member, admin = world.user("member"), world.user("admin")
    other = OrganizationFactory()
    client = usage.client()
    january = datetime(2026, 1, 15, tzinfo=UTC).timestamp()
    keys = [f"{usage.COMPUTE_PREFIX}{org.pk}:{month}" for org in (world.org, other) for month in ("2026-01", "2026-02")]
    downloaded = f"{usage.RECENT_DOWNLOADS_PREFIX}{world.org.uuid}"
    client.delete(*keys, downloaded)
    commands = []
    real_pipeline = client.pipeline

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*args, **kwargs):
            commands.extend(str(entry[0][0]).upper() for entry in pipe.command_stack)
            return real_execute(*args, **kwargs)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)

    def prediction(organization, **fields):
        return usage.event("prediction", organization_id=organization.pk, **fields)

    events = [prediction(world.org, compute_seconds=0.5, device="cpu", occurred_at=january + n) for n in range(30)]
    events += [prediction(world.org, compute_seconds=0.25, device="gpu", occurred_at=january) for _ in range(3)]
    events.append(prediction(world.org, compute_seconds=2.0, occurred_at=datetime(2026, 2, 1, tzinfo=UTC).timestamp()))
    events.append(prediction(other, compute_seconds=1.0, device="cpu", occurred_at=january))
    events.append(prediction(other, occurred_at=january))  # no compute: no counter
    events += [
        usage.event("download", organization_id=world.org.pk, user_id=user.pk, subject_id=str(world.org.uuid))
        for user in (member, admin, member)
    ]
    usage._send_now(events)
    assert commands.count("XADD") == 39 == client.xlen(usage.STREAM)  # every event, once
    assert commands.count("HINCRBYFLOAT") == 4  # January's cpu and gpu, February's cpu, the other's January
    assert commands.count("SADD") == 1
    assert commands.count("EXPIRE") == 4  # three compute counters, one download set
    january_key, february_key, other_january, other_february = keys
    assert float(client.hget(january_key, "cpu")) == pytest.approx(15.0)
    assert float(client.hget(january_key, "gpu")) == pytest.approx(0.75)
    assert float(client.hget(february_key, "cpu")) == pytest.approx(2.0)  # no device: cpu
    assert float(client.hget(other_january, "cpu")) == pytest.approx(1.0)
    assert not client.exists(other_february)
    assert all(0 < client.ttl(key) <= usage.COMPUTE_KEEP_SECONDS for key in keys[:3])
    assert {int(user) for user in client.smembers(downloaded)} == {member.pk, admin.pk}
    assert 0 < client.ttl(downloaded) <= usage.RECENT_DOWNLOADS_SECONDS
    drain_now()
    assert UsageEvent.objects.count() == 39
    client.delete(*keys, downloaded)
