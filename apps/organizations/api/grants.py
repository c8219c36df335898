"""The grants of one object through the API: ``.../grants/`` (GET the list, POST a grant) and
``.../grants/{grantee_type}/{grantee}/{permission}/`` (DELETE: revoke), for models, deployments and registries.

Each app declares its two views (``ObjectGrantListView`` and ``ObjectGrantDetailView`` with ``granted_model``,
``object_lookup`` and the name of its routes); the rules are the same everywhere:

* the object is found through ``restrict(user, "view")`` (within a token's binding): one the caller may not see
  answers 404;
* reading the list needs ``change`` on the object (those who may change it see who else may); granting and revoking
  need ``share``: the owning organization's admins and owners (403 to the others who may see it);
* a token needs the ``read`` scope to read the list and ``admin`` to grant or revoke;
* bad input answers 400 naming the field (``grantee_type``, ``grantee``, ``permission``).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.core import lookup
from apps.core.access import CHANGE, SHARE, VIEW
from apps.core.api.views import api_refusals, bound_organization_id
from apps.organizations.api.views import ServiceErrorsMixin
from apps.organizations.grants import GRANTEE_TYPES, OFFERED_PERMISSIONS, Grant, grant_access, grants_of, revoke_access

GRANTEE_TYPE = OpenApiParameter(
    "grantee_type", str, OpenApiParameter.PATH, enum=list(GRANTEE_TYPES), description="Who the grant is to."
)
GRANTEE = OpenApiParameter(
    "grantee",
    str,
    OpenApiParameter.PATH,
    description="A user's handle, a team as org/team, or an organization's slug.",
)
PERMISSION = OpenApiParameter(
    "permission", str, OpenApiParameter.PATH, enum=list(OFFERED_PERMISSIONS), description="The permission granted."
)


class GrantSerializer(serializers.Serializer):
    """One grant: a permission on the object, to a user, a team or a whole organization."""

    grantee_type = serializers.ChoiceField(choices=GRANTEE_TYPES, help_text="user, team or organization.")
    grantee = serializers.CharField(
        max_length=200,
        help_text="A user's handle; a team's slug (a team of the object's organization) or org/team; "
        "an organization's slug.",
    )
    permission = serializers.ChoiceField(
        choices=OFFERED_PERMISSIONS,
        help_text="view (sees it), run (sees and runs it), change (sees and changes it); a registry has no run.",
    )
    grantee_label = serializers.CharField(read_only=True, help_text="The grantee as people read it.")
    url = serializers.CharField(read_only=True, help_text="This grant's URL: DELETE it to revoke the grant.")


class ObjectGrantsMixin(ServiceErrorsMixin):
    """Finds the object the URL names through restrict() and checks the action the request needs."""

    granted_model: type[models.Model]
    detail_route: str  # the URL name of the detail route, in the ``api`` namespace
    requires_signed_in = True
    scope_for_action = {VIEW: TokenScope.READ, CHANGE: TokenScope.READ, SHARE: TokenScope.ADMIN}

    def object_lookup(self, **kwargs: Any) -> dict[str, Any]:
        """The filter that finds the object from the URL's kwargs."""
        raise NotImplementedError

    def get_restrict_action(self) -> str:
        return CHANGE if self.request.method in ("GET", "HEAD", "OPTIONS") else SHARE

    def granted_object(self) -> models.Model:
        if not hasattr(self, "_granted_object"):
            action = self.get_restrict_action()
            who = "admins and owners of" if action == SHARE else "those who may change it in"
            with api_refusals():
                self._granted_object = lookup.find_allowed(
                    self.granted_model._default_manager.select_related("organization"),
                    self.request.user,
                    action,
                    within_organization=bound_organization_id(self.request),
                    message=f"Only {who} “{{obj.organization.slug}}” may "
                    f"{'manage' if action == SHARE else 'see'} who has access to this {{verbose_name}}.",
                    **self.object_lookup(**self.kwargs),
                )
        return self._granted_object

    def grant_url(self, grant: Grant) -> str:
        kwargs = {
            **self.kwargs,
            "grantee_type": grant.grantee_type,
            "grantee": grant.grantee_name,
            "permission": grant.permission,
        }
        return self.request.build_absolute_uri(reverse(f"api:{self.detail_route}", kwargs=kwargs))

    def answer(self, grant: Grant) -> dict[str, Any]:
        return {
            "grantee_type": grant.grantee_type,
            "grantee": grant.grantee_name,
            "permission": grant.permission,
            "grantee_label": grant.grantee_label,
            "url": self.grant_url(grant),
        }


