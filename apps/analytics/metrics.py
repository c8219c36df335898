"""Scrape-time families of the web's ``/metrics`` that read the portal's data (registered in ``AnalyticsConfig.ready``):

* ``gpux_organization_storage_bytes{organization}``: what each organization stores, as the storage quota counts it
  (the distinct blobs its versions reference), for the ``METRICS_STORAGE_TOP_ORGANIZATIONS`` largest, the rest summed
  under ``(other)`` (so at most N + 1 series, however many organizations). One grouped query, at most every
  ``METRICS_STORAGE_REFRESH_SECONDS`` for all web processes together (the answer is kept in the cache).
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


def register() -> None:
    metrics.register_collector(storage_families)
    metrics.register_collector(audit_families)
