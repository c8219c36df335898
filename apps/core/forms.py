"""Form helpers shared by the pages: services raise ValidationError; forms show it on the right field."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form: forms.Form, error: ValidationError, *, aliases: dict[str, str] | None = None) -> None:
    """Attach a service's ValidationError to ``form``: on the named field when the form has it, else on top.

    ``aliases`` maps a service's field name to the form's (``{"expires_at": "expires_on"}``).
    """
    aliases = aliases or {}
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            field = aliases.get(field, field)
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)
