"""Scrape-time families of the web's ``/metrics`` that read the portal's data and the usage stream (registered in
``AnalyticsConfig.ready``):

* ``gpux_organization_storage_bytes{organization}``: what each organization stores, as the storage quota counts it
  (the distinct blobs its versions reference), for the ``METRICS_STORAGE_TOP_ORGANIZATIONS`` largest, the rest summed
  under ``(other)`` (so at most N + 1 series, however many organizations). One grouped query, at most every
  ``METRICS_STORAGE_REFRESH_SECONDS`` for all web processes together (the answer is kept in the cache).
* ``gpux_usage_stream_entries``, ``gpux_usage_stream_pending_entries``, ``gpux_usage_stream_oldest_entry_age_seconds``
  and ``gpux_usage_stream_max_entries``: the drain's backlog (``apps.analytics.drain``), read from Redis at every
  scrape in one pipelined round trip (``XLEN``, the first entry's id, the group's ``XPENDING`` summary); absent when
  Redis does not answer. The alerts ``GpuxUsageDrainBehind`` and ``GpuxUsageStreamNearCap`` watch them.
* ``gpux_audit_chains{result}`` and ``gpux_audit_chain_verification_timestamp_seconds``: the last verification of
  every audit chain (``audit.verify_audit_chains``, periodic, or ``manage.py verify_audit_chain --all``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.core import metrics

STORAGE_KEY = "gpux:metrics:organization-storage"


def storage_by_organization() -> list[tuple[str, int]]:
    """(organization slug, bytes stored) of every organization that stores something, largest first."""
    from apps.marketplace.models import Blob, Model, ModelVersion, VersionFile
    from apps.organizations.models import Organization

    quote = connection.ops.quote_name
    files, versions, models_, blobs = (quote(m._meta.db_table) for m in (VersionFile, ModelVersion, Model, Blob))
    organizations = quote(Organization._meta.db_table)
    sql = (
        f"SELECT o.slug, SUM(b.size) FROM (SELECT DISTINCT m.organization_id AS organization_id, f.blob_id AS blob_id "  # noqa: S608 - table names from the models
        f"FROM {files} f JOIN {versions} v ON v.id = f.version_id JOIN {models_} m ON m.id = v.model_id) d "
        f"JOIN {blobs} b ON b.id = d.blob_id JOIN {organizations} o ON o.id = d.organization_id "
        "GROUP BY o.slug ORDER BY SUM(b.size) DESC, o.slug"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [(slug, int(total or 0)) for slug, total in cursor.fetchall()]


def storage_top(limit: int | None = None) -> list[tuple[str, int]]:
    """The largest organizations and ``(other)`` for the rest; from the cache while it is fresh."""
    limit = settings.METRICS_STORAGE_TOP_ORGANIZATIONS if limit is None else limit
    top = cache.get(STORAGE_KEY)
    if top is None:
        rows = storage_by_organization()
        top = rows[:limit]
        rest = sum(size for _slug, size in rows[limit:])
        if len(rows) > limit:
            top.append((metrics.OTHER, rest))
        cache.set(STORAGE_KEY, top, timeout=max(1, settings.METRICS_STORAGE_REFRESH_SECONDS))
    return [tuple(item) for item in top]


def storage_families() -> Iterable[metrics.Metric]:
    yield metrics.family("gpux_organization_storage_bytes", [((slug,), size) for slug, size in storage_top()])


def audit_families() -> Iterable[metrics.Metric]:
    from apps.audit.verification import last_verification

    summary = last_verification()
    if summary is None:
        return
    yield metrics.family(
        "gpux_audit_chains", [(("intact",), summary.get("intact", 0)), (("broken",), summary.get("broken", 0))]
    )
    yield metrics.family("gpux_audit_chain_verification_timestamp_seconds", [((), summary.get("at", 0))])


def usage_stream_backlog() -> dict[str, float] | None:
    """The usage stream's length, pending (read, not acknowledged) entries and the age of its oldest entry (its id is
    Redis' clock in milliseconds, compared with Redis' own clock); None without Redis or when it does not answer."""
    from apps.analytics import drain, usage

    client = usage.client()
    if client is None:
        return None
    try:
        pipe = client.pipeline(transaction=False)
        pipe.time()
        pipe.xlen(usage.STREAM)
        pipe.xrange(usage.STREAM, count=1)
        pipe.xpending(usage.STREAM, drain.GROUP)
        (now_s, now_us), length, first, pending = pipe.execute(raise_on_error=False)
    except Exception:  # Redis away: no sample rather than a failed scrape
        return None
    if isinstance(pending, Exception):  # no group yet: the drain never ran, nothing was read
        pending = {"pending": 0}
    if isinstance(length, Exception) or isinstance(first, Exception):
        return None
    age = 0.0
    if first:
        first_ms = int(first[0][0].split(b"-")[0])
        age = max(0.0, (now_s * 1000 + now_us / 1000 - first_ms) / 1000)
    return {"entries": int(length), "pending": int(pending.get("pending") or 0), "oldest_age": round(age, 3)}


def usage_stream_families() -> Iterable[metrics.Metric]:
    backlog = usage_stream_backlog()
    if backlog is None:
        return
    yield metrics.family("gpux_usage_stream_entries", [((), backlog["entries"])])
    yield metrics.family("gpux_usage_stream_pending_entries", [((), backlog["pending"])])
    yield metrics.family("gpux_usage_stream_oldest_entry_age_seconds", [((), backlog["oldest_age"])])
    yield metrics.family(
        "gpux_usage_stream_max_entries", [((), int(getattr(settings, "USAGE_STREAM_MAX_LENGTH", 2_000_000)))]
    )


def register() -> None:
    metrics.register_collector(storage_families)
    metrics.register_collector(audit_families)
    metrics.register_collector(usage_stream_families)
