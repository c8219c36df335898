from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from django.contrib.auth import signals

        from apps.audit import receivers
        from apps.core.job_services import job_event

        signals.user_logged_in.connect(receivers.record_login, dispatch_uid="audit.record_login")
        signals.user_logged_out.connect(receivers.record_logout, dispatch_uid="audit.record_logout")
        signals.user_login_failed.connect(receivers.record_login_failed, dispatch_uid="audit.record_login_failed")
        job_event.connect(receivers.record_job_event, dispatch_uid="audit.record_job_event")
