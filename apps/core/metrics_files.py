"""Where a service's Prometheus multiprocess files live, without importing prometheus_client.

prometheus_client picks its multiprocess mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``: these
functions run before that (in gunicorn's master, in a Celery worker's main process before Django loads), so they
import nothing but the standard library. docs/operator/monitoring.md, "Multiprocess files".
"""

from __future__ import annotations

import glob
import os
from pathlib import Path


def default_metrics_root() -> Path:
    """``GPUX_METRICS_DIR``, else ``<GPUX_VAR_DIR or ./var>/metrics`` (as settings.METRICS_DIR, read without Django)."""
    root = os.environ.get("GPUX_METRICS_DIR")
    if root:
        return Path(root)
    var = os.environ.get("GPUX_VAR_DIR") or str(Path(__file__).resolve().parents[2] / "var")
    return Path(var) / "metrics"


def prepare_multiprocess_dir(service: str) -> str:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at this service's folder (the operator's own, when set) and wipe it, as
    prometheus_client's documentation asks at each start. Returns the folder."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(default_metrics_root() / service)
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path
