"""Forms of the catalog pages. They check shapes only; the services decide the rest (names taken, labels taken,
immutability) and their ValidationError is shown on the right field (``apps.core.forms.add_service_errors``)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.access import Visibility
from apps.marketplace.models import MODEL_NAME_RULES, VERSION_LABEL_RULES, validate_model_name, validate_version_label
from apps.marketplace.onnx.task_detection import TASKS


class TagsField(forms.CharField):
    """Tags typed as ``onnx, nlp, embeddings``: a list of strings (the service lower-cases and checks them)."""

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value or ""


class TaskInput(forms.TextInput):
    """A free-text task with the usual tasks offered in a datalist."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({"list": "task-choices", "autocomplete": "off", **(attrs or {})})


class ModelCardFields(forms.Form):
    """What a model's page shows: summary, card, task, tags, license, visibility."""

    summary = forms.CharField(max_length=300, required=False, help_text="One line: what the model does.")
    task = forms.CharField(
        max_length=60,
        required=False,
        widget=TaskInput(),
        help_text="e.g. “text-classification”, “feature-extraction”. Left empty, the task detected from the "
        "signature is shown.",
    )
    tags = TagsField(max_length=2000, required=False, help_text="Comma-separated, e.g. “onnx, nlp, embeddings”.")
    license = forms.CharField(max_length=100, required=False, help_text="e.g. “apache-2.0”, “mit”.")
    visibility = forms.ChoiceField(
        choices=Visibility.choices,
        initial=Visibility.PRIVATE,
        help_text="Private: your organization (and grants). Internal: everyone signed in here. Public: anyone.",
    )
    card = forms.CharField(
        max_length=200_000,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "font-monospace"}),
        help_text="The model card, in Markdown (tables too). HTML is cleaned: no scripts, no event handlers.",
    )

    tasks = TASKS


class ModelCreateForm(ModelCardFields):
    """A new model in an organization."""

    name = forms.CharField(max_length=96, help_text=f"{MODEL_NAME_RULES}.", validators=[validate_model_name])

    field_order = ["name", "summary", "task", "tags", "license", "visibility", "card"]


class ModelEditForm(ModelCardFields):
    """Change a model's card and facts (its name stays: it is its address)."""


class VersionCreateForm(forms.Form):
    """A new draft version."""

    label = forms.CharField(max_length=64, help_text=f"{VERSION_LABEL_RULES}.", validators=[validate_version_label])
    changelog = forms.CharField(
        max_length=50_000,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What changed, in Markdown.",
    )


class YankForm(forms.Form):
    """Why a version is yanked: shown to everyone who asks for it."""

    reason = forms.CharField(max_length=500, help_text="Shown to everyone who asks for the version.")


class DeprecateForm(forms.Form):
    message = forms.CharField(max_length=500, required=False)
