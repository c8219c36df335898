"""System checks of the job settings (``manage.py check``; docs/operator/jobs.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register("jobs")
def check_job_time_limits(app_configs: Any = None, **kwargs: Any) -> list:
    """The reaper must never take a job from a live attempt, and Redis must not hand out a running job's message."""
    from apps.core.job_services import broker_visibility_timeout, hard_limit_margin, reaper_grace

    problems: list = []
    if hard_limit_margin() >= reaper_grace():
        problems.append(
            Error(
                f"JOBS_HARD_LIMIT_MARGIN_SECONDS ({hard_limit_margin()}) must be below JOBS_REAPER_GRACE_SECONDS "
                f"({reaper_grace()}): otherwise the reaper may re-queue a job whose attempt is still running.",
                id="core.E001",
            )
        )
    longest = int(getattr(settings, "JOBS_MAX_TIME_LIMIT_SECONDS", 0))
    needed = longest + hard_limit_margin() + reaper_grace()
    if str(getattr(settings, "CELERY_BROKER_URL", "")).startswith(("redis", "rediss")) and (
        broker_visibility_timeout() < needed
    ):
        problems.append(
            Warning(
                f"The broker's visibility_timeout ({broker_visibility_timeout()} s) is shorter than the longest job "
                f"time limit plus hard-limit margin and reaper grace ({needed} s): Redis will hand out the messages "
                "of jobs still running to other workers (they skip them, but it is wasted work).",
                hint="Leave CELERY_BROKER_TRANSPORT_OPTIONS to the settings, or raise its visibility_timeout.",
                id="core.W001",
            )
        )
    return problems
