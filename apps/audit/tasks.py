"""The audit export job: an organization's audit trail as a CSV or JSON lines file, with progress.

Started through ``POST /api/v1/jobs/`` with ``{"kind": "audit.export", "organization": "<slug>",
"params": {"format": "csv" | "jsonl", "filters": {...}}}``; the filters are those of the audit trail's list
(``AuditEventFilterSet``). The file lands in the default storage under ``jobs/<uuid>/`` and is served by
``GET /api/v1/jobs/<uuid>/download/``.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

from celery import shared_task
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db.models import Max, QuerySet
from django.utils import timezone
from rest_framework import serializers

from apps.accounts.models import TokenScope
from apps.audit.exports import FORMATS, iter_export_lines
from apps.audit.filtersets import AuditEventFilterSet
from apps.audit.models import AuditEvent
from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job
from apps.core.lookup import AUDIT, may_in_organization
from apps.core.tasks import JobTask, register_job_task

logger = logging.getLogger(__name__)

# How many lines between two progress reports (the reporter also throttles by time).
PROGRESS_EVERY = 500


class AuditExportParamsSerializer(serializers.Serializer):
    """``{"format": "csv" | "jsonl", "filters": {"action": ..., "actor": ..., "since": ..., ...}}``."""

    format = serializers.ChoiceField(choices=sorted(FORMATS), default="csv")
    filters = serializers.DictField(required=False, default=dict, child=serializers.CharField(allow_blank=True))

    def validate_filters(self, filters: dict) -> dict:
        known = set(AuditEventFilterSet.base_filters)
        unknown = sorted(set(filters) - known)
        if unknown:
            raise serializers.ValidationError(
                f"Unknown filter(s) {', '.join(unknown)}; use {', '.join(sorted(known))}.", code="unknown_filter"
            )
        filterset = AuditEventFilterSet(data=filters, queryset=AuditEvent.objects.none())
        if not filterset.is_valid():
            raise serializers.ValidationError(
                {name: [str(message) for message in messages] for name, messages in filterset.errors.items()}
            )
        return {name: value for name, value in filters.items() if value != ""}


def organization_events(organization_id: int, filters: dict) -> QuerySet[AuditEvent]:
    """The organization's events matching ``filters``, oldest first."""
    events = AuditEvent.objects.filter(organization_id=organization_id)
    filterset = AuditEventFilterSet(data=filters, queryset=events)
    if not filterset.is_valid():  # validated when the job was started; a changed filter set fails loudly
        raise ValueError(f"Invalid filters: {filterset.errors.as_json()}")
    return filterset.qs.order_by("seq")


class ExportAuditTrail(JobTask):
    """Write the organization's (filtered) audit trail to a file; the result says rows, bytes and file name."""

    name = "audit.export_audit_trail"
    kind = "audit.export"
    label = "Audit trail export"
    job_queue = "default"
    job_time_limit = 3600
    progress_interval = 0.5
    user_startable = True
    organization_action = AUDIT  # the audit trail is for the organization's admins
    required_scope = TokenScope.ADMIN

    def clean_params(self, params: Any, *, organization: Any, user: Any) -> dict:
        serializer = AuditExportParamsSerializer(data=params if params is not None else {})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        # The export was allowed when it was started; the creator must still be an admin when it runs.
        if job.creator is None or not may_in_organization(job.creator, job.organization, AUDIT):
            raise PermissionDenied("The job's creator is no longer an admin of the organization.")
        export_format = job.params.get("format", "csv")
        content_type, extension = FORMATS[export_format]
        events = organization_events(job.organization_id, job.params.get("filters") or {})
        # A snapshot: events recorded while the export runs (its own job events included) are left out.
        last_seq = events.aggregate(last=Max("seq"))["last"] or 0
        events = events.filter(seq__lte=last_seq)
        total = events.count()
        progress(0.0, f"Exporting {total} events")
        header_lines = 1 if export_format == "csv" else 0
        rows = size = 0
        with tempfile.TemporaryFile() as spool:
            for number, line in enumerate(iter_export_lines(events, export_format=export_format)):
                data = line.encode()
                spool.write(data)
                size += len(data)
                if number >= header_lines:
                    rows += 1
                    if rows % PROGRESS_EVERY == 0:
                        progress(rows / max(total, 1), f"{rows} of {total} events")
            spool.seek(0)
            stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
            filename = f"audit-{job.organization.slug}-{stamp}.{extension}"
            job.result_file.save(filename, File(spool), save=False)
        progress(1.0, f"Exported {rows} events")
        return {
            "rows": rows,
            "bytes": size,
            "file": filename,
            "format": export_format,
            "content_type": content_type,
            "last_seq": last_seq,
        }


export_audit_trail = register_job_task(ExportAuditTrail)


@shared_task(name="audit.verify_audit_chains", ignore_result=True)
def verify_audit_chains() -> dict:
    """Periodic (celery beat, ``AUDIT_VERIFY_INTERVAL_SECONDS``): verify every audit chain and keep the outcome for
    ``/metrics`` (``gpux_audit_chains{result="broken"}`` is what the AuditChainBroken alert watches)."""
    from apps.audit.verification import record_verification, verify_all_chains

    results = verify_all_chains()
    for result in results:
        if not result.ok:
            logger.error("Audit chain verification: %s", result)
    return record_verification(results)
