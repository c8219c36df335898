"""User errors raised by services, shaped for the API's error handler and for forms.

Django drops the ``code`` of a ``ValidationError`` built from a dict, so each message is wrapped in its own
``ValidationError(message, code=...)``: the API then answers ``{"field": ["message"], "codes": {"field": [code]}}``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


def field_error(field: str, message: str | list[str], code: str = "invalid") -> ValidationError:
    """A user error about one field, with one message or several, each carrying ``code``."""
    messages = [message] if isinstance(message, str) else list(message)
    return field_errors({field: messages}, code=code)


def field_errors(errors: dict[str, list[str]], *, code: str) -> ValidationError:
    """User errors about several fields at once (``{field: [messages]}``), each message carrying ``code``."""
    return ValidationError(
        {field: [ValidationError(message, code=code) for message in messages] for field, messages in errors.items()}
    )
