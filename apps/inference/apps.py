from __future__ import annotations

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        # A deleted batch job takes its input, results and leftover parts with it (a post_delete receiver).
        from apps.core.jobs import register_job_subject
        from apps.inference.batch import results  # noqa: F401
        from apps.inference.batch.start import BATCH_KIND
        from apps.inference.predictions import (
            BATCHED_PREDICT_KIND,
            PREDICT_KIND,
            batch_subject,
            prediction_subject,
        )

        # A token bound to an organization sees a prediction or batch job only when it may view what the job ran.
        register_job_subject((PREDICT_KIND, BATCHED_PREDICT_KIND), prediction_subject)
        register_job_subject((BATCH_KIND,), batch_subject)

        # The jobs pages name what an inference job (or a validation, a benchmark) ran on.
        from apps.core.job_services import register_job_describer
        from apps.inference.views import describe_inference_jobs

        register_job_describer(describe_inference_jobs)

        # The catalog does not import inference: inference listens to its publications and adds its panels.
        from apps.inference.panels import PANELS
        from apps.inference.performance import measure_when_published
        from apps.marketplace.extensions import register_version_panel, version_published

        version_published.connect(measure_when_published, dispatch_uid="inference.measure_when_published")
        for panel in PANELS:
            register_version_panel(panel)
