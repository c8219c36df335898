"""Every user has a personal organization from the moment the row exists, whatever made the user
(sign-up, createsuperuser, LDAP or SAML provisioning): so it hangs on post_save rather than on one form.
A membership that ends takes the user's tokens bound to its organization with it."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.accounts.models import User
from apps.accounts.services import revoke_member_tokens
from apps.organizations.signals import membership_ended


@receiver(post_save, sender=User, dispatch_uid="accounts.personal_organization")
def create_personal_organization_for_new_user(sender, instance: User, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        from apps.organizations.services import create_personal_organization

        create_personal_organization(user=instance)


@receiver(membership_ended, dispatch_uid="accounts.revoke_tokens_of_ended_membership")
def revoke_tokens_of_ended_membership(sender: Any, *, organization: Any, user: Any, by: Any, **kwargs: Any) -> None:
    """organizations' ``membership_ended``: the user's tokens bound to the organization go with the membership."""
    revoke_member_tokens(organization=organization, user=user, by=by)
