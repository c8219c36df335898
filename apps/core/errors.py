"""User errors raised by services, shaped for the API's error handler and for forms.

Django drops the ``code`` of a ``ValidationError`` built from a dict, so each message is wrapped in its own
``ValidationError(message, code=...)``: the API then answers ``{"field": ["message"], "codes": {"field": [code]}}``.
``Problems`` collects such errors over several fields, so that one answer names them all.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError


def field_error(field: str, message: str | list[str], code: str = "invalid") -> ValidationError:
    """A user error about one field, with one message or several, each carrying ``code``."""
    messages = [message] if isinstance(message, str) else list(message)
    return field_errors({field: messages}, code=code)


def field_errors(
    errors: dict[str, list[str]], *, code: str = "invalid", codes: dict[str, list[str]] | None = None
) -> ValidationError:
    """User errors about several fields at once (``{field: [messages]}``), each message carrying its own code from
    ``codes`` (``{field: [a code per message]}``, as ``Problems`` and the tensor refusals keep them), else ``code``."""
    codes = codes or {}

    def code_of(field: str, index: int) -> str:
        known = codes.get(field) or []
        return known[index] if index < len(known) else code

    return ValidationError(
        {
            field: [ValidationError(message, code=code_of(field, index)) for index, message in enumerate(messages)]
            for field, messages in errors.items()
        }
    )


class Problems:
    """Problems by field, collected so that one answer names them all: ``add(field, message, code)`` each problem as
    it is found, then ``raise_if_any()``.

    ``errors`` maps each field to its messages and ``codes`` to one code per message, as DRF does; ``first_code`` is
    the code of the first problem (an exception with one ``code`` takes that one).
    """

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.codes: dict[str, list[str]] = {}
        self.first_code = ""

    def add(self, field: str, message: str, code: str = "invalid") -> None:
        self.errors.setdefault(field, []).append(message)
        self.codes.setdefault(field, []).append(code)
        self.first_code = self.first_code or code

    def add_error(self, error: ValidationError) -> None:
        """Add each message of a Django ``ValidationError`` (one raised by another check) under its own field."""
        for field, errors in (
            error.error_dict.items() if hasattr(error, "error_dict") else [("__all__", error.error_list)]
        ):
            for each in errors:
                for message in each.messages:
                    self.add(field, message, each.code or "invalid")

    def error(self) -> ValidationError:
        """Django's ``ValidationError`` naming every field, each message with its own code (the API answers it as a
        400 with ``codes``, a form shows it under its fields)."""
        return field_errors(self.errors, codes=self.codes)

    def raise_if_any(self, error: Callable[[dict, str, dict], Exception] | None = None) -> None:
        """Raise ``error(errors, first_code, codes)``, or :meth:`error` without one, when a problem was added."""
        if self.errors:
            raise error(self.errors, self.first_code, self.codes) if error is not None else self.error()
