"""A backend's configuration schema: typed parameters, validated, rendered as the registry's form.

Sensitive parameters (tokens, passwords, keys) are stored encrypted, never shown back, and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.registries.sdk.errors import ConfigurationError

TYPES = ("string", "text", "url", "integer", "boolean", "choice", "list", "path")


@dataclass(frozen=True)
class Parameter:
    """One configuration parameter of a backend.

    ``type`` is one of: ``string``, ``text`` (several lines), ``url`` (http/https, checked against SSRF by the
    portal), ``integer``, ``boolean``, ``choice`` (one of ``choices``), ``list`` (strings; a form takes one per
    line or comma-separated), ``path`` (a directory on the portal's host, limited to the operator's roots).
    """

    name: str
    type: str = "string"
    label: str = ""
    help: str = ""
    required: bool = False
    default: Any = None
    sensitive: bool = False
    choices: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = 2000

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Parameter {self.name!r}: type {self.type!r} is not one of {', '.join(TYPES)}.")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"Parameter {self.name!r}: a choice needs choices.")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def describe(self) -> dict[str, Any]:
        """The parameter as JSON, for the API and the form."""
        return {
            "name": self.name,
            "type": self.type,
            "label": self.title,
            "help": self.help,
            "required": self.required,
            "default": None if self.sensitive else self.default,
            "sensitive": self.sensitive,
            "choices": list(self.choices),
        }

    def clean(self, value: Any) -> Any:
        """The value in its Python type, or ``ConfigurationError`` naming this parameter and the reason."""
        if value is None or value == "" or value == []:
            if self.required:
                raise ConfigurationError(self.name, f"{self.title} is required.")
            return self.default
        kind = self.type
        if kind in ("string", "text", "url", "path", "choice"):
            if not isinstance(value, str):
                raise ConfigurationError(self.name, f"{self.title} must be text, not {type(value).__name__}.")
            value = value.strip() if kind != "text" else value
            if len(value) > self.max_length:
                raise ConfigurationError(self.name, f"{self.title} is longer than {self.max_length} characters.")
            if "\x00" in value:
                raise ConfigurationError(self.name, f"{self.title} contains a NUL character.")
            if kind == "url" and not value.lower().startswith(("http://", "https://")):
                raise ConfigurationError(self.name, f"{self.title} must be an http:// or https:// URL.")
            if kind == "choice" and value not in self.choices:
                raise ConfigurationError(self.name, f"{self.title} must be one of: {', '.join(self.choices)}.")
            return value
        if kind == "integer":
            if isinstance(value, bool):
                raise ConfigurationError(self.name, f"{self.title} must be a whole number.")
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ConfigurationError(self.name, f"{self.title} must be a whole number.") from None
            if isinstance(value, float) and value != number:
                raise ConfigurationError(self.name, f"{self.title} must be a whole number.")
            if self.min_value is not None and number < self.min_value:
                raise ConfigurationError(self.name, f"{self.title} must be at least {self.min_value}.")
            if self.max_value is not None and number > self.max_value:
                raise ConfigurationError(self.name, f"{self.title} must be at most {self.max_value}.")
            return number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "on", "1", "yes"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "off", "0", "no"):
                return False
            raise ConfigurationError(self.name, f"{self.title} must be true or false.")
        # list
        if isinstance(value, str):
            value = [part.strip() for part in value.replace(",", "\n").splitlines()]
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise ConfigurationError(self.name, f"{self.title} must be a list of text values.")
        items = [item.strip() for item in value if item.strip()]
        if len(items) > 10_000:
            raise ConfigurationError(self.name, f"{self.title} has more than 10,000 entries.")
        if any(len(item) > self.max_length for item in items):
            raise ConfigurationError(self.name, f"An entry of {self.title} is over {self.max_length} characters.")
        if self.required and not items:
            raise ConfigurationError(self.name, f"{self.title} is required.")
        return items


def clean_parameters(parameters: tuple[Parameter, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Every parameter cleaned, unknown names refused. Raises the first ``ConfigurationError``."""
    if not isinstance(values, dict):
        raise ConfigurationError("config", "The configuration must be an object of parameter names and values.")
    known = {parameter.name for parameter in parameters}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigurationError(unknown[0], f"“{unknown[0]}” is not a parameter of this backend.")
    return {parameter.name: parameter.clean(values.get(parameter.name)) for parameter in parameters}
