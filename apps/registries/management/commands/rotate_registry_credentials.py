"""Re-encrypt every registry's credentials with the newest key of REGISTRY_CREDENTIAL_KEYS (key rotation)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.registries.crypto import rotate_credentials
from apps.registries.models import Registry


class Command(BaseCommand):
    help = "Re-encrypt registry credentials with the first key of REGISTRY_CREDENTIAL_KEYS; then drop old keys."

    def handle(self, *args, **options) -> None:
        rotated = failed = 0
        for registry in Registry.objects.exclude(credentials="").only("pk", "credentials").iterator():
            try:
                token = rotate_credentials(registry.credentials)
            except Exception:  # InvalidToken: no configured key reads it
                failed += 1
                self.stderr.write(f"registry {registry.pk}: no configured key decrypts its credentials")
                continue
            with transaction.atomic():
                Registry.objects.filter(pk=registry.pk, credentials=registry.credentials).update(credentials=token)
            rotated += 1
        self.stdout.write(f"Re-encrypted the credentials of {rotated} registries.")
        if failed:
            raise CommandError(f"{failed} registries have credentials no configured key decrypts; keep the old key.")
