"""Routes of the organizations API (names in the ``api`` namespace, e.g. ``api:org-team-detail``).

/orgs/                                         org-list             GET, POST
/orgs/{org_slug}/                              org-detail           GET, PATCH, DELETE
/orgs/{org_slug}/leave/                        org-leave            POST
/orgs/{org_slug}/members/                      org-member-list      GET
/orgs/{org_slug}/members/{handle}/             org-member-detail    GET, PATCH, DELETE
/orgs/{org_slug}/teams/                        org-team-list        GET, POST
/orgs/{org_slug}/teams/{team_slug}/            org-team-detail      GET, PATCH, DELETE
/orgs/{org_slug}/teams/{team_slug}/members/    org-team-member-list     GET, POST
/orgs/{org_slug}/teams/{team_slug}/members/{handle}/  org-team-member-detail  DELETE
/orgs/{org_slug}/invitations/                  org-invitation-list  GET, POST
/orgs/{org_slug}/invitations/{uuid}/           org-invitation-detail GET, DELETE (revoke)
/invitations/accept/                           invitation-accept    POST
"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.organizations.api import views

ORG = r"orgs/(?P<org_slug>[^/.]+)"

router = SimpleRouter()
router.register(r"orgs", views.OrganizationViewSet, basename="org")
router.register(rf"{ORG}/members", views.MembershipViewSet, basename="org-member")
router.register(rf"{ORG}/teams", views.TeamViewSet, basename="org-team")
router.register(rf"{ORG}/teams/(?P<team_slug>[^/.]+)/members", views.TeamMemberViewSet, basename="org-team-member")
router.register(rf"{ORG}/invitations", views.InvitationViewSet, basename="org-invitation")

urlpatterns = [
    path("orgs/<str:org_slug>/leave/", views.OrganizationLeaveView.as_view(), name="org-leave"),
    path("invitations/accept/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    *router.urls,
]
