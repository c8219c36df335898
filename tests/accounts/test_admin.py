"""The operators' admin: users by e-mail and handle, tokens without their secret, revocation as an action."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import ApiToken, TokenScope, User
from apps.audit.models import AuditEvent
from apps.organizations.models import Organization
from tests.factories import PASSWORD, OrganizationFactory, UserFactory, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(handle="operator", name="Site Operator", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def add_user(client: Client, **fields):
    data = {"email": "new@example.com", "handle": "newbie", "usable_password": "true"}
    data |= {"password1": "a-long-unusual-passphrase", "password2": "a-long-unusual-passphrase"} | fields
    return client.post(reverse("admin:accounts_user_add"), data)


def test_the_user_list_searches_by_handle_and_email(admin_client):
    # Fixed names: a random Faker name ("Adam ...") would match the search too.
    UserFactory(handle="ada", email="ada@example.com", name="Ada Lovelace")
    UserFactory(handle="grace", email="grace@example.com", name="Grace Hopper")
    page = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "ada"})
    assert page.status_code == 200
    assert [user.handle for user in page.context["cl"].result_list] == ["ada"]


def test_an_operator_adds_a_user_who_gets_a_personal_organization(admin_client):
    response = add_user(admin_client)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(handle="newbie")
    assert user.email == "new@example.com"
    assert Organization.objects.get(slug="newbie").personal_owner == user


@pytest.mark.parametrize("handle", ["admin", "bad_handle", "taken-org"])
def test_adding_a_user_with_a_reserved_malformed_or_taken_handle_is_refused(admin_client, handle):
    OrganizationFactory(slug="taken-org")
    response = add_user(admin_client, handle=handle)
    assert response.status_code == 200
    assert "handle" in response.context["adminform"].form.errors
    assert not User.objects.filter(email="new@example.com").exists()


def test_adding_a_user_with_an_email_taken_in_another_case_is_refused(admin_client):
    UserFactory(email="new@example.com")
    response = add_user(admin_client, email="NEW@example.com")
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors


def test_renaming_a_handle_in_the_admin_renames_the_personal_organization(admin_client, operator):
    user = UserFactory(handle="ada", email="ada@example.com", name="Ada")
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data |= {"handle": "ada-l", "groups": [], "user_permissions": []}
    data["date_joined_0"], data["date_joined_1"] = user.date_joined.strftime("%Y-%m-%d"), "00:00:00"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.handle == "ada-l"
    assert Organization.objects.get(personal_owner=user).slug == "ada-l"
    event = AuditEvent.objects.get(action="user.updated")
    assert event.actor == operator


def test_the_token_list_and_page_never_show_the_secret_hash(admin_client):
    make_token(UserFactory(), scope=TokenScope.READ)
    token = ApiToken.objects.get()
    listing = admin_client.get(reverse("admin:accounts_apitoken_changelist"))
    assert listing.status_code == 200
    assert token.prefix in listing.content.decode()
    page = admin_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    assert page.status_code == 200
    assert token.secret_hash not in page.content.decode()
    assert token.secret_hash not in listing.content.decode()


def test_operators_cannot_add_tokens_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:accounts_apitoken_add")).status_code == 403


def test_the_revoke_action_revokes_and_audits(admin_client, operator):
    owner = UserFactory()
    make_token(owner, scope=TokenScope.READ)
    make_token(owner, scope=TokenScope.ADMIN)
    response = admin_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": list(ApiToken.objects.values_list("pk", flat=True))},
    )
    assert response.status_code == 302
    assert set(ApiToken.objects.values_list("revoked_by", flat=True)) == {operator.pk}
    events = AuditEvent.objects.filter(action="token.revoked")
    assert events.count() == 2
    assert all(event.metadata["by_operator"] for event in events)
    assert {event.organization for event in events} == {owner.personal_organization}


def test_an_operator_changing_an_email_replaces_the_login_address(admin_client, operator):
    from allauth.account.models import EmailAddress

    user = UserFactory(handle="ada", email="ada@example.com")
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data |= {"email": "ada@newmail.example", "groups": [], "user_permissions": []}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    addresses = EmailAddress.objects.filter(user=user)
    assert [(a.email, a.primary, a.verified) for a in addresses] == [("ada@newmail.example", True, False)]
    event = AuditEvent.objects.get(action="user.updated")
    assert event.diff == {"email": ["ada@example.com", "ada@newmail.example"]}
    assert event.actor == operator

    old = Client()
    old.post(reverse("account_login"), {"login": "ada@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in old.session
