from __future__ import annotations

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        # A deleted batch job takes its input, results and leftover parts with it (a post_delete receiver).
        from apps.inference.batch import results  # noqa: F401
