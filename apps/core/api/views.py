"""Base viewsets: they map the request to a restrict() action and let restrict() decide.

* list/retrieve go through ``restrict(user, "view")``: an object the caller may not view answers 404;
* other actions re-check ``restrict(user, action)`` on the object: visible but not allowed answers 403;
* writes are re-checked inside the transaction with the row locked; a failed re-check rolls back;
* what is done *in* an organization (create objects, read its audit trail) is a restrict() action on it;
* a token bound to an organization narrows every queryset to that organization and public objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, mixins, viewsets

from apps.core import lookup
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
        obj = super().get_object()  # among those the caller may view (get_queryset): else 404
        action = self.get_restrict_action()
        if action not in (None, "view", "create"):
            self.check_restricted(obj, action)
        return obj

    def check_restricted(self, obj, action: str) -> None:
        """403 unless the caller may ``action`` ``obj`` (within this route's parent and the token's binding)."""
        if not self.restricted(action).filter(pk=obj.pk).exists():
            raise exceptions.PermissionDenied(f"You may view this {obj._meta.verbose_name} but not {action} it.")

    def lock_restricted(self, obj, action: str):
        """Inside a transaction: re-fetch and lock the row through restrict(); 403 (and roll back) if now refused."""
        with api_refusals():
            return lookup.lock_allowed(
                self.filter_to_parent(super().get_queryset()),
                obj,
                self.request.user,
                action,
                within_organization=bound_organization_id(self.request),
            )

    @contextmanager
    def locked_for(self, obj, action: str) -> Iterator[Any]:
        """A write of ``obj`` (core's one lookup path, apps/core/lookup.py): one transaction, in which the row is
        locked and the caller's right to ``action`` it re-checked through restrict() (403, and nothing written, if
        it was lost since the object was looked up). Yields the locked row; the write goes inside the ``with``."""
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

    def require_organization_action(self, action: str, *, doing: str = "do this") -> None:
        """What is done in the organization (``"create"`` objects, read the ``"audit"`` trail...): a restrict()
        action on it; 403 otherwise, ``token_binding`` for a token bound elsewhere (apps/core/lookup.py)."""
        with api_refusals():
            lookup.require_organization_action(
                self.request.user,
                self.organization,
                action,
                within_organization=bound_organization_id(self.request),
                doing=doing,
            )

    def require_role(self, role: Any) -> None:
        """403 unless the caller's role in the organization is at least ``role`` (a token bound elsewhere:
        ``token_binding``). Prefer ``require_organization_action``."""
        with api_refusals():
            lookup.refuse_outside_binding(self.organization, bound_organization_id(self.request))
        mine = role_of(self.request.user, self.organization)
        if mine is None or mine < role:
            raise exceptions.PermissionDenied(
                f"Only an organization {role.label} or above may do this in “{self.organization.slug}”."
            )


@contextmanager
def api_refusals() -> Iterator[None]:
    """Core's lookup refuses with Django's PermissionDenied (pages answer it as it is): the API's own, code kept."""
    try:
        yield
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None, code=getattr(exc, "code", None)) from None


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
