"""The registries API: configure registries (organization admins), test connections, start syncs, read history.

A registry's configuration can hold internal URLs and is the admins' business: members and viewers get 403,
outsiders 404 (the organization's models themselves are in the catalog, under the catalog's permissions).
"""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.core import lookup
from apps.core.api.views import RestrictedModelViewSet, RestrictedViewSetMixin, bound_organization_id
from apps.organizations.api.views import ORG_SLUG, OrganizationScopedMixin
from apps.registries import services
from apps.registries.api.serializers import (
    BackendSerializer,
    ConnectionCheckSerializer,
    RegistrySerializer,
    RegistryWriteSerializer,
    SyncSerializer,
)
from apps.registries.models import Registry, RegistrySync
from apps.registries.sdk import available_backends

SLUG = OpenApiParameter("registry_slug", str, OpenApiParameter.PATH, description="The registry's slug.")
ADMIN_SCOPE = {"create": TokenScope.ADMIN, "change": TokenScope.ADMIN, "delete": TokenScope.ADMIN}


@extend_schema(tags=["registries"], summary="Installed registry backends and their parameters")
class BackendListView(APIView):
    """Every backend found through the ``gpux_portal.registries`` entry points, with its parameters schema."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=BackendSerializer(many=True))
    def get(self, request) -> Response:
        return Response([backend.describe() for backend in available_backends().values()])


class GrantedRegistryMixin:
    """Routes about one registry answer its organization's admins and whoever restrict() lets take the request's
    action on it (a grant of view or change); the others get the admins' 403 as before. Collections (the list,
    adding a registry) stay the admins'."""

    # The restrict() action on the registry that each request needs (starting a sync or testing it changes it).
    REGISTRY_ACTION = {"view": "view", "change": "change", "delete": "delete", "create": "change"}

    def registry_action(self) -> str | None:
        if "registry_slug" not in self.kwargs:
            return None
        action = self.get_restrict_action() if hasattr(self, "get_restrict_action") else None
        return self.REGISTRY_ACTION.get(action or "create")

    @property
    def admin_only(self) -> bool:
        action = self.registry_action()
        if action is None:
            return True
        granted = Registry.objects.restrict(
            self.request.user, action, within_organization=bound_organization_id(self.request)
        ).filter(organization=self.organization, slug=self.kwargs["registry_slug"])
        return not granted.exists()


@extend_schema(tags=["registries"], parameters=[ORG_SLUG])
@extend_schema_view(
    list=extend_schema(summary="An organization's registries (admins)"),
    retrieve=extend_schema(summary="A registry (admins)", parameters=[SLUG]),
    create=extend_schema(summary="Add a registry (admins)", request=RegistryWriteSerializer),
    partial_update=extend_schema(
        summary="Change a registry (admins); sensitive parameters left out keep their value",
        request=RegistryWriteSerializer,
        parameters=[SLUG],
    ),
    destroy=extend_schema(summary="Delete a registry (admins); its models stay in the catalog", parameters=[SLUG]),
)
class RegistryViewSet(GrantedRegistryMixin, OrganizationScopedMixin, RestrictedModelViewSet):
    queryset = Registry.objects.select_related("last_sync__job")
    serializer_class = RegistrySerializer
    lookup_field = "slug"
    lookup_url_kwarg = "registry_slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    scope_for_action = ADMIN_SCOPE
    search_fields = ["slug", "name", "description", "backend"]
    ordering_fields = ["slug", "name", "created_at", "next_sync_at"]
    ordering = ["slug"]
    filterset_fields = ["backend", "mode", "enabled"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Registry.objects.none()
        return super().get_queryset().annotate(model_count=Count("links"))

    def create(self, request, *args, **kwargs) -> Response:
        body = RegistryWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.fields_given()
        registry = services.create_registry(
            organization=self.organization,
            actor=request.user,
            backend=data.pop("backend", None),
            config=data.pop("config", None),
            **data,
        )
        answer = self.get_serializer(self.get_queryset().get(pk=registry.pk))
        return Response(answer.data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs) -> Response:
        registry = self.get_object()
        body = RegistryWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = body.fields_given()
        if "backend" in data and data["backend"] != registry.backend:
            raise exceptions.ValidationError({"backend": ["A registry's backend cannot change; add a new registry."]})
        data.pop("backend", None)
        with self.locked_for(registry, "change") as locked:
            services.update_registry(registry=locked, actor=request.user, config=data.pop("config", None), **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=registry.pk)).data)

    def update(self, request, *args, **kwargs) -> Response:
        raise exceptions.MethodNotAllowed("PUT")

    def delete_object(self, instance: Registry) -> None:
        services.delete_registry(registry=instance, actor=self.request.user)


class RegistryChildMixin(GrantedRegistryMixin, OrganizationScopedMixin):
    @property
    def registry(self) -> Registry:
        if not hasattr(self, "_registry"):
            self._registry = lookup.find_allowed(
                Registry.objects.all(),
                self.request.user,
                within_organization=bound_organization_id(self.request),
                organization=self.organization,
                slug=self.kwargs["registry_slug"],
            )
        return self._registry


@extend_schema(
    tags=["registries"],
    summary="Test a registry's connection and credentials (admins)",
    parameters=[ORG_SLUG, SLUG],
    request=None,
    responses={200: ConnectionCheckSerializer},
)
class RegistryCheckView(RegistryChildMixin, APIView):
    """Reads the first page of the listing; answers whether that worked and what the registry said."""

    scope_for_action = {"create": TokenScope.ADMIN}

    def post(self, request, org_slug: str, registry_slug: str) -> Response:
        ok, message = services.check_connection(registry=self.registry, actor=request.user)
        return Response({"ok": ok, "message": message})


@extend_schema(tags=["registries"], parameters=[ORG_SLUG, SLUG])
@extend_schema_view(
    list=extend_schema(summary="A registry's sync runs, newest first (admins)"),
    retrieve=extend_schema(summary="One sync run with its per-model errors (admins)"),
    create=extend_schema(
        summary="Start a sync (admins): 202 with the run; 409 while one is queued or running",
        request=None,
        responses={202: SyncSerializer, 409: OpenApiResponse(description="A sync is already queued or running.")},
    ),
)
class RegistrySyncViewSet(
    RegistryChildMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = RegistrySync.objects.select_related("job")
    serializer_class = SyncSerializer
    lookup_field = "pk"
    lookup_url_kwarg = "sync_id"
    lookup_value_regex = "[0-9]+"
    scope_for_action = {"create": TokenScope.ADMIN}
    ordering = ["-created_at", "-id"]
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RegistrySync.objects.none()
        return super().get_queryset().filter(registry=self.registry)

    def filter_to_parent(self, queryset):
        return queryset.filter(registry__organization=self.organization)

    def create(self, request, *args, **kwargs) -> Response:
        try:
            sync = services.start_sync(registry=self.registry, actor=request.user)
        except services.SyncAlreadyRunning as exc:
            answer = SyncSerializer(exc.sync, context=self.get_serializer_context()).data
            return Response(
                {"detail": str(exc), "code": "sync_running", "sync": answer}, status=status.HTTP_409_CONFLICT
            )
        sync = RegistrySync.objects.select_related("job").get(pk=sync.pk)
        return Response(self.get_serializer(sync).data, status=status.HTTP_202_ACCEPTED)
