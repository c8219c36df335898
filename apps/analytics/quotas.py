"""Quotas and rate limits (docs/admin/quotas.md).

* **Requests per minute** on the API and on predictions, per organization and per API token: a sliding window log
  in Redis (one sorted set per limit), checked and counted by one Lua script, so every web process shares it and
  the limit holds exactly at its boundary (the N-th request of a minute passes, the N+1-th waits). A refused request
  is not counted. Refusals answer 429 with ``Retry-After`` (when the oldest counted request leaves the window).
* **Compute seconds per month**, by device (``gpu``, ``cpu``): counted by the usage recorder in Redis as predictions
  and jobs report their compute time; a new run is refused with 429 once the month's allowance is spent, with
  ``Retry-After`` pointing at the next month.
* **Storage**: ``apps.marketplace.storage`` (403 naming the quota); its default comes from the plan here.

Limits: the organization's own (``OrganizationQuota``), else its plan's, else the default plan's; empty is
unlimited. They are read at most every ``QUOTA_CACHE_SECONDS`` per process. When Redis does not answer, rate limits
let requests through (the API's own throttles still apply) rather than refuse everyone.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle

from apps.analytics import usage

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000
RATE_PREFIX = "gpux:rate:"

# The sliding window log's one check, as Lua: ``window_wait(key, limit, now, window)`` drops what left the window
# from ``key`` and answers 0 when it has room for one more, else the milliseconds until its oldest counted request
# leaves (at least 1). Shared by ``SLIDING_WINDOW`` and the online admission (apps/inference/online/gateway.py), which
# counts a prediction's windows in the round trip that sends it.
WINDOW_WAIT = """
local function window_wait(key, limit, now, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  local wait = window
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
  if wait < 1 then wait = 1 end
  return wait
end
local function redis_now_ms()
  local parts = redis.call('TIME')
  return tonumber(parts[1]) * 1000 + math.floor(tonumber(parts[2]) / 1000)
end
"""
# KEYS: one sorted set per limit. ARGV: window (ms), a unique member, then one limit per key.
# Returns {0} when counted, else {1 + index of the first full key, milliseconds until a slot frees}.
SLIDING_WINDOW = (
    WINDOW_WAIT
    + """
local now = redis_now_ms()
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local wait = window_wait(key, tonumber(ARGV[2 + i]), now, window)
  if wait > 0 then return {i, wait} end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return {0, 0}
"""
)


@dataclass(frozen=True)
class Limits:
    """An organization's effective limits (None: unlimited)."""

    api_requests_per_minute: int | None = None
    predictions_per_minute: int | None = None
    token_api_requests_per_minute: int | None = None
    token_predictions_per_minute: int | None = None
    gpu_seconds_per_month: int | None = None
    cpu_seconds_per_month: int | None = None
    plan: str = ""


class QuotaExceeded(exceptions.Throttled):
    """429 with Retry-After, naming the quota: ``code`` (``rate_limited`` or ``compute_quota_exceeded``) and ``quota``,
    the limit's name as the organization's quota overview names it (``predictions_per_minute``,
    ``token_predictions_per_minute``, ``api_requests_per_minute``, ``gpu_seconds_per_month``...), which the API's error
    handler puts in the body."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, *, wait: float, code: str = "rate_limited", quota: str = "") -> None:
        super().__init__(wait=wait, detail=detail, code=code)
        self.quota = quota


_limits_cache: dict[int, tuple[float, Limits]] = {}
_script: dict[str, Any] = {}


# (organization, month) -> (read until, the month's counters as read, this process' own compute seconds then).
_clock = time.monotonic
_compute_cache: dict[tuple[int, str], tuple[float, dict[str, float], dict[str, float]]] = {}


def forget_cached_limits(organization_id: int | None = None) -> None:
    """Drop this process' cached limits and compute counters (an operator changed them; other processes follow
    within the cache time)."""
    if organization_id is None:
        _limits_cache.clear()
        _compute_cache.clear()
    else:
        _limits_cache.pop(organization_id, None)
        for key in [key for key in _compute_cache if key[0] == organization_id]:
            _compute_cache.pop(key, None)


def limits_for(organization_id: int) -> Limits:
    """The organization's limits: its own, else its plan's, else the default plan's."""
    now = time.monotonic()
    cached = _limits_cache.get(organization_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    from apps.analytics.models import QUOTA_LIMITS, OrganizationQuota, Plan

    own = OrganizationQuota.objects.select_related("plan").filter(organization_id=organization_id).first()
    plan = own.plan if own is not None and own.plan_id else Plan.objects.filter(is_default=True).first()
    values: dict[str, Any] = {}
    for name in QUOTA_LIMITS:
        value = getattr(own, name, None) if own is not None else None
        values[name] = value if value is not None else getattr(plan, name, None)
    limits = Limits(**values, plan=plan.name if plan is not None else "")
    _limits_cache[organization_id] = (now + float(getattr(settings, "QUOTA_CACHE_SECONDS", 10)), limits)
    return limits


def plan_storage_bytes(organization_id: int) -> int | None:
    """The storage quota of the organization's plan (None: the plan says nothing; 0: unlimited)."""
    from apps.analytics.models import OrganizationQuota, Plan

    own = OrganizationQuota.objects.select_related("plan").filter(organization_id=organization_id).first()
    plan = own.plan if own is not None and own.plan_id else Plan.objects.filter(is_default=True).first()
    return plan.storage_bytes if plan is not None else None


def _redis() -> Any:
    return usage.client()


def _take(keys: list[str], limits: list[int], member: str) -> tuple[int, float]:
    """Count one request against every key if none is full: (0, 0) or (1 + the full key's index, seconds to wait)."""
    client = _redis()
    if client is None or not keys:
        return 0, 0.0
    try:
        script = _script.get(id(client))
        if script is None:
            script = _script[id(client)] = client.register_script(SLIDING_WINDOW)
        refused, wait_ms = script(keys=keys, args=[WINDOW_MS, member, *limits])
    except Exception as exc:  # Redis down: let the request through (docs/admin/quotas.md)
        logger.warning("Rate limits not checked (Redis: %s)", exc)
        return 0, 0.0
    return int(refused), int(wait_ms) / 1000.0


@dataclass(frozen=True)
class RateWindows:
    """The per-minute limits one request counts against (``check_rate``, or the online admission's round trip): the
    sliding windows' keys, their limits, who each belongs to and its quota's name, and the request's unique member."""

    what: str
    keys: tuple[str, ...]
    limits: tuple[int, ...]
    names: tuple[str, ...]
    quotas: tuple[str, ...]
    member: str

    def refusal(self, index: int, wait: float) -> QuotaExceeded:
        """The 429 for the ``index``-th window (from 1) being full, ``wait`` seconds until a place frees."""
        noun = "API requests" if self.what == "api" else "predictions"
        return QuotaExceeded(
            f"Rate limit reached: {self.names[index - 1]} may make {self.limits[index - 1]} {noun} per minute.",
            wait=wait,
            quota=self.quotas[index - 1],
        )


def rate_windows(
    what: str, *, organization_id: int | None, token_id: int | None = None, organization_label: str = ""
) -> RateWindows | None:
    """The organization's and the token's per-minute limits on ``what`` (``api`` or ``predict``) that apply; None
    when none does."""
    if organization_id is None:
        return None
    limits = limits_for(organization_id)
    org_limit = getattr(limits, "api_requests_per_minute" if what == "api" else "predictions_per_minute")
    token_limit = getattr(limits, "token_api_requests_per_minute" if what == "api" else "token_predictions_per_minute")
    keys, values, names, quota_names = [], [], [], []
    if org_limit is not None:
        keys.append(f"{RATE_PREFIX}{what}:org:{organization_id}")
        values.append(org_limit)
        names.append(f"the organization {organization_label or organization_id}")
        quota_names.append("api_requests_per_minute" if what == "api" else "predictions_per_minute")
    if token_limit is not None and token_id is not None:
        keys.append(f"{RATE_PREFIX}{what}:token:{token_id}")
        values.append(token_limit)
        names.append("this API token")
        quota_names.append("token_api_requests_per_minute" if what == "api" else "token_predictions_per_minute")
    if not keys:
        return None
    return RateWindows(what, tuple(keys), tuple(values), tuple(names), tuple(quota_names), uuid.uuid4().hex)


def check_rate(
    what: str, *, organization_id: int | None, token_id: int | None = None, organization_label: str = ""
) -> tuple[list[str], str]:
    """Count one request of ``what`` (``api`` or ``predict``) against the organization's and the token's per-minute
    limits; raise ``QuotaExceeded`` (429, Retry-After) when one of them is full. Returns where it was counted (the
    windows' keys and its member), which ``refund`` takes back."""
    windows = rate_windows(
        what, organization_id=organization_id, token_id=token_id, organization_label=organization_label
    )
    if windows is None:
        return [], ""
    refused, wait = _take(list(windows.keys), list(windows.limits), windows.member)
    if refused:
        raise windows.refusal(refused, wait)
    return list(windows.keys), windows.member


def requests_in_window(what: str, *, organization_id: int | None = None, token_id: int | None = None) -> int | None:
    """How many requests the sliding window holds now (None when Redis does not answer)."""
    client = _redis()
    if client is None:
        return None
    key = f"{RATE_PREFIX}{what}:{'org' if token_id is None else 'token'}:{token_id or organization_id}"
    try:
        now_s, now_us = client.time()
        now = now_s * 1000 + now_us // 1000
        return int(client.zcount(key, now - WINDOW_MS + 1, "+inf"))
    except Exception:
        return None


def seconds_until_next_month(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    following = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return max(1, int((following - now).total_seconds()))


def compute_used(organization_id: int) -> dict[str, float]:
    """Compute seconds used this month by device, as the recorder counted them (empty when Redis does not answer;
    ``compute_used_from_database`` is the slow, exact answer).

    The month's counters are read from Redis at most every ``QUOTA_CACHE_SECONDS`` per process, as the limits are:
    a prediction used to send this process' buffered usage events and read the counters on every check, two round
    trips on the request's path for an organization with a compute quota. What this process itself recorded since
    it read them is added at once (``usage.own_compute``); what other processes spent, within the cache time."""
    client = _redis()
    if client is None:
        return compute_used_from_database(organization_id)
    month = usage.month_key()
    own = usage.own_compute(organization_id, month)
    cached = _compute_cache.get((organization_id, month))
    if cached is not None and cached[0] > _clock():
        _until, counted, own_then = cached
        return {
            device: counted.get(device, 0.0) + own.get(device, 0.0) - own_then.get(device, 0.0)
            for device in set(counted) | set(own)
        }
    usage.flush()  # this process' own recent events count too (``own`` was taken before: never counted short)
    try:
        raw = client.hgetall(f"{usage.COMPUTE_PREFIX}{organization_id}:{month}")
    except Exception:
        return {}
    counted = {key.decode(): float(value) for key, value in raw.items()}
    if len(_compute_cache) > 10_000:
        _compute_cache.clear()
    _compute_cache[organization_id, month] = (
        _clock() + float(getattr(settings, "QUOTA_CACHE_SECONDS", 10)),
        counted,
        own,
    )
    return counted


def compute_used_from_database(organization_id: int) -> dict[str, float]:
    """This month's compute seconds by device from the raw events."""
    from django.db.models import Sum

    from apps.analytics.models import UsageEvent

    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    rows = (
        UsageEvent.objects.filter(organization_id=organization_id, created_at__gte=start, compute_seconds__gt=0)
        .values("device")
        .annotate(seconds=Sum("compute_seconds"))
    )
    return {row["device"] or "cpu": float(row["seconds"] or 0.0) for row in rows}


def check_compute(*, organization_id: int, device: str, organization_label: str = "") -> None:
    """Refuse a new run on ``device`` (``gpu``/``cpu``) once the month's compute seconds are spent (429)."""
    limits = limits_for(organization_id)
    limit = getattr(limits, f"{device}_seconds_per_month", None)
    if limit is None:
        return
    used = compute_used(organization_id).get(device, 0.0)
    if used >= limit:
        raise QuotaExceeded(
            f"Compute quota reached: the organization {organization_label or organization_id} has used "
            f"{used:.1f} of its {limit} {device.upper()} seconds this month.",
            wait=seconds_until_next_month(),
            code="compute_quota_exceeded",
            quota=f"{device}_seconds_per_month",
        )


def quota_overview(organization: Any) -> list[dict[str, Any]]:
    """Each limit of an organization with what is used of it now: for its pages and ``GET .../quotas/``."""
    from apps.marketplace import storage

    limits = limits_for(organization.pk)
    used_compute = compute_used(organization.pk)
    rows: list[dict[str, Any]] = []

    def add(name: str, label: str, unit: str, limit: Any, used: Any) -> None:
        percent = None
        if limit and used is not None:
            percent = min(100.0, round(100.0 * float(used) / float(limit), 1))
        rows.append({"quota": name, "label": label, "unit": unit, "limit": limit, "used": used, "percent": percent})

    add(
        "api_requests_per_minute", "API requests per minute", "requests", limits.api_requests_per_minute,
        requests_in_window("api", organization_id=organization.pk),
    )  # fmt: skip
    add(
        "predictions_per_minute", "Predictions per minute", "requests", limits.predictions_per_minute,
        requests_in_window("predict", organization_id=organization.pk),
    )  # fmt: skip
    add("token_api_requests_per_minute", "API requests per minute, per token", "requests",
        limits.token_api_requests_per_minute, None)  # fmt: skip
    add("token_predictions_per_minute", "Predictions per minute, per token", "requests",
        limits.token_predictions_per_minute, None)  # fmt: skip
    for device in ("gpu", "cpu"):
        add(
            f"{device}_seconds_per_month", f"{device.upper()} seconds this month", "seconds",
            getattr(limits, f"{device}_seconds_per_month"), round(used_compute.get(device, 0.0), 3),
        )  # fmt: skip
    report = storage.storage_usage(organization)
    add("storage_bytes", "Storage", "bytes", report.get("quota_bytes"), report.get("used_bytes"))
    return rows


def _token_of(request: Any) -> Any:
    token = getattr(request, "auth", None)
    return token if token is not None and hasattr(token, "prefix") else None


COUNTED_MARK = "_gpux_prediction_counted"
COUNTED_WHERE = "_gpux_prediction_counted_in"


def check_prediction(request: Any, *, organization_id: int, device: str, organization_label: str = "") -> None:
    """Before a prediction starts: the organization's compute allowance on ``device`` (no counting), then one
    prediction against the organization's and the token's per-minute limits. 429 with Retry-After when refused.

    Once per request: the online serving path checks first, and a request it hands to the durable path (no waiting
    slot left in this process) comes here again; what passed once is not checked nor counted a second time."""
    if getattr(request, COUNTED_MARK, None) == organization_id:
        return
    check_compute(organization_id=organization_id, device=device, organization_label=organization_label)
    token = _token_of(request)
    counted = check_rate(
        "predict",
        organization_id=organization_id,
        token_id=token.pk if token is not None else None,
        organization_label=organization_label,
    )
    setattr(request, COUNTED_MARK, organization_id)
    setattr(request, COUNTED_WHERE, counted)


def prediction_windows(
    request: Any, *, organization_id: int, device: str, organization_label: str = ""
) -> RateWindows | None:
    """``check_prediction`` for a path that counts the per-minute limits itself, in the round trip that sends the
    request (the online admission): the compute allowance checked (429), and the windows to count it in (None: none
    applies, or the request was counted already). ``counted_in`` marks it counted once it was."""
    if getattr(request, COUNTED_MARK, None) == organization_id:
        return None
    check_compute(organization_id=organization_id, device=device, organization_label=organization_label)
    token = _token_of(request)
    return rate_windows(
        "predict",
        organization_id=organization_id,
        token_id=token.pk if token is not None else None,
        organization_label=organization_label,
    )


def counted_in(request: Any, *, organization_id: int, windows: RateWindows | None) -> None:
    """The request was counted against ``windows`` (by whoever counted it): neither path counts it again."""
    setattr(request, COUNTED_MARK, organization_id)
    setattr(request, COUNTED_WHERE, (list(windows.keys), windows.member) if windows is not None else ([], ""))


def refund_prediction(request: Any) -> None:
    """Take back the prediction ``check_prediction`` counted for ``request``: it was refused after all (its deployment
    was full), and a refused request is not counted."""
    keys, member = getattr(request, COUNTED_WHERE, None) or ([], "")
    setattr(request, COUNTED_MARK, None)
    setattr(request, COUNTED_WHERE, None)
    client = _redis()
    if client is None or not keys:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key, member)
        pipe.execute()
    except Exception as exc:  # Redis away: the window forgets it within a minute anyway
        logger.warning("Rate limit refund not made (Redis: %s)", exc)


class ApiRateQuota(BaseThrottle):
    """DRF throttle: every authenticated API request counts against the per-minute API quota of the organization
    the caller acts for (the token's bound organization, else the caller's personal one) and of the token."""

    def allow_request(self, request: Any, view: Any) -> bool:
        user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return True
        from apps.accounts.services import acting_organization

        token = _token_of(request)
        organization_id = acting_organization(user, getattr(token, "organization_id", None), None)
        check_rate("api", organization_id=organization_id, token_id=token.pk if token is not None else None)
        return True


__all__ = [
    "ApiRateQuota",
    "Limits",
    "QuotaExceeded",
    "RateWindows",
    "check_compute",
    "check_prediction",
    "check_rate",
    "counted_in",
    "forget_cached_limits",
    "limits_for",
    "prediction_windows",
    "quota_overview",
    "rate_windows",
    "refund_prediction",
]
