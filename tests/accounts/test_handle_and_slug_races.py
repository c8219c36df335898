"""Two requests racing for one name in the handle/slug namespace: both pass the "is it free?" check before either
writes, and the database's unique constraint decides. The loser answers the form error naming the field (the
sign-up form's handle, the API's and the page's ``slug``), never a 500, and leaves nothing half-written (no user
without a personal organization).

Real concurrent transactions on PostgreSQL, no mock: the first claimant writes the name inside a transaction that
it keeps open; the request under test runs in another thread (its own connection), passes its check (the first
claim is not committed, so not visible), and waits on the unique index; once the test sees it waiting, the first
claimant commits and the request's insert fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.organizations import services as org_services
from apps.organizations.models import Membership, Organization
from tests.conftest import api_client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-and-unusual-passphrase"


class HeldClaim:
    """``claim()`` run in a thread inside a transaction left open until ``commit()``."""

    def __init__(self, claim: Callable[[], Any]) -> None:
        self.claim = claim
        self.written = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.written.wait(30), "the first claim was not written"

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.claim()
                self.written.set()
                self.release.wait(60)
        finally:
            connection.close()

    def commit(self) -> None:
        self.release.set()
        self.thread.join(60)


def in_thread(request: Callable[[], Any]) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["response"] = request()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_until_a_request_waits_on_a_lock(thread: threading.Thread) -> None:
    """Until another backend of this database waits on a lock (the unique index entry of the held claim)."""
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline and thread.is_alive():
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the request never waited on the first claim: it did not race")


def race(first_claim: Callable[[], Any], request: Callable[[], Any]):
    held = HeldClaim(first_claim)
    thread, outcome = in_thread(request)
    try:
        wait_until_a_request_waits_on_a_lock(thread)
    finally:
        held.commit()
        thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def sign_up(handle: str, email: str) -> Callable[[], Any]:
    def post():
        client = Client(raise_request_exception=False)
        form = {"email": email, "username": handle, "password1": PASSWORD, "password2": PASSWORD}
        return client.post(reverse("account_signup"), form)

    return post


def another_sign_up(handle: str) -> Callable[[], Any]:
    return lambda: User.objects.create_user(email=f"first-{handle}@example.com", handle=handle, password=PASSWORD)


def another_organization(slug: str) -> Callable[[], Any]:
    founder = UserFactory(handle=f"founder-of-{slug}", email=f"founder@{slug}.example")
    return lambda: org_services.create_organization(creator=founder, slug=slug, name="First")


def assert_sign_up_refused_on_the_handle(response, handle: str) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert "already taken" in str(response.context["form"].errors["username"])
    assert not User.objects.filter(email="second@example.com").exists(), "the losing sign-up left a user"
    assert Organization.objects.filter(slug=handle).count() == 1


def test_two_sign_ups_racing_for_one_handle_answer_the_form_error_to_the_second():
    response = race(another_sign_up("ada"), sign_up("ada", "second@example.com"))
    assert_sign_up_refused_on_the_handle(response, "ada")
    assert User.objects.get(handle="ada").email == "first-ada@example.com"


def test_a_sign_up_racing_a_new_organization_for_its_name_answers_the_form_error():
    response = race(another_organization("acme"), sign_up("acme", "second@example.com"))
    assert_sign_up_refused_on_the_handle(response, "acme")
    assert not Organization.objects.get(slug="acme").is_personal


def test_an_organization_created_through_the_api_racing_a_sign_up_answers_400_on_slug():
    creator = UserFactory(handle="creator", email="creator@example.com")
    client = api_client_for(creator)
    client.raise_request_exception = False
    response = race(another_sign_up("ada"), lambda: client.post("/api/v1/orgs/", {"slug": "ada", "name": "Ada"}))
    assert response.status_code == 400, response.content[:300]
    assert response.json()["codes"] == {"slug": ["taken"]}
    assert not Membership.objects.filter(user=creator).exclude(organization__slug="creator").exists()


def test_two_organizations_created_on_the_page_for_one_slug_answer_the_form_error_to_the_second():
    creator = UserFactory(handle="creator", email="creator@example.com")
    client = Client(raise_request_exception=False)
    client.force_login(creator)
    form = {"slug": "acme", "name": "Second", "visibility": "private"}
    response = race(another_organization("acme"), lambda: client.post(reverse("org-create"), form))
    assert response.status_code == 400, (response.status_code, response.content[:300])  # the form, with its errors
    assert "already taken" in str(response.context["form"].errors["slug"])
    assert Organization.objects.get(slug="acme").name == "First"


def test_renaming_an_organization_racing_a_sign_up_answers_400_on_slug():
    owner = UserFactory(handle="owner", email="owner@example.com")
    organization = org_services.create_organization(creator=owner, slug="labs", name="Labs")
    client = api_client_for(owner)
    client.raise_request_exception = False
    response = race(another_sign_up("ada"), lambda: client.patch("/api/v1/orgs/labs/", {"slug": "ada"}))
    assert response.status_code == 400, response.content[:300]
    assert response.json()["codes"] == {"slug": ["taken"]}
    organization.refresh_from_db()
    assert organization.slug == "labs"


def test_a_handle_renamed_through_the_api_racing_a_sign_up_answers_400_on_handle():
    user = UserFactory(handle="bob", email="bob@example.com")
    client = api_client_for(user)
    client.raise_request_exception = False
    response = race(another_sign_up("ada"), lambda: client.patch("/api/v1/user/", {"handle": "ada"}))
    assert response.status_code == 400, response.content[:300]
    assert response.json()["codes"] == {"handle": ["taken"]}
    assert User.objects.get(pk=user.pk).handle == "bob"
