"""Every user has a personal organization from the moment the row exists, whatever made the user
(sign-up, createsuperuser, LDAP or SAML provisioning): so it hangs on post_save rather than on one form."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.accounts.models import User


@receiver(post_save, sender=User, dispatch_uid="accounts.personal_organization")
def create_personal_organization_for_new_user(sender, instance: User, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        from apps.organizations.services import create_personal_organization

        create_personal_organization(user=instance)
