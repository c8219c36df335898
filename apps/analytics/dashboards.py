"""What the live dashboards show (docs/operator/monitoring.md, docs/admin/monitoring.md).

* **Operations** (staff): read from the metrics, as Grafana would read them from Prometheus. The queues and the
  workers come from the broker and the workers' heartbeats; request latency, error rate and throughput from this
  web host's processes (their multiprocess files); inference latency and slowest models from the snapshots the
  workers put in their heartbeats; GPU memory from the same heartbeats. Rates and percentiles are over a window:
  each refresh keeps a snapshot in a short ring in the cache (``OPS_RING_SECONDS``), and the difference between
  the newest and the oldest is what happened in between (a restarted process counts from zero, as in Prometheus).
* **An organization** (its admins): read from the database, since the metrics carry no organization: its jobs and
  the predictions of the last hour on its deployments, of its models or made in its name (at most
  ``ORG_SAMPLE_ROWS``, newest first, through the indexes by deployment, version and organization with time), their
  latency percentiles by model, throughput and errors by minute, what waits in the queues, its recent failures and
  its storage.
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


def organization_overview(organization: Any, now: Any = None) -> dict[str, Any]:
    """Everything an organization's monitoring page shows: its own jobs and predictions only."""
    from apps.inference.models import InferenceJob
    from apps.marketplace.storage import storage_usage

    now = now or timezone.now()
    since = now - ORG_WINDOW
    jobs = Job.objects.filter(organization=organization)
    recent = jobs.filter(created_at__gte=since)
    by_status = dict(recent.values_list("status").annotate(n=Count("id")).order_by())
    by_kind = list(recent.values("kind").annotate(n=Count("id")).order_by("-n", "kind")[:10])
    waiting = jobs.filter(status=JobStatus.QUEUED).aggregate(n=Count("id"), oldest=Min("created_at"))
    # Predictions on its deployments, of its models, and made in its name: three queries on the indexes by
    # (deployment, time), (version, time) and the jobs' (organization, time), each at most ORG_SAMPLE_ROWS.
    recent_predictions = InferenceJob.objects.filter(created_at__gte=since).order_by("-created_at")
    fields = (
        "job_id",
        "created_at",
        "job__status",
        "job__created_at",
        "job__finished_at",
        "version__model__organization__slug",
        "version__model__name",
        "deployment__slug",
    )
    found: dict[int, dict[str, Any]] = {}
    for scope in (
        {"deployment__organization": organization},
        {"version__model__organization": organization},
        {"job__organization": organization},
    ):
        for row in recent_predictions.filter(**scope).values(*fields)[:ORG_SAMPLE_ROWS]:
            found[row["job_id"]] = row
    rows = sorted(found.values(), key=lambda row: row["created_at"], reverse=True)[:ORG_SAMPLE_ROWS]
    models: dict[str, dict[str, Any]] = {}
    minutes: dict[str, dict[str, Any]] = {}
    latencies: list[float] = []
    for row in rows:
        name = f"{row['version__model__organization__slug']}/{row['version__model__name']}"
        entry = models.setdefault(name, {"model": name, "latencies": [], "count": 0, "errors": 0, "deployments": set()})
        if row["deployment__slug"]:
            entry["deployments"].add(row["deployment__slug"])
        finished = row["job__finished_at"]
        if finished is None:
            continue
        minute = finished.strftime("%H:%M")
        bucket = minutes.setdefault(minute, {"succeeded": 0, "failed": 0, "latencies": []})
        if row["job__status"] == JobStatus.SUCCEEDED:
            seconds = max(0.0, (finished - row["job__created_at"]).total_seconds())
            entry["latencies"].append(seconds)
            entry["count"] += 1
            latencies.append(seconds)
            bucket["succeeded"] += 1
            bucket["latencies"].append(seconds)
        elif row["job__status"] == JobStatus.FAILED:
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
