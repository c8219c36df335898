"""Usage reports read from the rollups (never from raw events): an organization's, a model's or a token's usage over a
chosen period, as series per bucket and totals, for the analytics pages, their CSV and JSON export and the API.

Periods: ``period=24h|7d|30d|90d|365d`` (default 30d) ending now, or ``start``/``end`` dates (``YYYY-MM-DD``, UTC, the
end day included, at most 400 days). Granularity: ``hour`` or ``day`` (default: hours up to 7 days, else days; at
most 2,000 hourly buckets). Filters: ``kind`` and ``token_kind`` (``none`` for traffic without a token). Bad values
answer 400 naming the parameter.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Sum
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from apps.analytics.models import (
    RUN_KINDS,
    Granularity,
    RollupScope,
    TokenKind,
    UsageActiveUser,
    UsageKind,
    UsageRollup,
)

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90), "365d": timedelta(days=365)}  # fmt: skip
DEFAULT_PERIOD = "30d"
MAX_DAYS = 400
MAX_HOURLY_BUCKETS = 2000
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    granularity: str
    name: str

    def buckets(self) -> list[datetime]:
        step = timedelta(hours=1) if self.granularity == Granularity.HOUR else timedelta(days=1)
        out, moment = [], self.start
        while moment < self.end:
            out.append(moment)
            moment += step
        return out


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    token_kind: str | None = None


def _one(params: Any, name: str) -> str:
    value = params.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _date(params: Any, name: str) -> date:
    text = _one(params, name)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError({name: [f"“{text[:40]}” is not a date: use YYYY-MM-DD."]}, code="invalid") from None


def parse_period(params: Any, *, now: datetime | None = None) -> Period:
    """The period the query parameters ask for; ValidationError naming ``period``, ``start``, ``end`` or
    ``granularity`` when they are wrong."""
    now = now or timezone.now()
    granularity = _one(params, "granularity").lower()
    if granularity and granularity not in Granularity.values:
        raise ValidationError(
            {"granularity": [f"“{granularity[:40]}” is not a granularity: use hour or day."]}, code="invalid_choice"
        )
    if _one(params, "start") or _one(params, "end"):
        if _one(params, "period"):
            raise ValidationError({"period": ["Give either period or start and end, not both."]}, code="invalid")
        if not _one(params, "start"):
            raise ValidationError({"start": ["start is required with end."]}, code="required")
        start_day = _date(params, "start")
        end_day = _date(params, "end") if _one(params, "end") else now.date()
        if end_day < start_day:
            raise ValidationError({"end": ["end must not be before start."]}, code="invalid")
        if (end_day - start_day).days + 1 > MAX_DAYS:
            raise ValidationError({"start": [f"A period covers at most {MAX_DAYS} days."]}, code="invalid")
        start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
        name = f"{start_day.isoformat()}..{end_day.isoformat()}"
    else:
        name = _one(params, "period") or DEFAULT_PERIOD
        if name not in PERIODS:
            raise ValidationError(
                {"period": [f"“{name[:40]}” is not a period: use one of {', '.join(PERIODS)}, or start and end."]},
                code="invalid_choice",
            )
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = end - PERIODS[name]
    if not granularity:
        granularity = Granularity.HOUR if end - start <= timedelta(days=7) else Granularity.DAY
    if granularity == Granularity.DAY:
        start = start.replace(hour=0)
        if end != end.replace(hour=0):
            end = end.replace(hour=0) + timedelta(days=1)
    elif (end - start) / timedelta(hours=1) > MAX_HOURLY_BUCKETS:
        raise ValidationError(
            {"granularity": [f"Hourly buckets cover at most {MAX_HOURLY_BUCKETS} hours: ask for day."]},
            code="invalid",
        )
    return Period(start=start, end=end, granularity=granularity, name=name)


def parse_filters(params: Any) -> Filters:
    kind = _one(params, "kind") or None
    if kind is not None and kind not in UsageKind.values:
        raise ValidationError(
            {"kind": [f"“{kind[:40]}” is not a kind: use one of {', '.join(UsageKind.values)}."]}, code="invalid_choice"
        )
    token_kind = _one(params, "token_kind") or None
    choices = [value or "none" for value in TokenKind.values]
    if token_kind is not None and token_kind not in choices:
        raise ValidationError(
            {"token_kind": [f"“{token_kind[:40]}” is not a token kind: use one of {', '.join(choices)}."]},
            code="invalid_choice",
        )
    return Filters(kind=kind, token_kind=None if token_kind is None else ("" if token_kind == "none" else token_kind))


def parse_format(params: Any, *, default: str = "json") -> str:
    value = (_one(params, "format") or default).lower()
    if value not in FORMATS:
        raise ValidationError({"format": [f"“{value[:40]}” is not a format: use json or csv."]}, code="invalid_choice")
    return value


def usage_report(
    *,
    period: Period,
    filters: Filters = Filters(),
    organization_id: int | None = None,
    model_id: int | None = None,
    token_id: int | None = None,
) -> dict[str, Any]:
    """Series per bucket (runs, downloads, events, items, errors, users, latency) and totals by kind and token kind,
    from the rollups of one organization (its own usage), one model (its use by anyone) or one token."""
    rows = UsageRollup.objects.filter(
        granularity=period.granularity, bucket_start__gte=period.start, bucket_start__lt=period.end
    )
    if model_id is not None:
        rows = rows.filter(scope=RollupScope.MODEL, model_id=model_id)
    elif token_id is not None:
        rows = rows.filter(scope=RollupScope.TOKEN, token_id=token_id)
    else:
        rows = rows.filter(scope=RollupScope.ORGANIZATION)
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    if filters.kind is not None:
        rows = rows.filter(kind=filters.kind)
    if filters.token_kind is not None and model_id is None:  # model rows are not split by token kind
        rows = rows.filter(token_kind=filters.token_kind)
    grouped = (
        rows.values("bucket_start", "kind", "token_kind")
        .annotate(
            events=Sum("events"), items=Sum("items"), bytes=Sum("bytes"), errors=Sum("errors"),
            compute=Sum("compute_seconds"), latency_sum=Sum("latency_sum_ms"), latency_count=Sum("latency_count"),
            latency_p95=Max("latency_p95_ms"),
        )
        .order_by()
    )  # fmt: skip
    buckets = period.buckets()
    index = {moment: i for i, moment in enumerate(buckets)}
    size = len(buckets)
    series: dict[str, list[Any]] = {
        name: [0] * size for name in ("runs", "downloads", "events", "items", "errors", "users")
    }
    latency_sum, latency_count = [0.0] * size, [0] * size
    p95: list[float | None] = [None] * size
    by_kind: dict[str, int] = defaultdict(int)
    by_token_kind: dict[str, int] = defaultdict(int)
    totals = {"events": 0, "items": 0, "bytes": 0, "errors": 0, "compute_seconds": 0.0}
    for row in grouped:
        i = index.get(row["bucket_start"])
        if i is None:
            continue
        events = int(row["events"] or 0)
        series["events"][i] += events
        series["items"][i] += int(row["items"] or 0)
        series["errors"][i] += int(row["errors"] or 0)
        if row["kind"] in RUN_KINDS:
            series["runs"][i] += events
        elif row["kind"] == UsageKind.DOWNLOAD:
            series["downloads"][i] += events
        latency_sum[i] += float(row["latency_sum"] or 0.0)
        latency_count[i] += int(row["latency_count"] or 0)
        if row["latency_p95"] is not None:
            p95[i] = max(p95[i] or 0.0, float(row["latency_p95"]))
        by_kind[row["kind"]] += events
        by_token_kind[row["token_kind"] or "none"] += events
        totals["events"] += events
        totals["items"] += int(row["items"] or 0)
        totals["bytes"] += int(row["bytes"] or 0)
        totals["errors"] += int(row["errors"] or 0)
        totals["compute_seconds"] += float(row["compute"] or 0.0)
    users_total, users_per_bucket = active_users(
        period=period, filters=filters, organization_id=organization_id, model_id=model_id, token_id=token_id
    )
    series["users"] = [users_per_bucket.get(moment, 0) for moment in buckets]
    series["latency_avg_ms"] = [
        round(latency_sum[i] / latency_count[i], 3) if latency_count[i] else None for i in range(size)
    ]
    series["latency_p95_ms"] = [round(value, 3) if value is not None else None for value in p95]
    total_latency = sum(latency_count)
    totals["latency_avg_ms"] = round(sum(latency_sum) / total_latency, 3) if total_latency else None
    totals["runs"] = sum(series["runs"])
    totals["downloads"] = sum(series["downloads"])
    totals["users"] = users_total
    totals["peak_users"] = max(series["users"], default=0)
    totals["compute_seconds"] = round(totals["compute_seconds"], 3)
    return {
        "period": {
            "name": period.name,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "granularity": period.granularity,
        },
        "filters": {"kind": filters.kind, "token_kind": filters.token_kind},
        "buckets": [moment.isoformat() for moment in buckets],
        "series": series,
        "totals": totals,
        "by_kind": dict(sorted(by_kind.items())),
        "by_token_kind": dict(sorted(by_token_kind.items())),
        "definitions": {"users": USERS_MEANING},
    }


USERS_MEANING = (
    "Distinct signed-in users: per bucket in series.users, over the whole period in totals.users (each person once, "
    "whatever they used and however often); anonymous callers are not counted."
)


def active_users(
    *,
    period: Period,
    filters: Filters = Filters(),
    organization_id: int | None = None,
    model_id: int | None = None,
    token_id: int | None = None,
) -> tuple[int, dict[datetime, int]]:
    """Distinct signed-in users over the whole period and per bucket, with the same subject and filters as
    ``usage_report``: from the buckets' ``UsageActiveUser`` rows; for a token (one user: its owner) from its rollup
    rows, 1 where a signed-in caller used it."""
    if token_id is not None:
        rows = UsageRollup.objects.filter(
            granularity=period.granularity, bucket_start__gte=period.start, bucket_start__lt=period.end,
            scope=RollupScope.TOKEN, token_id=token_id, users__gt=0,
        )  # fmt: skip
        if organization_id is not None:
            rows = rows.filter(organization_id=organization_id)
        if filters.kind is not None:
            rows = rows.filter(kind=filters.kind)
        if filters.token_kind is not None:
            rows = rows.filter(token_kind=filters.token_kind)
        used = set(rows.order_by().values_list("bucket_start", flat=True).distinct())
        return (1 if used else 0), dict.fromkeys(used, 1)
    rows = UsageActiveUser.objects.filter(
        granularity=period.granularity, bucket_start__gte=period.start, bucket_start__lt=period.end
    )
    rows = rows.filter(model_id=model_id) if model_id is not None else rows.filter(model_id=0)
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    if filters.kind is not None:
        rows = rows.filter(kind=filters.kind)
    if filters.token_kind is not None and model_id is None:  # as the rollups: a model's use is not split by it
        rows = rows.filter(token_kind=filters.token_kind)
    total = rows.aggregate(users=Count("user_id", distinct=True))["users"] or 0
    per_bucket = dict(
        rows.values("bucket_start").annotate(users=Count("user_id", distinct=True)).values_list("bucket_start", "users")
    )
    return total, per_bucket


CSV_COLUMNS = ("runs", "downloads", "events", "items", "errors", "users", "latency_avg_ms", "latency_p95_ms")


def report_csv(report: dict[str, Any]) -> str:
    """One row per bucket, the series as columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["bucket_start", *CSV_COLUMNS])
    for i, bucket in enumerate(report["buckets"]):
        writer.writerow(
            [bucket, *("" if report["series"][c][i] is None else report["series"][c][i] for c in CSV_COLUMNS)]
        )
    return out.getvalue()
