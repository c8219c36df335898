"""What the live dashboards show (docs/operator/monitoring.md, docs/admin/monitoring.md).

* **Operations** (staff): read from the metrics, as Grafana would read them from Prometheus. The queues and the
  workers come from the broker and the workers' heartbeats; request latency, error rate and throughput from this
  web host's processes (their multiprocess files); inference latency and slowest models from the snapshots the
  workers put in their heartbeats; GPU memory from the same heartbeats. Rates and percentiles are over a window:
  each refresh keeps a snapshot in a short ring in the cache (``OPS_RING_SECONDS``), and the difference between
  the newest and the oldest is what happened in between (a restarted process counts from zero, as in Prometheus).
* **An organization** (its admins): read from the database, since the metrics carry no organization: its jobs and
  the predictions of the last hour that count against it (on its deployments, or direct runs made in its name),
  online ones from their usage records and durable ones from their job rows, each once (``apps.analytics.live``,
  which drains the waiting usage records first); at most ``ORG_SAMPLE_ROWS`` of each, newest first, through the
  indexes by (organization, kind, time) and the jobs' (organization, time); their latency percentiles by model,
  throughput and errors by minute, what waits in the queues, its recent failures and its storage.
"""

from __future__ import annotations

import itertools
import socket
import time
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone

from apps.analytics import live
from apps.core import metrics
from apps.core import metrics_snapshot as snap
from apps.core.jobs import Job, JobStatus

OPS_RING_KEY = "gpux:dashboard:operations:ring"
OPS_RING_SECONDS = 300  # the window rates and percentiles are read over
OPS_SAMPLE_EVERY = 4.0  # a refresh within this of the last sample reads the ring without adding to it
ORG_WINDOW = timedelta(hours=1)
ORG_SAMPLE_ROWS = 5000
QUANTILES = (0.5, 0.95, 0.99)
REQUESTS = "django_http_requests_latency_seconds_by_view_method"
RESPONSES = "django_http_responses_total_by_status_view_method"
INFERENCE = "gpux_inference_latency_seconds"
INFERENCE_ERRORS = "gpux_inference_errors"
SLOWEST = 5
FAILURES = 10


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _percentiles(histogram: dict[str, Any] | None) -> dict[str, float | None]:
    return {f"p{round(q * 100)}": _ms(snap.quantile(q, histogram)) for q in QUANTILES}


# --- operations ---------------------------------------------------------------------------------------------------


