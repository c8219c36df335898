"""Predictions as the live pages count them: an organization's monitoring page (``apps.analytics.dashboards``), a
deployment's live status and the deployments list (``apps.inference.views``).

Each prediction is counted once:

* an **online** prediction (``apps/inference/online/``) writes no Job row: its one record is its usage event of kind
  ``prediction`` (written by the web process that answered it, through the stream and the drain);
* a **durable** prediction has its Job and InferenceJob rows from the moment it is asked, and, once it ended, a usage
  event of kind ``job`` as well. The pages read its rows (their status while it waits or runs, its latency from the
  request to the answer, its error, a link to its page) and never its ``job`` event, so it is not counted twice.

"Live": usage events reach the database through the periodic drain (every ``USAGE_DRAIN_INTERVAL_SECONDS``). Before a
live page reads them, ``catch_up()`` drains what waits in the stream, for at most ``USAGE_LIVE_DRAIN_SECONDS`` (one
drain at a time: when the periodic one is running, the page does not wait for it), and only when at most one drain
batch (``USAGE_DRAIN_BATCH_SIZE``) waits: a larger backlog means the periodic drain is behind, and is left to it. What
is left (such a backlog, a drain already running, or Redis not answering) is counted by a later refresh; the page says
how many records were still waiting (docs/admin/monitoring.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from apps.analytics.models import Outcome, UsageEvent, UsageKind

logger = logging.getLogger(__name__)


def catch_up() -> int:
    """Drain the usage records waiting in the stream, briefly; returns how many still wait (0 when all are in)."""
    from apps.analytics import drain, usage

    seconds = float(getattr(settings, "USAGE_LIVE_DRAIN_SECONDS", 1.0))
    # A backlog past one batch means the periodic drain is behind: pages, polled every few seconds by every viewer,
    # must not each pile a second of drain onto it then; they show what is in and say how much waits.
    small = int(getattr(settings, "USAGE_DRAIN_BATCH_SIZE", 5000))
    try:
        usage.flush()  # what this process has buffered (at most USAGE_RECORD_BUFFER_SECONDS of its requests)
        waiting = drain.pending_in_stream()
        if 0 < waiting <= small and seconds > 0:
            drain.drain_usage_stream(max_seconds=seconds)
            waiting = drain.pending_in_stream()
        return waiting
    except Exception:  # Redis or the drain failing must not take the page down: it shows what is in the database
        logger.warning("Could not drain the usage stream before a live page", exc_info=True)
        return 0


def online_predictions(**filters: Any) -> QuerySet[UsageEvent]:
    """The usage records of online predictions (kind ``prediction``), filtered by ``filters``."""
    return UsageEvent.objects.filter(kind=UsageKind.PREDICTION, **filters)


def failed(outcome: str) -> bool:
    """An online prediction that was not answered: it failed on the worker, or the worker refused its inputs (a
    durable prediction that does either fails its job, and counts as failed)."""
    return outcome != Outcome.OK


def online_requests_by_deployment(since: datetime) -> Any:
    """An expression for ``Deployment.objects.annotate()``: how many online predictions each deployment answered
    since ``since`` (a subquery on the index by deployment, kind and time; 0 when none)."""
    counted = (
        online_predictions(deployment_id=OuterRef("pk"), created_at__gte=since)
        .order_by()
        .values("deployment_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
