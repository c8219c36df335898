"""Forms of the organization pages. They collect input; the services validate it and write."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.access import Role, Visibility


class OrganizationForm(forms.Form):
    # The name first: the slug is filled in from it as it is typed (templates/organizations/create.html).
    name = forms.CharField(label="Display name")
    slug = forms.CharField(
        label="Slug",
        help_text="Its address (/orgs/slug/) and the prefix of its models (slug/model): lowercase letters, digits "
        "and hyphens; organizations and user handles share these names. Filled in from the name; change it if you "
        "like.",
    )
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


# -- single sign-on and provisioning ----------------------------------------------------------------------------
class SamlSettingsForm(forms.Form):
    """The SAML part of /orgs/<slug>/sso/: the IdP metadata (pasted or by URL) and what to read from assertions."""

    idp_metadata_xml = forms.CharField(
        label="IdP metadata (XML)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="Paste the identity provider's SAML metadata; leave empty to keep what is saved.",
    )
    idp_metadata_url = forms.URLField(
        label="…or its metadata URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Fetched now (private addresses only if the operator allows them).",
    )
    email_attribute = forms.CharField(label="E-mail attribute", max_length=255, initial="email")
    name_attribute = forms.CharField(label="Name attribute", max_length=255, required=False, initial="name")
    groups_attribute = forms.CharField(label="Groups attribute", max_length=255, required=False, initial="groups")
    default_role = forms.TypedChoiceField(
        label="Role when no group maps",
        choices=[("", "none: refuse the sign-in"), *[(r.value, r.label) for r in Role if r < Role.OWNER]],
        coerce=int,
        empty_value=None,
        required=False,
    )
    allow_idp_initiated = forms.BooleanField(label="Accept sign-ins started at the IdP", required=False)
    enabled = forms.BooleanField(label="SAML sign-in enabled", required=False)


class GroupMappingForm(forms.Form):
    group = forms.CharField(label="IdP group", max_length=500)
    role = forms.TypedChoiceField(
        label="Role",
        choices=[(r.value, r.label) for r in Role],
        coerce=int,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    team = forms.CharField(label="Team (slug, optional)", max_length=50, required=False)


class DomainForm(forms.Form):
    domain = forms.CharField(label="E-mail domain", max_length=253, help_text="e.g. acme.com")


class DomainEmailForm(forms.Form):
    email = forms.EmailField(label="An address at the domain", max_length=254)


class SsoSignInForm(forms.Form):
    email = forms.EmailField(label="Work e-mail address", max_length=254)