def current_sources(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """The snapshots of now: this web host's processes and each live worker's heartbeat."""
    sources = {f"web:{socket.gethostname()}": snap.snapshot(metrics.process_registry())}
    for record in workers:
        if record.get("metrics"):
            sources[f"worker:{record['name']}"] = record["metrics"]
    return sources


def _ring(now: float, sources: dict[str, Any]) -> list[dict[str, Any]]:
    ring = [sample for sample in (cache.get(OPS_RING_KEY) or []) if now - sample["t"] <= OPS_RING_SECONDS]
    if not ring or now - ring[-1]["t"] >= OPS_SAMPLE_EVERY:
        ring.append({"t": now, "sources": sources})
        cache.set(OPS_RING_KEY, ring, timeout=OPS_RING_SECONDS * 2)
    else:
        ring = [*ring[:-1], {"t": now, "sources": sources}] if now > ring[-1]["t"] else ring
    return ring


def _between(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """What every source did between two samples, added up."""
    return snap.merge(snap.increase(shot, old.get(source)) for source, shot in new.items())


def _status_counts(shot: dict[str, Any]) -> tuple[float, float]:
    responses = snap.series_of(shot, RESPONSES)
    total = sum(responses.values())
    errors = sum(value for status, value in responses.items() if status.startswith("5"))
    return total, errors


def _window_stats(happened: dict[str, Any], seconds: float) -> dict[str, Any]:
    total, errors = _status_counts(happened)
    requests = snap.total_histogram(happened, REQUESTS)
    inference = snap.total_histogram(happened, INFERENCE)
    failed_predictions = sum(snap.series_of(happened, INFERENCE_ERRORS).values())
    predictions = (inference or {}).get("count", 0.0)
    seconds = max(seconds, 1e-9)
    return {
        "seconds": round(seconds),
        "requests": {
            "rate": round(total / seconds, 2),
            "error_ratio": round(errors / total, 4) if total else 0.0,
            **_percentiles(requests),
        },
        "inference": {
            "rate": round(predictions / seconds, 2),
            "error_ratio": round(failed_predictions / (predictions + failed_predictions), 4)
            if predictions + failed_predictions
            else 0.0,
            **_percentiles(inference),
        },
    }


def _slowest_models(happened: dict[str, Any]) -> list[dict[str, Any]]:
    errors = snap.series_of(happened, INFERENCE_ERRORS)
    rows = []
    for model, histogram in snap.series_of(happened, INFERENCE).items():
        if histogram.get("count", 0) <= 0:
            continue
        rows.append(
            {
                "model": model or "—",
                "count": int(histogram["count"]),
                "errors": int(errors.get(model, 0)),
                **_percentiles(histogram),
            }
        )
    return sorted(rows, key=lambda row: row["p95"] or 0, reverse=True)[:SLOWEST]


def _series(ring: list[dict[str, Any]]) -> dict[str, list]:
    """Per interval between two samples of the ring: requests and errors per second, p95 latencies."""
    series: dict[str, list] = {key: [] for key in ("t", "requests", "errors", "request_p95", "inference_p95")}
    for old, new in itertools.pairwise(ring):
        seconds = max(new["t"] - old["t"], 1e-9)
        happened = _between(new["sources"], old["sources"])
        total, errors = _status_counts(happened)
        series["t"].append(time.strftime("%H:%M:%S", time.gmtime(new["t"])))
        series["requests"].append(round(total / seconds, 2))
        series["errors"].append(round(errors / seconds, 3))
        series["request_p95"].append(_ms(snap.quantile(0.95, snap.total_histogram(happened, REQUESTS))))
        series["inference_p95"].append(_ms(snap.quantile(0.95, snap.total_histogram(happened, INFERENCE))))
    return series


def recent_failures(jobs: Any) -> list[Job]:
    return list(jobs.select_related("organization")[:FAILURES])


def _worker_row(record: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "name": record["name"],
        "queues": record.get("queues", []),
        "seen": round(max(0.0, now - float(record["at"])), 1),
        "gpus": len(record.get("gpus") or []),
    }


def operations_overview(now: float | None = None) -> dict[str, Any]:
    """Everything the operations dashboard shows, for one refresh."""
    now = time.time() if now is None else now
    depths = metrics.queue_depths(now)
    workers = metrics.live_workers(now)
    up = metrics.workers_up(now)
    queues = []
    for queue in metrics.job_queues():
        messages, oldest = depths.get(queue, (0, 0.0))
        queues.append({"queue": queue, "messages": messages, "oldest": round(oldest, 1), "workers": up.get(queue, 0)})
    ring = _ring(now, current_sources(workers))
    first, last = ring[0], ring[-1]
    happened = _between(last["sources"], first["sources"]) if len(ring) > 1 else {}
    gpus = [
        {**device, "worker": record["name"], "memory_ratio": device["memory_used"] / max(1, device["memory_total"])}
        for record in workers
        for device in record.get("gpus") or []
    ]
    # Failed jobs, newest first, through the (status, heartbeat_at) index: a failure writes its heartbeat.
    failures = recent_failures(Job.objects.filter(status=JobStatus.FAILED).order_by("-heartbeat_at", "-id"))
    return {
        "queues": queues,
        "workers": [
            {
                "name": r["name"],
                "queues": r.get("queues", []),
                "seen": round(now - float(r["at"]), 1),
                "gpus": len(r.get("gpus") or []),
            }
            for r in workers
        ],
        "window": _window_stats(happened, last["t"] - first["t"]) if happened else None,
        "slowest_models": _slowest_models(happened) if happened else [],
        "gpus": gpus,
        "failures": failures,
        "chart_data": {
            "kind": "operations",
            "series": _series(ring),
            "queues": {"labels": [q["queue"] for q in queues], "messages": [q["messages"] for q in queues]},
            "gpus": {
                "labels": [f"{g['worker']} #{g['gpu']}" for g in gpus],
                "used": [round(g["memory_used"] / 1024**3, 2) for g in gpus],
                "total": [round(g["memory_total"] / 1024**3, 2) for g in gpus],
            },
        },
    }


# --- an organization ----------------------------------------------------------------------------------------------


def _quantiles_of(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"p{round(q * 100)}": None for q in QUANTILES}
    ordered = sorted(values)
    result = {}
    for q in QUANTILES:
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        result[f"p{round(q * 100)}"] = _ms(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return result


def _durable_predictions(organization: Any, since: Any) -> list[dict[str, Any]]:
    """The organization's durable predictions of the window from their job rows (their ``job`` usage events are not
    read: apps.analytics.live), newest first, at most ORG_SAMPLE_ROWS, on the jobs' (organization, time) index."""
    from apps.inference.models import InferenceJob

    found = (
        InferenceJob.objects.filter(job__organization=organization, created_at__gte=since)
        .order_by("-created_at")
        .values(
            "created_at",
            "job__status",
            "job__created_at",
            "job__finished_at",
            "version__model__organization__slug",
            "version__model__name",
            "deployment__slug",
        )[:ORG_SAMPLE_ROWS]
    )
    rows = []
    for row in found:
        finished, status = row["job__finished_at"], row["job__status"]
        rows.append(
            {
                "at": row["created_at"],
                "model": f"{row['version__model__organization__slug']}/{row['version__model__name']}",
                "deployment": row["deployment__slug"],
                "finished_at": finished,
                "succeeded": status == JobStatus.SUCCEEDED if finished is not None else None,
                "failed": status == JobStatus.FAILED,
                "seconds": max(0.0, (finished - row["job__created_at"]).total_seconds()) if finished else None,
            }
        )
    return rows


def _online_predictions(organization: Any, since: Any) -> list[dict[str, Any]]:
    """The organization's online predictions of the window from their usage records, newest first, at most
    ORG_SAMPLE_ROWS, on the events' (organization, kind, time) index; their models and deployments in two queries."""
    from apps.inference.models import Deployment
    from apps.marketplace.models import Model

    found = list(
        live.online_predictions(organization=organization, created_at__gte=since)
        .order_by("-created_at")
        .values("created_at", "outcome", "latency_ms", "model_id", "deployment_id")[:ORG_SAMPLE_ROWS]
    )
    model_ids = {row["model_id"] for row in found if row["model_id"]}
    names = {
        pk: f"{owner}/{name}"
        for pk, owner, name in Model.objects.filter(pk__in=model_ids).values_list("pk", "organization__slug", "name")
    }
    deployment_ids = {row["deployment_id"] for row in found if row["deployment_id"]}
    slugs = dict(Deployment.objects.filter(pk__in=deployment_ids).values_list("pk", "slug")) if deployment_ids else {}
    rows = []
    for row in found:
        answered = not live.failed(row["outcome"])
        rows.append(
            {
                "at": row["created_at"],
                "model": names.get(row["model_id"], "(removed model)"),
                "deployment": slugs.get(row["deployment_id"]),
                "finished_at": row["created_at"],  # recorded when the answer (or the failure) was sent
                "succeeded": answered,
                "failed": not answered,
                "seconds": row["latency_ms"] / 1000 if answered and row["latency_ms"] is not None else None,
            }
        )
    return rows


def organization_overview(organization: Any, now: Any = None) -> dict[str, Any]:
    """Everything an organization's monitoring page shows: its own jobs and predictions only.

    Its predictions are those that count against it (on its deployments, or direct runs made in its name), online and
    durable, each once (apps.analytics.live); the usage records still waiting in the stream are drained first."""
    from apps.marketplace.storage import storage_usage

    waiting_records = live.catch_up()
    now = now or timezone.now()
    since = now - ORG_WINDOW
    jobs = Job.objects.filter(organization=organization)
    recent = jobs.filter(created_at__gte=since)
    by_status = dict(recent.values_list("status").annotate(n=Count("id")).order_by())
    by_kind = list(recent.values("kind").annotate(n=Count("id")).order_by("-n", "kind")[:10])
    waiting = jobs.filter(status=JobStatus.QUEUED).aggregate(n=Count("id"), oldest=Min("created_at"))
    rows = sorted(
        _durable_predictions(organization, since) + _online_predictions(organization, since),
        key=lambda row: row["at"],
        reverse=True,
    )[:ORG_SAMPLE_ROWS]
    models: dict[str, dict[str, Any]] = {}
    minutes: dict[str, dict[str, Any]] = {}
    latencies: list[float] = []
    for row in rows:
        entry = models.setdefault(
            row["model"], {"model": row["model"], "latencies": [], "count": 0, "errors": 0, "deployments": set()}
        )
        if row["deployment"]:
            entry["deployments"].add(row["deployment"])
        finished = row["finished_at"]
        if finished is None:
            continue
        minute = finished.strftime("%H:%M")
        bucket = minutes.setdefault(minute, {"succeeded": 0, "failed": 0, "latencies": []})
        if row["succeeded"]:
            entry["count"] += 1
            bucket["succeeded"] += 1
            if row["seconds"] is not None:
                entry["latencies"].append(row["seconds"])
                latencies.append(row["seconds"])
                bucket["latencies"].append(row["seconds"])
        elif row["failed"]:
            entry["errors"] += 1
            bucket["failed"] += 1
    rows_by_model = [
        {
            "model": entry["model"],
            "count": entry["count"],
            "errors": entry["errors"],
            "deployments": sorted(entry["deployments"]),
            **_quantiles_of(entry["latencies"]),
        }
        for entry in models.values()
    ]
    slowest = sorted(rows_by_model, key=lambda row: row["p95"] or 0, reverse=True)[:SLOWEST]
    labels = sorted(minutes)
    total = sum(m["succeeded"] + m["failed"] for m in minutes.values())
    failed = sum(m["failed"] for m in minutes.values())
    return {
        "window_minutes": int(ORG_WINDOW.total_seconds() // 60),
        "sampled": len(rows),
        "sample_limit": ORG_SAMPLE_ROWS,
        "records_waiting": waiting_records,
        "checked_at": timezone.now(),
        "jobs": {
            "total": sum(by_status.values()),
            "by_status": {status: by_status.get(status, 0) for status in JobStatus.values},
            "by_kind": by_kind,
        },
        "waiting": {
            "count": waiting["n"],
            "oldest": round((now - waiting["oldest"]).total_seconds(), 1) if waiting["oldest"] else 0.0,
        },
        "predictions": {
            "count": total,
            "error_ratio": round(failed / total, 4) if total else 0.0,
            **_quantiles_of(latencies),
        },
        "slowest_models": slowest,
        "failures": recent_failures(jobs.filter(status=JobStatus.FAILED).order_by("-created_at")),
        "storage": storage_usage(organization),
        "chart_data": {
            "kind": "organization",
            "series": {
                "t": labels,
                "succeeded": [minutes[m]["succeeded"] for m in labels],
                "failed": [minutes[m]["failed"] for m in labels],
                "p95": [_quantiles_of(minutes[m]["latencies"])["p95"] for m in labels],
            },
        },
    }
