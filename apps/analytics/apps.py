from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from apps.analytics import metrics

        metrics.register()  # the storage and audit families of /metrics

        from apps.analytics.job_usage import record_job_usage
        from apps.core.job_services import register_outcome_listener

        register_outcome_listener(record_job_usage)  # each finished durable job is a usage event

        from celery.signals import task_postrun

        from apps.analytics import usage

        # A worker sends its buffered usage events after each task (a pool process may exit without atexit).
        task_postrun.connect(lambda **kwargs: usage.flush(), weak=False, dispatch_uid="analytics.flush_usage")
