"""Forms of the organization pages. They collect input; the services validate it and write."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.access import Role, Visibility


class OrganizationForm(forms.Form):
    slug = forms.CharField(
        label="Slug",
        help_text="Its address (/orgs/slug/) and the prefix of its models (slug/model): lowercase letters, digits "
        "and hyphens; organizations and user handles share these names.",
    )
    name = forms.CharField(label="Display name")
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    visibility = forms.ChoiceField(
        choices=Visibility.choices,
        initial=Visibility.PRIVATE,
        help_text="private: members only · internal: every signed-in user of this portal · public: anyone.",
    )


class OrganizationSettingsForm(OrganizationForm):
    require_mfa = forms.BooleanField(
        label="Require two-factor authentication",
        required=False,
        help_text="Members without an authenticator app are sent to set one up before they can open this "
        "organization's pages or use its API with their session.",
    )

    def __init__(self, *args: Any, personal: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if personal:
            self.fields["slug"].disabled = True
            self.fields[
                "slug"
            ].help_text = "A personal organization is named by your handle: change it in your profile."


def role_choices(up_to: Role | None = None) -> list[tuple[int, str]]:
    return [(role.value, role.label) for role in Role if up_to is None or role <= up_to]


class RoleForm(forms.Form):
    role = forms.TypedChoiceField(choices=role_choices(), coerce=int, label="Role")


class TeamForm(forms.Form):
    slug = forms.CharField(label="Slug", help_text="Lowercase letters, digits and single hyphens, up to 50.")
    name = forms.CharField(label="Name", required=False, help_text="Defaults to the slug.")
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class TeamMemberForm(forms.Form):
    handle = forms.CharField(label="Member's handle", help_text="A member of the organization.")


class InvitationForm(forms.Form):
    email = forms.CharField(label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.TypedChoiceField(choices=role_choices(), coerce=int, initial=Role.MEMBER, label="Role")

    def __init__(self, *args: Any, up_to: Role | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(up_to)
