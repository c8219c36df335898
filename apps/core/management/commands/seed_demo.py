"""``manage.py seed_demo``: the demo organization of ``make run``, made once.

Creates an organization ``demo`` owned by owner@demo.local with member@demo.local as a member (through a real
invitation, accepted), both with verified e-mail addresses, and a team. The passwords are random, written to
``<var>/demo-credentials.json`` (mode 0600) and printed; ``make run`` prints them again on every start.
Running it again changes nothing (it says so), unless ``--reset-passwords``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

DEMO_ORGANIZATION = "demo"
DEMO_USERS = (
    # (e-mail, handle, name)
    ("owner@demo.local", "demo-owner", "Demo Owner"),
    ("member@demo.local", "demo-member", "Demo Member"),
)


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def read_credentials() -> dict[str, str]:
    """``{e-mail: password}`` of the demo accounts, as seed_demo wrote them (empty when not seeded here)."""
    try:
        return json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_credentials(credentials: dict[str, str]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(credentials, handle, indent=2)


def _new_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


class Command(BaseCommand):
    help = "Create the demo organization (owner@demo.local, member@demo.local) once; print their passwords."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Give the demo accounts new passwords and print them."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo makes accounts with printed passwords: it refuses to run in production.")
        from apps.organizations.models import Organization

        if Organization.objects.filter(slug=DEMO_ORGANIZATION).exists():
            if options["reset_passwords"]:
                self._print(self._reset_passwords())
            else:
                self.stdout.write("The demo organization exists already; nothing to do.")
                self._print(read_credentials())
            return
        credentials = self._seed()
        _write_credentials(credentials)
        self.stdout.write(self.style.SUCCESS("Demo data created."))
        self._print(credentials)

    def _print(self, credentials: dict[str, str]) -> None:
        for email, password in credentials.items():
            self.stdout.write(f"  {email}  password: {password}")

    def _reset_passwords(self) -> dict[str, str]:
        from apps.accounts.models import User

        credentials = {}
        for email, _handle, _name in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is not None:
                password = _new_password()
                user.set_password(password)
                user.save(update_fields=["password"])
                credentials[email] = password
        _write_credentials(credentials)
        return credentials

    # The invitation e-mail of the seed is not worth printing.
    @override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    def _seed(self) -> dict[str, str]:
        from allauth.account.models import EmailAddress

        from apps.accounts.models import User
        from apps.core.access import Role
        from apps.organizations import services

        credentials: dict[str, str] = {}
        with transaction.atomic():
            users = {}
            for email, handle, name in DEMO_USERS:
                password = _new_password()
                user = User.objects.filter(email=email).first() or User.objects.create_user(
                    email=email, handle=handle, name=name, password=password
                )
                user.set_password(password)
                user.save(update_fields=["password"])
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                users[email] = user
                credentials[email] = password
            owner, member = users["owner@demo.local"], users["member@demo.local"]
            organization = services.create_organization(
                creator=owner,
                slug=DEMO_ORGANIZATION,
                name="Demo",
                description="A demo organization made by make run: try inviting someone, making a team or a token.",
                visibility="internal",
            )
            invitation = services.create_invitation(
                actor=owner, organization=organization, email=member.email, role=Role.MEMBER
            )
            services.accept_invitation(user=member, key=invitation.key)
            team = services.create_team(
                actor=owner, organization=organization, slug="ml-engineers", name="ML engineers"
            )
            services.add_team_member(actor=owner, team=team, user=owner)
            services.add_team_member(actor=owner, team=team, user=member)
        return credentials
