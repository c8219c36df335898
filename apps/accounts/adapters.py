"""django-allauth glue: handles share one namespace with organization slugs; directory problems are said plainly."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.core.exceptions import ValidationError

from apps.organizations.validators import namespace_is_taken, validate_namespace_slug

# What apps.accounts.ldap leaves on the request when the directory could not answer (or refused to provision).
DIRECTORY_PROBLEM = "directory_problem"


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = (username or "").strip().lower()
        try:
            validate_namespace_slug(username)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages[0], code=exc.code) from exc
        if not shallow and namespace_is_taken(username):
            raise forms.ValidationError("This handle is already taken by a user or an organization.", code="taken")
        return super().clean_username(username, shallow=shallow)

    def validation_error(self, code: str, *args) -> ValidationError:
        """A failed sign-in says when the directory was the problem, rather than "wrong password"."""
        problem = getattr(self.request, DIRECTORY_PROBLEM, None)
        if problem and code.endswith("_password_mismatch"):
            return ValidationError(problem, code="directory_problem")
        return super().validation_error(code, *args)
