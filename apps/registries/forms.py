"""The registry form, built from the backend's parameters schema (the same schema the API validates against)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.access import Visibility
from apps.registries.models import Registry, RegistryMode
from apps.registries.sdk import Parameter, RegistryBackend

CONFIG_PREFIX = "config__"


def _parameter_field(parameter: Parameter, *, editing: bool) -> forms.Field:
    common: dict[str, Any] = {"label": parameter.title, "required": parameter.required and not parameter.sensitive}
    help_text = parameter.help
    if parameter.sensitive:
        help_text = (help_text + " " if help_text else "") + (
            "Stored encrypted and never shown again; leave empty to keep the stored value."
            if editing
            else "Stored encrypted and never shown again."
        )
        return forms.CharField(
            widget=forms.PasswordInput(render_value=False), help_text=help_text, **{**common, "required": False}
        )
    if parameter.type == "integer":
        return forms.IntegerField(
            help_text=help_text, min_value=parameter.min_value, max_value=parameter.max_value, **common
        )
    if parameter.type == "boolean":
        return forms.BooleanField(help_text=help_text, **{**common, "required": False})
    if parameter.type == "choice":
        choices = [("", "—")] + [(choice, choice) for choice in parameter.choices]
        return forms.ChoiceField(choices=choices, help_text=help_text, **common)
    if parameter.type in ("text", "list"):
        hint = "One per line." if parameter.type == "list" else ""
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3}), help_text=f"{help_text} {hint}".strip(), **common
        )
    placeholder = "https://…" if parameter.type == "url" else ("/mnt/models" if parameter.type == "path" else "")
    return forms.CharField(widget=forms.TextInput(attrs={"placeholder": placeholder}), help_text=help_text, **common)


class RegistryForm(forms.Form):
    """Name, filters, mode and schedule, then one field per backend parameter (``config__<name>``)."""

    name = forms.CharField(max_length=100)
    slug = forms.CharField(max_length=50, help_text="In URLs and as the catalog's source facet, e.g. “hf-mirror”.")
    description = forms.CharField(max_length=500, required=False)
    mode = forms.ChoiceField(choices=RegistryMode.choices, initial=RegistryMode.METADATA)
    model_visibility = forms.ChoiceField(
        choices=Visibility.choices,
        initial=Visibility.PRIVATE,
        label="Visibility of synced models",
        help_text="Internal: every member of the portal sees them; public: everyone.",
    )
    sync_interval_minutes = forms.IntegerField(
        min_value=0, initial=0, label="Sync every (minutes)", help_text="0: only when someone starts a sync."
    )
    include_patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Glob patterns on model ids, one per line (e.g. <code>onnxmodelzoo/*</code>); empty: every model.",
    )
    exclude_patterns = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated: only models with at least one of them.")
    licenses = forms.CharField(required=False, help_text="Comma-separated: only models under one of them.")
    enabled = forms.BooleanField(required=False, initial=True, help_text="Scheduled syncs run only when enabled.")

    def __init__(self, *args: Any, backend: type[RegistryBackend], registry: Registry | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.backend = backend
        self.registry = registry
        if registry is not None:
            del self.fields["slug"]
        for parameter in backend.parameters:
            if parameter.name in backend.presets:
                continue
            field = _parameter_field(parameter, editing=registry is not None)
            if parameter.default is not None and not parameter.sensitive:
                field.initial = parameter.default
            self.fields[CONFIG_PREFIX + parameter.name] = field
            if parameter.sensitive and registry is not None:
                self.fields[f"{CONFIG_PREFIX}{parameter.name}__clear"] = forms.BooleanField(
                    required=False, label=f"Remove the stored {parameter.title.lower()}"
                )
        if registry is not None and not self.is_bound:
            self.initial.update(
                {
                    "name": registry.name,
                    "description": registry.description,
                    "mode": registry.mode,
                    "model_visibility": registry.model_visibility,
                    "sync_interval_minutes": registry.sync_interval_minutes,
                    "include_patterns": "\n".join(registry.include_patterns),
                    "exclude_patterns": "\n".join(registry.exclude_patterns),
                    "tags": ", ".join(registry.tags),
                    "licenses": ", ".join(registry.licenses),
                    "enabled": registry.enabled,
                }
            )
            for name, value in registry.config.items():
                self.initial[CONFIG_PREFIX + name] = "\n".join(value) if isinstance(value, list) else value

    def parameter_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith(CONFIG_PREFIX)]

    def registry_fields(self) -> list:
        return [self[name] for name in self.fields if not name.startswith(CONFIG_PREFIX)]

    def service_arguments(self) -> dict[str, Any]:
        """What the service takes: the registry's fields and ``config`` (sensitive ones only when typed)."""
        data = {name: value for name, value in self.cleaned_data.items() if not name.startswith(CONFIG_PREFIX)}
        config: dict[str, Any] = {}
        for parameter in self.backend.parameters:
            key = CONFIG_PREFIX + parameter.name
            if key not in self.cleaned_data:
                continue
            value = self.cleaned_data[key]
            if parameter.sensitive:
                if self.cleaned_data.get(f"{key}__clear"):
                    config[parameter.name] = ""
                elif value:
                    config[parameter.name] = value
                continue
            config[parameter.name] = value if value != "" else None
        data["config"] = config
        return data


def service_error_aliases(backend: type[RegistryBackend]) -> dict[str, str]:
    return {f"config.{parameter.name}": CONFIG_PREFIX + parameter.name for parameter in backend.parameters}