class ObjectGrantListView(ObjectGrantsMixin, APIView):
    """GET: who has been granted what on the object. POST: grant a permission to a user, a team or an organization."""

    def get(self, request, **kwargs: Any) -> Response:
        return Response([self.answer(grant) for grant in grants_of(self.granted_object())])

    def post(self, request, **kwargs: Any) -> Response:
        obj = self.granted_object()
        body = GrantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        grant = grant_access(
            obj=obj,
            actor=request.user,
            grantee_type=data["grantee_type"],
            grantee=data["grantee"],
            permission=data["permission"],
        )
        return Response(self.answer(grant), status=status.HTTP_201_CREATED)


class ObjectGrantDetailView(ObjectGrantsMixin, APIView):
    """DELETE: revoke one grant; access ends at once."""

    def delete(self, request, grantee_type: str, grantee: str, permission: str, **kwargs: Any) -> Response:
        obj = self.granted_object()
        try:
            revoke_access(
                obj=obj, actor=request.user, grantee_type=grantee_type, grantee=grantee, permission=permission
            )
        except LookupError:
            raise exceptions.NotFound(
                f"No {permission} grant to the {grantee_type} “{grantee}” on {obj}.", code="not_found"
            ) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def grant_views(
    *,
    model: type[models.Model],
    tag: str,
    noun: str,
    parameters: list[OpenApiParameter],
    lookup: Any,
    detail_route: str,
) -> tuple[type[APIView], type[APIView]]:
    """The list and detail views of the grants of ``model``, documented in OpenAPI under ``tag``."""

    class ListView(ObjectGrantListView):
        granted_model = model

        def object_lookup(self, **kwargs: Any) -> dict[str, Any]:
            return lookup(**kwargs)

        @extend_schema(
            tags=[tag],
            parameters=parameters,
            summary=f"Who has access to a {noun} (those who may change it)",
            responses={200: GrantSerializer(many=True)},
        )
        def get(self, request, **kwargs: Any) -> Response:
            return super().get(request, **kwargs)

        @extend_schema(
            tags=[tag],
            parameters=parameters,
            summary=f"Grant view, run or change on a {noun} to a user, a team or an organization (admins)",
            request=GrantSerializer,
            responses={201: GrantSerializer, 400: OpenApiResponse(description="The field named and why.")},
        )
        def post(self, request, **kwargs: Any) -> Response:
            return super().post(request, **kwargs)

    class DetailView(ObjectGrantDetailView):
        granted_model = model

        def object_lookup(self, **kwargs: Any) -> dict[str, Any]:
            return lookup(**kwargs)

        @extend_schema(
            tags=[tag],
            parameters=[*parameters, GRANTEE_TYPE, GRANTEE, PERMISSION],
            summary=f"Revoke a grant on a {noun} (admins); access ends at once",
            request=None,
            responses={204: None},
        )
        def delete(self, request, **kwargs: Any) -> Response:
            return super().delete(request, **kwargs)

    name = model.__name__
    ListView.__name__ = ListView.__qualname__ = f"{name}GrantListView"
    DetailView.__name__ = DetailView.__qualname__ = f"{name}GrantDetailView"
    ListView.detail_route = DetailView.detail_route = detail_route
    return ListView, DetailView
