"""django-allauth glue: handles share one namespace with organization slugs."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.core.exceptions import ValidationError

from apps.organizations.validators import namespace_is_taken, validate_namespace_slug


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
