"""``manage.py verify_audit_chain``: recompute a chain's hashes and links; exit non-zero at the first broken link."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.models import AuditChain
from apps.audit.verification import (
    ChainNotFound,
    VerificationResult,
    record_verification,
    verify_all_chains,
    verify_chain,
)


class Command(BaseCommand):
    help = (
        "Verify an audit hash chain (an organization's, the platform's, or all of them). Prints one OK line per "
        "intact chain; for a broken one, names the first broken link (seq, event uuid, what is wrong) and exits 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--organization", metavar="SLUG", help="the chain of the organization with this slug")
        which.add_argument("--platform", action="store_true", help="the platform chain (sign-ins, operator actions)")
        which.add_argument("--all", action="store_true", help="every chain")

    def handle(self, *args, organization: str | None, platform: bool, all: bool, **options) -> None:
        if all:
            results = verify_all_chains()
            record_verification(results)  # what /metrics reports (gpux_audit_chains)
            if not results:
                self.stdout.write(self.style.SUCCESS("OK: no audit chain recorded yet"))
                return
        else:
            key = AuditChain.PLATFORM_KEY if platform else self._organization_key(organization)
            try:
                results = [verify_chain(key)]
            except ChainNotFound:
                self.stdout.write(self.style.SUCCESS(f"OK {key}: empty chain (nothing recorded yet)"))
                return
        for result in results:
            self._report(result)
        broken = [r for r in results if not r.ok]
        if broken:
            names = ", ".join(f"{r.chain_key} at seq {r.problem.seq}" for r in broken)
            raise CommandError(f"{len(broken)} of {len(results)} audit chain(s) broken: {names}")

    def _organization_key(self, slug: str) -> str:
        from apps.organizations.models import Organization

        organization_id = Organization.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if organization_id is None:
            raise CommandError(f"No organization with the slug “{slug}”.")
        return AuditChain.key_for(organization_id)

    def _report(self, result: VerificationResult) -> None:
        if result.ok:
            self.stdout.write(self.style.SUCCESS(str(result)))
        else:
            self.stderr.write(self.style.ERROR(str(result)))
