"""The organizations API: organizations, members, leaving, teams, team members, invitations and accepting.

restrict() decides who sees and does what (apps/core/api/views.py): an object the caller may not view
answers 404 (an outsider asking about a private organization's members, teams or invitations), one they
may view but not act on answers 403 (a viewer changing a team). The services then apply the finer rules of
the role table (only owners touch owners, nobody grants above their own role, the last owner stays) and
answer 400 naming the field, or 403.

Token scopes (docs/api/organizations.md): reading needs ``read``; creating an organization needs
``write``; changing an organization's settings, members, teams or invitations, leaving one and accepting
an invitation need ``admin``. A token bound to an organization acts only there: it cannot create
organizations or accept invitations to others.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, permissions, status, viewsets
from rest_framework.response import Response

from apps.accounts.models import TokenScope
from apps.core.api.views import (
    ACTION_FOR_VIEWSET_ACTION,
    OrganizationNestedMixin,
    RestrictedModelViewSet,
    RestrictedViewSetMixin,
    bound_organization_id,
)
from apps.core.lookup import ADMINISTER
from apps.organizations import services
from apps.organizations.api.serializers import (
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationSerializer,
    MembershipSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    TeamMemberAddSerializer,
    TeamMemberSerializer,
    TeamSerializer,
)
from apps.organizations.filtersets import (
    InvitationFilterSet,
    MembershipFilterSet,
    OrganizationFilterSet,
    TeamFilterSet,
    TeamMemberFilterSet,
)
from apps.organizations.models import Invitation, Membership, Organization, Team

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
TEAM_SLUG = OpenApiParameter("team_slug", str, OpenApiParameter.PATH, description="The team's slug.")
HANDLE = OpenApiParameter("handle", str, OpenApiParameter.PATH, description="The user's handle.")
INVITATION_UUID = OpenApiParameter("uuid", str, OpenApiParameter.PATH, description="The invitation's UUID.")
ADMIN_SCOPE_FOR_WRITES = {"create": TokenScope.ADMIN, "change": TokenScope.ADMIN, "delete": TokenScope.ADMIN}


class ServiceErrorsMixin:
    """Keep the message of a service's Django ``PermissionDenied`` (the generic handler would drop it)."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        return super().handle_exception(exc)


def refuse_outside_binding(request, organization: Organization) -> None:
    """403 for a token bound to another organization: there it may only read what anyone may read."""
    bound = bound_organization_id(request)
    if bound is not None and bound != organization.pk:
        raise exceptions.PermissionDenied(
            f"This token is bound to another organization: in “{organization.slug}” it may only read public objects.",
            code="token_binding",
        )


class OrganizationScopedMixin(ServiceErrorsMixin, OrganizationNestedMixin):
    """Routes under ``/orgs/{org_slug}/``: the organization first (404 if the caller may not view it), then,
    for writes (and every request of an ``admin_only`` route), a token bound elsewhere is refused, and
    ``admin_only`` routes answer 403 below admin."""

    admin_only = False

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if getattr(self, "swagger_fake_view", False):
            return
        if self.admin_only or request.method not in permissions.SAFE_METHODS:
            refuse_outside_binding(request, self.organization)
        if self.admin_only:
            self.require_organization_action(ADMINISTER)


def refuse_bound_token(request, doing: str) -> None:
    """403 for a token bound to an organization: it acts in that organization only."""
    if bound_organization_id(request) is not None:
        raise exceptions.PermissionDenied(
            f"This token is bound to an organization: it cannot {doing}. Use an unbound token or a session.",
            code="token_binding",
        )


# -- organizations --------------------------------------------------------------------------------------------
@extend_schema(tags=["organizations"])
@extend_schema_view(
    list=extend_schema(summary="Organizations you can see, with your role in each"),
    retrieve=extend_schema(summary="An organization", parameters=[ORG_SLUG]),
    create=extend_schema(
        summary="Create an organization (you become its owner)",
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
    ),
    partial_update=extend_schema(summary="Change an organization's settings (owners)", parameters=[ORG_SLUG]),
    destroy=extend_schema(
        summary="Delete an organization (owners; not a personal one)", parameters=[ORG_SLUG], responses={204: None}
    ),
)
class OrganizationViewSet(ServiceErrorsMixin, RestrictedModelViewSet):
    """Organizations. Anyone signed in creates one; owners change its settings or delete it."""

    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "org_slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    scope_for_action = {"change": TokenScope.ADMIN, "delete": TokenScope.ADMIN}
    filterset_class = OrganizationFilterSet
    search_fields = ["slug", "name", "description"]
    ordering_fields = ["slug", "name", "created_at", "updated_at"]
    ordering = ["slug"]

    def get_queryset(self):
        organizations = super().get_queryset()
        user = self.request.user
        if user.is_authenticated:
            mine = Membership.objects.filter(organization=OuterRef("pk"), user=user).values("role")[:1]
            return organizations.annotate(caller_role=Subquery(mine))
        return organizations.annotate(caller_role=Value(None, output_field=IntegerField()))

    def create(self, request, *args, **kwargs) -> Response:
        refuse_bound_token(request, "create organizations")
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = services.create_organization(creator=request.user, **serializer.validated_data)
        answer = self.get_serializer(self.get_queryset().get(pk=organization.pk))
        return Response(answer.data, status=status.HTTP_201_CREATED)

    def save_update(self, serializer) -> None:
        refuse_outside_binding(self.request, serializer.instance)
        organization = services.update_organization(
            actor=self.request.user, organization=serializer.instance, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=organization.pk)

    def delete_object(self, instance: Organization) -> None:
        refuse_outside_binding(self.request, instance)
        services.delete_organization(actor=self.request.user, organization=instance)


