"""Compact snapshots of the metrics the live dashboards read, and the arithmetic Prometheus would do on them.

A worker's heartbeat carries a snapshot of its processes' metrics (``apps.core.metrics.WorkerMetricsServer``); the
web adds its own. The operations dashboard keeps a short ring of such snapshots and reads rates and percentiles
from the difference between two of them, as ``rate()`` and ``histogram_quantile()`` do over a window: a counter
that went down (a restarted process) counts from zero again.

A snapshot is JSON: ``{family: {"type": "counter" | "histogram", "series": {key: value}}}`` where ``key`` joins
the kept label values with ``|`` and ``value`` is a number (counter) or ``{"buckets": [[le, count], ...], "sum": s,
"count": n}`` (histogram, cumulative buckets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

# family -> (type, the labels kept; the others are summed away)
SNAPSHOT_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "django_http_requests_latency_seconds_by_view_method": ("histogram", ()),
    "django_http_responses_total_by_status_view_method": ("counter", ("status",)),
    "gpux_inference_latency_seconds": ("histogram", ("model",)),
    "gpux_inference_errors": ("counter", ("model",)),
    "gpux_job_outcomes": ("counter", ("kind", "outcome")),
}
SEPARATOR = "|"


def _family_name(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def snapshot(registry: Any, families: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> dict[str, Any]:
    """The ``families`` (``SNAPSHOT_FAMILIES``) of ``registry``, their labels reduced to those kept."""
    families = SNAPSHOT_FAMILIES if families is None else families
    result: dict[str, Any] = {}
    for metric in registry.collect():
        name = _family_name(metric.name)
        if name not in families:
            continue
        kind, keep = families[name]
        series: dict[str, Any] = {}
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            key = SEPARATOR.join(sample.labels.get(label, "") for label in keep)
            if kind == "counter":
                series[key] = series.get(key, 0.0) + sample.value
                continue
            entry = series.setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
            if sample.name.endswith("_bucket"):
                le = sample.labels["le"]
                entry["buckets"][le] = entry["buckets"].get(le, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] += sample.value
            elif sample.name.endswith("_count"):
                entry["count"] += sample.value
        if kind == "histogram":
            for entry in series.values():
                entry["buckets"] = sorted(([_le(le), count] for le, count in entry["buckets"].items()))
        result[name] = {"type": kind, "series": series}
    return for_json(result)


def _le(value: str | float) -> float:
    return math.inf if value in ("+Inf", "inf", math.inf) else float(value)


def _json_le(value: float) -> float | str:
    return "+Inf" if value == math.inf else value


def _add_histograms(a: dict[str, Any], b: dict[str, Any], sign: float = 1.0) -> dict[str, Any]:
    buckets: dict[float, float] = {}
    for le, count in a["buckets"]:
        buckets[_le(le)] = buckets.get(_le(le), 0.0) + count
    for le, count in b["buckets"]:
        buckets[_le(le)] = buckets.get(_le(le), 0.0) + sign * count
    return {
        "buckets": sorted([le, count] for le, count in buckets.items()),
        "sum": a["sum"] + sign * b["sum"],
        "count": a["count"] + sign * b["count"],
    }


def merge(snapshots: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """The sum of several snapshots (several workers, or the web and the workers)."""
    total: dict[str, Any] = {}
    for shot in snapshots:
        for name, fam in (shot or {}).items():
            target = total.setdefault(name, {"type": fam["type"], "series": {}})
            for key, value in fam["series"].items():
                if fam["type"] == "counter":
                    target["series"][key] = target["series"].get(key, 0.0) + value
                elif key in target["series"]:
                    target["series"][key] = _add_histograms(target["series"][key], value)
                else:
                    target["series"][key] = _add_histograms({"buckets": [], "sum": 0.0, "count": 0.0}, value)
    return total


def increase(new: dict[str, Any] | None, old: dict[str, Any] | None) -> dict[str, Any]:
    """What happened between ``old`` and ``new`` (two snapshots of one source): ``new - old``, series by series; a
    series that went down (its process restarted) counts from zero, as Prometheus' ``increase()`` does."""
    result: dict[str, Any] = {}
    for name, fam in (new or {}).items():
        before = ((old or {}).get(name) or {}).get("series", {})
        series: dict[str, Any] = {}
        for key, value in fam["series"].items():
            previous = before.get(key)
            if fam["type"] == "counter":
                series[key] = value - previous if previous is not None and value >= previous else value
            elif previous is not None and value["count"] >= previous["count"]:
                series[key] = _add_histograms(value, previous, sign=-1.0)
            else:
                series[key] = value
        result[name] = {"type": fam["type"], "series": series}
    return result


def quantile(q: float, histogram: dict[str, Any] | None) -> float | None:
    """The ``q``-quantile of a histogram's observations, interpolated within its bucket as
    ``histogram_quantile()`` does; None without observations. The highest finite bound answers for the +Inf bucket."""
    if not histogram or histogram.get("count", 0) <= 0:
        return None
    buckets = sorted((_le(le), count) for le, count in histogram["buckets"])
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound


def series_of(shot: dict[str, Any], name: str) -> dict[str, Any]:
    return ((shot or {}).get(name) or {}).get("series", {})


def total_histogram(shot: dict[str, Any], name: str) -> dict[str, Any] | None:
    """All series of a histogram family added together."""
    series = list(series_of(shot, name).values())
    if not series:
        return None
    total = {"buckets": [], "sum": 0.0, "count": 0.0}
    for value in series:
        total = _add_histograms(total, value)
    return total


def for_json(shot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with +Inf written as JSON can carry it."""
    out: dict[str, Any] = {}
    for name, fam in shot.items():
        series = {}
        for key, value in fam["series"].items():
            if fam["type"] == "histogram":
                value = {**value, "buckets": [[_json_le(le), count] for le, count in value["buckets"]]}
            series[key] = value
        out[name] = {"type": fam["type"], "series": series}
    return out
