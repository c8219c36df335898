"""Creating, reading and revoking one's own tokens through /api/v1/user/tokens/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, TokenScope
from apps.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("api:user-token-list")


def detail(token: ApiToken) -> str:
    return reverse("api:user-token-detail", kwargs={"uuid": token.uuid})


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_creating_a_token_shows_the_full_token_once():
    user = UserFactory()
    client = session_client(user)
    response = client.post(LIST, {"name": "ci", "scope": "write"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["token"].startswith(f"gpux_{body['prefix']}_")
    assert body["scope"] == "write"
    assert body["organization"] is None
    assert body["status"] == "active"

    later = client.get(detail(ApiToken.objects.get(uuid=body["uuid"]))).json()
    assert "token" not in later
    assert later["prefix"] == body["prefix"]
    listed = client.get(LIST).json()["results"]
    assert [item["uuid"] for item in listed] == [body["uuid"]]
    assert "token" not in listed[0]


def test_the_token_shown_at_creation_authenticates():
    user = UserFactory()
    raw = session_client(user).post(LIST, {"name": "ci", "scope": "read"}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(reverse("api:user-detail")).json()["handle"] == user.handle


def test_a_token_may_be_bound_to_an_organization_its_owner_belongs_to(world):
    response = session_client(world.user("member")).post(
        LIST, {"name": "acme ci", "scope": "run", "organization": "acme"}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["organization"] == "acme"
    assert ApiToken.objects.get(uuid=response.json()["uuid"]).organization == world.org


def test_creating_a_token_is_audited_in_the_personal_chain_without_its_secret():
    user = UserFactory()
    body = session_client(user).post(LIST, {"name": "ci", "scope": "read"}).json()
    event = AuditEvent.objects.get(action="token.created")
    assert event.organization == user.personal_organization
    assert event.actor == user
    assert event.target_id == body["uuid"]
    assert event.metadata["prefix"] == body["prefix"]
    secret = body["token"].split("_", 2)[2]
    assert secret not in str(event.metadata) and secret not in event.target_label


def test_creating_a_bound_token_is_audited_in_the_organizations_chain(world):
    session_client(world.user("admin")).post(LIST, {"name": "acme", "scope": "admin", "organization": "acme"})
    event = AuditEvent.objects.get(action="token.created")
    assert event.organization == world.org


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"scope": "read"}, "name", "required"),
        ({"name": "   ", "scope": "read"}, "name", "blank"),
        ({"name": "x" * 101, "scope": "read"}, "name", "max_length"),
        ({"name": "ci", "scope": "root"}, "scope", "invalid_choice"),
        ({"name": "ci", "scope": "read", "expires_at": "yesterday"}, "expires_at", "invalid"),
    ],
)
def test_malformed_token_requests_answer_400_naming_the_field(payload, field, code):
    user = UserFactory()
    response = session_client(user).post(LIST, payload)
    assert response.status_code == 400
    assert response.json()["codes"][field] == [code]
    assert not ApiToken.objects.exists()


def test_an_expiry_in_the_past_is_refused():
    user = UserFactory()
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = session_client(user).post(LIST, {"name": "ci", "scope": "read", "expires_at": past})
    assert response.status_code == 400
    assert response.json()["codes"]["expires_at"] == ["expiry_in_past"], response.json()
    assert not ApiToken.objects.exists()


def test_a_token_with_a_future_expiry_records_it():
    user = UserFactory()
    future = timezone.now() + timedelta(days=30)
    response = session_client(user).post(LIST, {"name": "ci", "scope": "read", "expires_at": future.isoformat()})
    assert response.status_code == 201
    assert ApiToken.objects.get().expires_at == future


def test_a_token_cannot_be_bound_to_an_organization_one_does_not_belong_to(world):
    response = session_client(world.user("outsider")).post(LIST, {"name": "x", "scope": "read", "organization": "acme"})
    assert response.status_code == 400
    assert response.json()["codes"]["organization"] == ["not_a_member"]
    assert not ApiToken.objects.exists()


def test_an_unknown_organization_answers_like_one_we_do_not_belong_to():
    user = UserFactory()
    response = session_client(user).post(LIST, {"name": "x", "scope": "read", "organization": "no-such-org"})
    assert response.status_code == 400
    assert response.json()["codes"]["organization"] == ["not_a_member"]


@pytest.mark.parametrize(
    ("persona", "scope", "allowed"),
    [
        ("viewer", "read", True),
        ("viewer", "write", False),
        ("member", "run", True),
        ("member", "admin", False),
        ("admin", "admin", True),
        ("owner", "admin", True),
    ],
)
def test_a_bound_tokens_scope_is_capped_by_the_owners_role_there(world, persona, scope, allowed):
    response = session_client(world.user(persona)).post(LIST, {"name": "x", "scope": scope, "organization": "acme"})
    if allowed:
        assert response.status_code == 201, response.json()
    else:
        assert response.status_code == 400
        assert response.json()["codes"]["scope"] == ["scope_exceeds_role"]
        assert not ApiToken.objects.exists()


def test_revoking_ones_token_answers_204_and_the_token_stops_working():
    user = UserFactory()
    client = session_client(user)
    raw = client.post(LIST, {"name": "ci", "scope": "read"}).json()["token"]
    token = ApiToken.objects.get()
    assert client.delete(detail(token)).status_code == 204
    token.refresh_from_db()
    assert token.status == "revoked"
    assert token.revoked_by == user
    assert client.get(detail(token)).json()["status"] == "revoked"

    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bearer.get(reverse("api:user-detail")).json()["code"] == "token_revoked"
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.organization == user.personal_organization


def test_revoking_a_revoked_token_again_changes_nothing():
    user = UserFactory()
    client = session_client(user)
    client.post(LIST, {"name": "ci", "scope": "read"})
    token = ApiToken.objects.get()
    client.delete(detail(token))
    first = ApiToken.objects.get().revoked_at
    assert client.delete(detail(token)).status_code == 204
    assert ApiToken.objects.get().revoked_at == first
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_another_users_token_is_not_found():
    owner, stranger = UserFactory(), UserFactory()
    session_client(owner).post(LIST, {"name": "ci", "scope": "read"})
    token = ApiToken.objects.get()
    client = session_client(stranger)
    assert client.get(detail(token)).status_code == 404
    assert client.delete(detail(token)).status_code == 404
    assert client.get(LIST).json()["results"] == []
    assert ApiToken.objects.get().revoked_at is None


def test_anonymous_callers_cannot_list_or_create_tokens():
    client = APIClient()
    assert client.get(LIST).status_code == 401
    assert client.post(LIST, {"name": "x", "scope": "read"}).status_code == 401


def test_token_lists_filter_by_status_and_scope_and_order_by_name():
    user = UserFactory()
    client = session_client(user)
    for name, scope in (("b", "read"), ("a", "write"), ("c", "read")):
        client.post(LIST, {"name": name, "scope": scope})
    client.delete(detail(ApiToken.objects.get(name="c")))
    assert [t["name"] for t in client.get(LIST, {"ordering": "name"}).json()["results"]] == ["a", "b", "c"]
    assert [t["name"] for t in client.get(LIST, {"status": "active", "ordering": "name"}).json()["results"]] == [
        "a",
        "b",
    ]
    assert [t["name"] for t in client.get(LIST, {"scope": "read", "status": "revoked"}).json()["results"]] == ["c"]
    assert client.get(LIST, {"scope": "root"}).status_code == 400


def test_the_service_refuses_an_unknown_scope_value():
    from django.core.exceptions import ValidationError

    from apps.accounts.services import create_api_token

    user = UserFactory()
    with pytest.raises(ValidationError) as error:
        create_api_token(user=user, name="x", scope=99)
    assert error.value.message_dict["scope"]
    token, raw = create_api_token(user=user, name="x", scope=TokenScope.RUN)
    assert token.scope == TokenScope.RUN and raw.startswith("gpux_")


def test_a_prefix_drawn_twice_is_drawn_again_instead_of_failing(monkeypatch):
    from apps.accounts import models as account_models
    from apps.accounts.services import create_api_token

    user = UserFactory()
    first, _ = create_api_token(user=user, name="first", scope="read")
    draws = iter([first.prefix, "0badc0de"])  # the random prefix collides once, then not
    real_token_hex = account_models.secrets.token_hex
    monkeypatch.setattr(account_models.secrets, "token_hex", lambda n: next(draws, None) or real_token_hex(n))
    second, raw = create_api_token(user=user, name="second", scope="read")
    assert second.prefix == "0badc0de"
    assert raw.startswith("gpux_0badc0de_")
    assert ApiToken.objects.count() == 2
