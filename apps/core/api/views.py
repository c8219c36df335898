"""Base viewsets: they map the request to a restrict() action and let restrict() decide.

* list/retrieve go through ``restrict(user, "view")``: an object the caller may not view answers 404;
* other actions re-check ``restrict(user, action)`` on the object: visible but not allowed answers 403;
* writes are re-checked inside the transaction with the row locked; a failed re-check rolls back;
* a token bound to an organization narrows every queryset to that organization and public objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, mixins, viewsets

from apps.core.access import bound_organization_id, organization_model, role_of

# How DRF's actions map onto restrict() actions; a custom @action passes ``restrict_action=...``.
ACTION_FOR_VIEWSET_ACTION = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "create",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class RestrictedViewSetMixin:
    """Use with a GenericViewSet whose ``queryset`` is a RestrictedQuerySet."""

    restrict_action: str | None = None  # set per route by @action(restrict_action=...)
    scope_for_action: dict = {}

    def get_restrict_action(self) -> str | None:
        if self.restrict_action:
            return self.restrict_action
        return ACTION_FOR_VIEWSET_ACTION.get(getattr(self, "action", None) or "")

    def restricted(self, action: str):
        base = super().get_queryset()
        return self.filter_to_parent(
            base.restrict(self.request.user, action, within_organization=bound_organization_id(self.request))
        )

    def filter_to_parent(self, queryset):
        """Override in nested viewsets to keep only the parent's children."""
        return queryset

    def get_queryset(self):
        return self.restricted("view")

    def get_object(self):
        obj = super().get_object()
        action = self.get_restrict_action()
        if action not in (None, "view", "create"):
            self.check_restricted(obj, action)
        return obj

    def check_restricted(self, obj, action: str) -> None:
        if not self.restricted(action).filter(pk=obj.pk).exists():
            raise exceptions.PermissionDenied(f"You may view this {obj._meta.verbose_name} but not {action} it.")

    def lock_restricted(self, obj, action: str):
        """Inside a transaction: re-fetch and lock the row through restrict(); 403 (and roll back) if now refused."""
        locked = self.restricted(action).select_for_update(of=("self",)).filter(pk=obj.pk).first()
        if locked is None:
            raise exceptions.PermissionDenied(f"You may no longer {action} this {obj._meta.verbose_name}.")
        return locked

    @contextmanager
    def locked_for(self, obj, action: str) -> Iterator[Any]:
        """A write of ``obj``: one transaction, in which the row is locked and the caller's right to ``action`` it
        re-checked through restrict() (403, and nothing written, if it was lost since the object was looked up).
        Yields the locked row; the write goes inside the ``with``."""
        with transaction.atomic():
            yield self.lock_restricted(obj, action)

    def perform_update(self, serializer) -> None:
        with self.locked_for(serializer.instance, "change"):
            self.save_update(serializer)

    def save_update(self, serializer) -> None:
        serializer.save()

    def perform_destroy(self, instance) -> None:
        with self.locked_for(instance, "delete"):
            self.delete_object(instance)

    def delete_object(self, instance) -> None:
        instance.delete()


class OrganizationNestedMixin:
    """For routes under ``/orgs/{org_slug}/``: the organization itself is resolved through restrict()."""

    organization_lookup_kwarg = "org_slug"

    @property
    def organization(self):
        if not hasattr(self, "_organization"):
            visible = organization_model().objects.restrict(
                self.request.user, "view", within_organization=bound_organization_id(self.request)
            )
            self._organization = get_object_or_404(visible, slug=self.kwargs[self.organization_lookup_kwarg])
        return self._organization

    def filter_to_parent(self, queryset):
        return queryset.filter(organization=self.organization)

    def require_role(self, role: Any) -> None:
        """For creating objects in the organization: 403 unless the caller's role there is at least ``role``."""
        bound = bound_organization_id(self.request)
        if bound is not None and bound != self.organization.pk:
            raise exceptions.PermissionDenied(
                f"This token is bound to another organization; it cannot act in “{self.organization.slug}”.",
                code="token_binding",
            )
        mine = role_of(self.request.user, self.organization)
        if mine is None or mine < role:
            raise exceptions.PermissionDenied(
                f"Only an organization {role.label} or above may do this in “{self.organization.slug}”."
            )


class RestrictedModelViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    pass


class RestrictedReadOnlyViewSet(
    RestrictedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    pass
