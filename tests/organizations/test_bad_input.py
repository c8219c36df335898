"""Bad input for every organizations endpoint: missing fields, wrong types, bad e-mails and unknown role names
answer a 4xx that names the field, and nothing is written (no row, no audit event, no e-mail)."""

from __future__ import annotations

import pytest

from apps.organizations import services
from tests.organizations.conftest import snapshot

pytestmark = pytest.mark.django_db

ACME = "/api/v1/orgs/acme"
LONG = "x" * 3000

CASES = [
    # (who, method, url, body, the field named in the answer)
    ("member", "post", "/api/v1/orgs/", {}, "slug"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org"}, "name"),
    ("member", "post", "/api/v1/orgs/", {"slug": ["new-org"], "name": "New"}, "slug"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org", "name": {"a": 1}}, "name"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org", "name": "   "}, "name"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org", "name": "New", "visibility": "secret"}, "visibility"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org", "name": "New", "description": LONG}, "description"),
    ("member", "post", "/api/v1/orgs/", {"slug": "new-org", "name": "x" * 101}, "name"),
    ("owner", "patch", f"{ACME}/", {"name": ""}, "name"),
    ("owner", "patch", f"{ACME}/", {"name": None}, "name"),
    ("owner", "patch", f"{ACME}/", {"slug": 12}, "slug"),
    ("owner", "patch", f"{ACME}/", {"slug": ""}, "slug"),
    ("owner", "patch", f"{ACME}/", {"visibility": "everyone"}, "visibility"),
    ("owner", "patch", f"{ACME}/", {"require_mfa": "perhaps"}, "require_mfa"),
    ("owner", "patch", f"{ACME}/", {"description": LONG}, "description"),
    ("owner", "patch", f"{ACME}/members/member-user/", {}, "role"),
    ("owner", "patch", f"{ACME}/members/member-user/", {"role": "superuser"}, "role"),
    ("owner", "patch", f"{ACME}/members/member-user/", {"role": 30}, "role"),
    ("owner", "patch", f"{ACME}/members/member-user/", {"role": None}, "role"),
    ("owner", "patch", f"{ACME}/members/member-user/", {"role": ["admin"]}, "role"),
    ("admin", "post", f"{ACME}/teams/", {}, "slug"),
    ("admin", "post", f"{ACME}/teams/", {"slug": ["x"]}, "slug"),
    ("admin", "post", f"{ACME}/teams/", {"slug": "infra", "name": "x" * 101}, "name"),
    ("admin", "post", f"{ACME}/teams/", {"slug": "infra", "description": LONG}, "description"),
    ("admin", "patch", f"{ACME}/teams/ml/", {"slug": ""}, "slug"),
    ("admin", "patch", f"{ACME}/teams/ml/", {"name": " "}, "name"),
    ("admin", "patch", f"{ACME}/teams/ml/", {"slug": "Not A Slug"}, "slug"),
    ("admin", "post", f"{ACME}/teams/ml/members/", {}, "handle"),
    ("admin", "post", f"{ACME}/teams/ml/members/", {"handle": ""}, "handle"),
    ("admin", "post", f"{ACME}/teams/ml/members/", {"handle": {"h": 1}}, "handle"),
    ("admin", "post", f"{ACME}/invitations/", {}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": ""}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "not-an-e-mail"}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "two@@example.com"}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "Bob <bob@example.com>"}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": ["a@example.com"]}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "a" * 250 + "@example.com"}, "email"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "a@example.com", "role": "boss"}, "role"),
    ("admin", "post", f"{ACME}/invitations/", {"email": "a@example.com", "role": 20}, "role"),
    ("outsider", "post", "/api/v1/invitations/accept/", {}, "key"),
    ("outsider", "post", "/api/v1/invitations/accept/", {"key": ""}, "key"),
    ("outsider", "post", "/api/v1/invitations/accept/", {"key": ["k"]}, "key"),
    ("outsider", "post", "/api/v1/invitations/accept/", {"key": "x" * 500}, "key"),
]


@pytest.mark.parametrize("who,method,url,body,field", CASES)
def test_bad_input_names_the_field_and_writes_nothing(world, client_as, team, who, method, url, body, field):
    before = snapshot()
    answer = getattr(client_as(who), method)(url, body, format="json")
    assert answer.status_code == 400, (answer.status_code, answer.data)
    assert field in answer.data, answer.data
    assert answer.data["code"] == "validation_error"
    assert field in answer.data["codes"]
    assert isinstance(answer.data[field], list) and answer.data[field][0]
    assert snapshot() == before


@pytest.mark.parametrize(
    "who,url",
    [
        ("member", "/api/v1/orgs/"),
        ("admin", f"{ACME}/teams/"),
        ("admin", f"{ACME}/invitations/"),
        ("admin", f"{ACME}/teams/ml/members/"),
        ("outsider", "/api/v1/invitations/accept/"),
    ],
)
def test_a_body_that_is_not_json_answers_400_and_writes_nothing(world, client_as, team, who, url):
    before = snapshot()
    answer = client_as(who).post(url, data="{not json", content_type="application/json")
    assert answer.status_code == 400
    assert answer.data["code"] == "parse_error"
    assert snapshot() == before


@pytest.mark.parametrize("body", [["a", "list"], "a string", 42])
def test_a_json_body_that_is_not_an_object_answers_400(world, client_as, body):
    before = snapshot()
    answer = client_as("admin").post(f"{ACME}/invitations/", body, format="json")
    assert answer.status_code == 400
    assert snapshot() == before


def test_an_unknown_organization_team_member_or_invitation_answers_404(world, client_as, team):
    api = client_as("owner")
    for url in (
        "/api/v1/orgs/no-such-org/",
        "/api/v1/orgs/no-such-org/members/",
        f"{ACME}/members/no-such-user/",
        f"{ACME}/teams/no-such-team/",
        f"{ACME}/teams/no-such-team/members/",
        f"{ACME}/invitations/00000000-0000-0000-0000-000000000000/",
        f"{ACME}/invitations/not-a-uuid/",
    ):
        assert api.get(url).status_code == 404, url


def test_service_level_bad_roles_name_the_field(world):
    from django.core.exceptions import ValidationError

    for role in ("boss", None, True, 99, 3.5):
        with pytest.raises(ValidationError) as raised:
            services.create_invitation(
                actor=world.user("owner"), organization=world.org, email="a@example.com", role=role
            )
        assert list(raised.value.message_dict) == ["role"]
