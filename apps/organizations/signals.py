"""What the organizations app tells other apps without importing them."""

from __future__ import annotations

from django.dispatch import Signal

# A membership ended (the member left, was removed, or their identity provider removed them), sent inside the
# transaction that ended it with ``organization``, ``user`` and ``by`` (who ended it): the accounts app revokes the
# user's tokens bound to the organization (apps/accounts/apps.py).
membership_ended = Signal()
