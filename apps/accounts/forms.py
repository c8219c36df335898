"""Forms of the account pages. They only collect input: the services validate and write."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone

from apps.accounts.models import ApiToken, TokenKind, TokenScope, User
from apps.organizations.models import Organization


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=User._meta.get_field("name").max_length, required=False, label="Name")
    handle = forms.CharField(
        max_length=39,
        label="Handle",
        help_text="Your public name and the slug of your personal organization: lowercase letters, digits "
        "and hyphens. Renaming it renames your personal organization too.",
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=ApiToken._meta.get_field("name").max_length, label="Name")
    scope = forms.TypedChoiceField(
        choices=[(scope.value, scope.label) for scope in TokenScope],
        coerce=int,
        initial=TokenScope.READ,
        help_text="read ⊂ write ⊂ run ⊂ admin: each scope includes the ones before it.",
    )
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        to_field_name="slug",
        empty_label="Not bound (all my organizations)",
        label="Bound to organization",
        help_text="A bound token sees only that organization's objects and public ones; its admins can revoke it.",
    )
    kind = forms.ChoiceField(
        choices=TokenKind.choices,
        initial=TokenKind.PERSONAL,
        required=False,  # a client that leaves it out (older forms, scripts) gets a personal token
        label="Used by",
        help_text="A person, CI or a service: usage analytics tell their traffic apart.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a token that does not expire.",
    )

    def __init__(self, *args: Any, user: Any, organization: Organization | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        memberships = Organization.objects.restrict(user, "view").filter(memberships__user=user)
        self.fields["organization"].queryset = memberships.order_by("slug")
        if organization is not None:
            self.fields["organization"].initial = organization.slug

    def expires_at(self) -> datetime.datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        # the token works through the whole chosen day (UTC)
        return datetime.datetime.combine(day, datetime.time.max, tzinfo=datetime.UTC).astimezone(
            timezone.get_current_timezone()
        )
