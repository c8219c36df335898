"""The caller's profile and tokens (``/user/``, ``/user/tokens/``) and an organization's bound tokens.

Who may do what (docs/api/tokens.md):

* reading one's profile and tokens needs any token scope; changing them (PATCH /user/, creating or revoking
  a token) needs a signed-in session or a token of scope ``admin``;
* a token bound to an organization sees only the caller's tokens bound to that organization, may create
  tokens only bound to it, and may change the profile only when it is bound to the personal organization;
* ``/orgs/{org_slug}/tokens/`` is for that organization's admins and owners: members and viewers get 403,
  outsiders (and tokens bound elsewhere) 404.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    OrganizationApiTokenSerializer,
    UserSerializer,
)
from apps.accounts.filtersets import ApiTokenFilterSet
from apps.accounts.models import ApiToken, TokenScope
from apps.accounts.services import (
    create_api_token,
    field_error,
    personal_organization_of,
    revoke_api_token,
    update_profile,
)
from apps.core.api.permissions import SignedIn, TokenScopePermission
from apps.core.api.views import (
    ACTION_FOR_VIEWSET_ACTION,
    OrganizationNestedMixin,
    RestrictedViewSetMixin,
    bound_organization_id,
)
from apps.core.lookup import ADMINISTER
from apps.organizations.models import Organization

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
TOKEN_ORDERING = ["created_at", "name", "expires_at", "last_used_at"]


@extend_schema_view(
    get=extend_schema(summary="Your profile", tags=["user"]),
    patch=extend_schema(
        summary="Change your name or handle",
        description="Renaming the handle renames your personal organization. Needs a session or an admin token.",
        tags=["user"],
    ),
)
class UserDetailView(generics.RetrieveUpdateAPIView):
    """The signed-in user's profile."""

    serializer_class = UserSerializer
    permission_classes = [SignedIn, TokenScopePermission]
    scope_for_action = {"change": TokenScope.ADMIN}
    http_method_names = ["get", "patch", "head", "options"]
    filter_backends: list = []
    pagination_class = None

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def get_object(self):
        return self.request.user

    def perform_update(self, serializer) -> None:
        bound = bound_organization_id(self.request)
        if bound is not None:
            personal = personal_organization_of(self.request.user)
            if personal is None or personal.pk != bound:
                raise exceptions.PermissionDenied(
                    "This token is bound to an organization: only a session or an unbound token (or one bound to "
                    "your personal organization) may change your profile.",
                    code="token_binding",
                )
        data = serializer.validated_data
        serializer.instance = update_profile(
            user=self.request.user,
            **{field: data[field] for field in ("name", "handle") if field in data},
        )


@extend_schema(tags=["tokens"])
@extend_schema_view(
    list=extend_schema(summary="Your API tokens"),
    retrieve=extend_schema(summary="One of your API tokens"),
    create=extend_schema(
        summary="Create an API token",
        description="The answer's `token` field holds the full token: it is shown this once and never again.",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke one of your API tokens", responses={204: None}),
)
class UserTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own API tokens. A token bound to an organization sees only those bound to the same one."""

    serializer_class = ApiTokenSerializer
    permission_classes = [SignedIn, TokenScopePermission]
    scope_for_action = {"create": TokenScope.ADMIN, "delete": TokenScope.ADMIN}
    queryset = ApiToken.objects.none()
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    filterset_class = ApiTokenFilterSet
    search_fields = ["name", "prefix"]
    ordering_fields = TOKEN_ORDERING
    ordering = ["-created_at"]

    def get_restrict_action(self) -> str | None:
        return ACTION_FOR_VIEWSET_ACTION.get(getattr(self, "action", None) or "")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        tokens = ApiToken.objects.filter(user=self.request.user).select_related("organization")
        bound = bound_organization_id(self.request)
        if bound is not None:
            tokens = tokens.filter(organization_id=bound)
        return tokens

    def get_serializer_class(self):
        if self.action == "create":
            return ApiTokenCreateSerializer
        return ApiTokenSerializer

    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, raw = create_api_token(
            user=request.user,
            name=data["name"],
            scope=data["scope"],
            organization=self._organization_named(data.get("organization")),
            expires_at=data.get("expires_at"),
            via_token=request.auth if isinstance(request.auth, ApiToken) else None,
            kind=data.get("kind", "personal"),
        )
        answer = ApiTokenCreatedSerializer(token, context={**self.get_serializer_context(), "raw_token": raw})
        return Response(answer.data, status=status.HTTP_201_CREATED)

    def _organization_named(self, slug: str | None) -> Organization | None:
        slug = (slug or "").strip().lower()
        if not slug:
            return None
        organization = Organization.objects.restrict(self.request.user, "view").filter(slug=slug).first()
        if organization is None:
            # Same words as for an organization one can see but does not belong to: existence is not revealed.
            raise field_error(
                "organization",
                f"You are not a member of “{slug}”; a token can only be bound to one.",
                code="not_a_member",
            )
        return organization

    def perform_destroy(self, instance: ApiToken) -> None:
        revoke_api_token(token=instance, by=self.request.user)


@extend_schema(
    tags=["tokens"],
    parameters=[OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")],
)
@extend_schema_view(
    list=extend_schema(summary="Tokens bound to an organization (its admins only)"),
    retrieve=extend_schema(summary="A token bound to an organization (its admins only)"),
    destroy=extend_schema(summary="Revoke a token bound to an organization (its admins only)", responses={204: None}),
)
class OrganizationTokenViewSet(
    OrganizationNestedMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """API tokens bound to the organization, for its admins and owners (members and viewers get 403)."""

    queryset = ApiToken.objects.select_related("user", "organization")
    serializer_class = OrganizationApiTokenSerializer
    requires_signed_in = True  # a token list is never public: anonymous callers are asked to sign in (401)
    scope_for_action = {"delete": TokenScope.ADMIN}
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    filterset_class = ApiTokenFilterSet
    search_fields = ["name", "prefix", "user__handle"]
    ordering_fields = TOKEN_ORDERING
    ordering = ["-created_at"]

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if getattr(self, "swagger_fake_view", False):
            return
        organization = self.organization  # 404 for an organization the caller may not view
        bound = bound_organization_id(request)
        if bound is not None and bound != organization.pk:
            # A token's list is never public: to a token bound elsewhere this organization's tokens do not exist.
            raise exceptions.NotFound()
        self.require_organization_action(ADMINISTER)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return super().get_queryset()

    def delete_object(self, instance: ApiToken) -> None:
        revoke_api_token(token=instance, by=self.request.user)
