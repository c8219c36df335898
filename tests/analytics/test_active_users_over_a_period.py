"""Users over a period are distinct people, counted once however many buckets, kinds or tokens they used: the
rollup keeps each bucket's distinct users (UsageActiveUser), and the report counts them again over the whole period,
with the page's filters, per organization, model and token. The per-row ``users`` of the rollups could not: they
are distinct within one kind and token kind of one bucket only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.services import create_api_token
from apps.analytics import reports, usage
from apps.analytics.models import UsageActiveUser
from apps.analytics.rollups import roll_up_pending
from apps.marketplace import services as catalog
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


@pytest.fixture
def used(world):
    """Three people over three days: the member runs iris on day 1 and downloads it on day 2 (no token), the admin
    runs it on day 2 and downloads it an hour later with a CI token, the viewer downloads it on day 3; and an
    anonymous download."""
    model = catalog.create_model(organization=world.org, actor=world.user("member"), name="iris", visibility="public")
    ci, _ = create_api_token(user=world.user("admin"), name="ci", scope="read", organization=world.org, kind="ci")
    member, admin, viewer = (world.user(p).pk for p in ("member", "admin", "viewer"))
    day = [(NOW.replace(hour=10) - timedelta(days=d)).timestamp() for d in (3, 2, 1)]  # 10:30 UTC
    org, iris = world.org.pk, model.pk

    def use(kind, user, when, **more):
        usage.record(kind, organization_id=org, user_id=user, model_id=iris, occurred_at=when, **more)

    use("prediction", member, day[0])
    use("prediction", member, day[0] + 60)
    use("download", member, day[1])
    use("prediction", admin, day[1], token_id=ci.pk, token_kind="ci")
    use("download", admin, day[1] + 3600, token_id=ci.pk, token_kind="ci")  # the next hour
    use("download", viewer, day[2])
    use("download", None, day[2])
    drain_now()
    roll_up_pending(now=NOW + timedelta(days=1))
    return {"model": model, "ci": ci}


def report(**params):
    subject = {key: params.pop(key) for key in ("organization_id", "model_id", "token_id") if key in params}
    period = reports.parse_period(params, now=NOW)
    return reports.usage_report(period=period, filters=reports.parse_filters(params), **subject)


def test_a_person_counts_once_over_the_period_however_many_days_and_kinds(world, used):
    answer = report(organization_id=world.org.pk, period="7d", granularity="day")
    assert answer["totals"]["users"] == 3
    assert sum(answer["series"]["users"]) == 4  # the member on two days: per day they count on each
    assert [n for n in answer["series"]["users"] if n] == [1, 2, 1]
    assert "whole period" in answer["definitions"]["users"]


def test_filters_narrow_the_people_counted(world, used):
    assert report(organization_id=world.org.pk, period="7d", kind="download")["totals"]["users"] == 3
    assert report(organization_id=world.org.pk, period="7d", kind="prediction")["totals"]["users"] == 2
    assert report(organization_id=world.org.pk, period="7d", token_kind="ci")["totals"]["users"] == 1
    assert report(organization_id=world.org.pk, period="7d", token_kind="none")["totals"]["users"] == 2


def test_a_models_and_a_tokens_pages_count_their_own_people(world, used):
    assert report(model_id=used["model"].pk, period="30d")["totals"]["users"] == 3
    assert report(organization_id=world.org.pk, token_id=used["ci"].pk, period="30d")["totals"]["users"] == 1


def test_hourly_periods_count_people_once_across_hours_too(world, used):
    answer = report(organization_id=world.org.pk, period="7d", granularity="hour")
    assert answer["totals"]["users"] == 3
    assert [n for n in answer["series"]["users"] if n] == [1, 2, 1, 1]  # day 2: member and admin, then the admin
    assert report(organization_id=world.org.pk, period="30d")["totals"]["users"] == 3  # by day


def test_rolling_a_bucket_up_again_leaves_the_same_people(world, used):
    before = sorted(UsageActiveUser.objects.values_list("granularity", "bucket_start", "user_id", "kind"))
    from apps.analytics.rollups import mark_range

    mark_range(NOW - timedelta(days=4), NOW)
    roll_up_pending(now=NOW + timedelta(days=1))
    assert sorted(UsageActiveUser.objects.values_list("granularity", "bucket_start", "user_id", "kind")) == before
    assert report(organization_id=world.org.pk, period="7d")["totals"]["users"] == 3


def test_after_the_upgrade_buckets_rolled_up_before_get_their_people_from_the_periodic_rollup(world, used):
    """Rollups made before active-user rows existed: the migration marks their buckets (raw events still kept) and the
    periodic rollup fills the rows in."""
    import importlib

    from django.apps import apps as django_apps

    from apps.analytics.models import PendingRollup

    migration = importlib.import_module("apps.analytics.migrations.0006_active_users_per_bucket")
    UsageActiveUser.objects.all().delete()  # as before the upgrade
    PendingRollup.objects.all().delete()
    assert report(organization_id=world.org.pk, period="7d")["totals"]["users"] == 0
    migration.mark_rolled_up_buckets(django_apps, None)
    roll_up_pending(now=NOW + timedelta(days=1))
    assert report(organization_id=world.org.pk, period="7d")["totals"]["users"] == 3