@extend_schema(
    tags=["organizations"],
    summary="Leave an organization",
    description="The last owner cannot leave; nor can anyone leave their personal organization.",
    parameters=[ORG_SLUG],
    request=None,
    responses={204: None},
)
class OrganizationLeaveView(OrganizationScopedMixin, generics.GenericAPIView):
    """POST: the caller leaves the organization and its teams."""

    scope_for_action = {"leave": TokenScope.ADMIN}
    serializer_class = None
    filter_backends: list = []
    pagination_class = None

    def get_restrict_action(self) -> str:
        return "leave"

    def post(self, request, *args, **kwargs) -> Response:
        services.leave_organization(user=request.user, organization=self.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- members --------------------------------------------------------------------------------------------------
@extend_schema(tags=["members"], parameters=[ORG_SLUG])
@extend_schema_view(
    list=extend_schema(summary="An organization's members and their roles"),
    retrieve=extend_schema(summary="A member", parameters=[HANDLE]),
    partial_update=extend_schema(
        summary="Change a member's role (admins up to admin; owners for owners)", parameters=[HANDLE]
    ),
    destroy=extend_schema(
        summary="Remove a member (admins up to admin; owners for owners)", parameters=[HANDLE], responses={204: None}
    ),
)
class MembershipViewSet(
    OrganizationScopedMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of an organization, by handle. People join through invitations."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    lookup_field = "user__handle"
    lookup_url_kwarg = "handle"
    http_method_names = ["get", "patch", "delete", "head", "options"]
    scope_for_action = ADMIN_SCOPE_FOR_WRITES
    filterset_class = MembershipFilterSet
    search_fields = ["user__handle", "user__name"]
    ordering_fields = ["role", "user__handle", "created_at"]
    ordering = ["-role", "user__handle"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return super().get_queryset()

    def save_update(self, serializer) -> None:
        serializer.instance = services.change_member_role(
            actor=self.request.user, membership=serializer.instance, role=serializer.validated_data["role"]
        )

    def delete_object(self, instance: Membership) -> None:
        services.remove_member(actor=self.request.user, membership=instance)


# -- teams ----------------------------------------------------------------------------------------------------
@extend_schema(tags=["teams"], parameters=[ORG_SLUG])
@extend_schema_view(
    list=extend_schema(summary="An organization's teams"),
    retrieve=extend_schema(summary="A team", parameters=[TEAM_SLUG]),
    create=extend_schema(summary="Create a team (admins)"),
    partial_update=extend_schema(summary="Rename or describe a team (admins)", parameters=[TEAM_SLUG]),
    destroy=extend_schema(summary="Delete a team (admins)", parameters=[TEAM_SLUG], responses={204: None}),
)
class TeamViewSet(OrganizationScopedMixin, RestrictedModelViewSet):
    """Teams of an organization, by slug."""

    queryset = Team.objects.all()
    serializer_class = TeamSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "team_slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    scope_for_action = ADMIN_SCOPE_FOR_WRITES
    filterset_class = TeamFilterSet
    search_fields = ["slug", "name", "description"]
    ordering_fields = ["slug", "name", "created_at", "member_count"]
    ordering = ["slug"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Team.objects.none()
        # Annotated here, not on ``queryset``: the writes' row lock (FOR UPDATE) refuses a GROUP BY.
        return super().get_queryset().annotate(member_count=Count("group__user", distinct=True))

    def _answer(self, team: Team):
        return self.get_queryset().get(pk=team.pk)

    def create(self, request, *args, **kwargs) -> Response:
        self.require_organization_action(ADMINISTER)  # 404 for outsiders, 403 below admin, before the body
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer) -> None:
        team = services.create_team(
            actor=self.request.user, organization=self.organization, **serializer.validated_data
        )
        serializer.instance = self._answer(team)

    def save_update(self, serializer) -> None:
        team = services.update_team(actor=self.request.user, team=serializer.instance, **serializer.validated_data)
        serializer.instance = self._answer(team)

    def delete_object(self, instance: Team) -> None:
        services.delete_team(actor=self.request.user, team=instance)


@extend_schema(tags=["teams"], parameters=[ORG_SLUG, TEAM_SLUG])
@extend_schema_view(
    list=extend_schema(summary="A team's members"),
    create=extend_schema(
        summary="Add a member of the organization to a team (admins)",
        request=TeamMemberAddSerializer,
        responses={201: TeamMemberSerializer},
    ),
    destroy=extend_schema(summary="Take a user out of a team (admins)", parameters=[HANDLE], responses={204: None}),
)
class TeamMemberViewSet(OrganizationScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The users in a team. The team is found through restrict(): 404 if not visible, 403 if not changeable."""

    serializer_class = TeamMemberSerializer
    lookup_field = "handle"
    lookup_url_kwarg = "handle"
    scope_for_action = ADMIN_SCOPE_FOR_WRITES
    filterset_class = TeamMemberFilterSet
    search_fields = ["handle", "name"]
    ordering_fields = ["handle", "name"]
    ordering = ["handle"]

    def get_restrict_action(self) -> str | None:
        return ACTION_FOR_VIEWSET_ACTION.get(getattr(self, "action", None) or "")

    def _teams(self, action: str):
        restricted = Team.objects.restrict(
            self.request.user, action, within_organization=bound_organization_id(self.request)
        )
        return restricted.filter(organization=self.organization)

    @property
    def team(self) -> Team:
        if not hasattr(self, "_team"):
            self._team = get_object_or_404(self._teams("view"), slug=self.kwargs["team_slug"])
        return self._team

    def _lock_team_for_change(self) -> Team:
        """Inside a transaction: the team, locked, if the caller may change it; 404 or 403 otherwise."""
        team = self.team
        locked = self._teams("change").select_for_update(of=("self",)).filter(pk=team.pk).first()
        if locked is None:
            raise exceptions.PermissionDenied(f"You may view team “{team.slug}” but not change its members.")
        return locked

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return get_user_model().objects.none()
        return services.team_members(self.team)

    def create(self, request, *args, **kwargs) -> Response:
        team = self.team  # 404 before looking at the body
        serializer = TeamMemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        handle = serializer.validated_data["handle"].strip().lower()
        with transaction.atomic():
            team = self._lock_team_for_change()
            user = get_user_model().objects.filter(handle=handle).first()
            if user is None:
                raise DjangoValidationError(
                    {"handle": [DjangoValidationError(f"There is no user “{handle}”.", code="unknown_user")]}
                )
            services.add_team_member(actor=request.user, team=team, user=user)
        return Response(TeamMemberSerializer(user).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs) -> Response:
        user = get_object_or_404(self.get_queryset(), handle=self.kwargs["handle"].lower())
        with transaction.atomic():
            team = self._lock_team_for_change()
            services.remove_team_member(actor=request.user, team=team, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- invitations ----------------------------------------------------------------------------------------------
@extend_schema(tags=["invitations"], parameters=[ORG_SLUG])
@extend_schema_view(
    list=extend_schema(summary="An organization's invitations (admins; others get 403)"),
    retrieve=extend_schema(summary="An invitation (admins)", parameters=[INVITATION_UUID]),
    create=extend_schema(
        summary="Invite an e-mail address (admins; the role at most your own)",
        description="Inviting an address that already has an open invitation refreshes that invitation: "
        "a new key and expiry, the role given now, and the e-mail is sent again.",
    ),
    destroy=extend_schema(summary="Revoke an invitation (admins)", parameters=[INVITATION_UUID], responses={204: None}),
)
class InvitationViewSet(
    OrganizationScopedMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations of an organization, by UUID. DELETE revokes (the row stays, with status ``revoked``).

    The admins' business: 404 for those who may not see the organization, 403 for its viewers and members
    (and outsiders of a public one), before anything else.
    """

    admin_only = True
    queryset = Invitation.objects.select_related("invited_by", "accepted_by")
    serializer_class = InvitationSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "uuid"
    lookup_value_regex = UUID_PATTERN
    scope_for_action = ADMIN_SCOPE_FOR_WRITES
    filterset_class = InvitationFilterSet
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at", "email"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        return super().get_queryset()

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_invitation(
            actor=self.request.user, organization=self.organization, email=data["email"], role=data["role"]
        )

    def delete_object(self, instance: Invitation) -> None:
        services.revoke_invitation(actor=self.request.user, invitation=instance)


@extend_schema(
    tags=["invitations"],
    summary="Accept an invitation",
    description="With the key from the invitation's link. You must have the invited address as a verified "
    "e-mail address of your account. Needs a session or a token of scope admin, not bound to an organization.",
    request=InvitationAcceptSerializer,
    responses={
        201: InvitationAcceptedSerializer,
        400: OpenApiResponse(description="Refused, with a code on the field"),
    },
)
class InvitationAcceptView(ServiceErrorsMixin, generics.GenericAPIView):
    """POST {key}: join the organization the invitation is for."""

    serializer_class = InvitationAcceptSerializer
    scope_for_action = {"accept": TokenScope.ADMIN}
    filter_backends: list = []
    pagination_class = None

    def get_restrict_action(self) -> str:
        return "accept"

    def post(self, request, *args, **kwargs) -> Response:
        refuse_bound_token(request, "accept invitations")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.accept_invitation(user=request.user, key=serializer.validated_data["key"])
        return Response(InvitationAcceptedSerializer(membership).data, status=status.HTTP_201_CREATED)
