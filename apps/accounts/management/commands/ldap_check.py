"""``manage.py ldap_check``: check the LDAP / Active Directory configuration step by step; exit 1 if a step fails."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.ldap_check import FAILED, OK, WARNING, LdapCheck


class Command(BaseCommand):
    help = (
        "Check directory sign-in: the libraries, the configuration, the connection to each server, StartTLS, the "
        "service account's bind, the user and group search bases, the groups of the settings and of every LDAP "
        "group mapping; with --user, one person's entry, attributes, password (--ask-password) and groups, and what "
        "the mappings give them. Prints what fails and how to fix it; exits 1 when something fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", metavar="EMAIL", help="check this person as the sign-in form would find them")
        parser.add_argument(
            "--ask-password", action="store_true", help="also check the person's password (asked, never echoed)"
        )

    def handle(self, *args, user: str | None, ask_password: bool, **options) -> None:
        if ask_password and not user:
            raise CommandError("--ask-password needs --user")
        password = getpass.getpass(f"Directory password of {user}: ") if ask_password else None
        report = LdapCheck(user=user, password=password).run()
        styles = {OK: self.style.SUCCESS, FAILED: self.style.ERROR, WARNING: self.style.WARNING}
        for line in report.render().splitlines():
            status = line[1:].split("]", 1)[0].strip()
            self.stdout.write(styles.get(status, str)(line))
        if report.failed:
            raise CommandError("LDAP check failed: see the FAILED lines above.")
        self.stdout.write(self.style.SUCCESS("LDAP check passed."))
