"""Organization pages. URL names are stable: tests and templates use them."""

from __future__ import annotations

from django.urls import path

from apps.organizations import views

urlpatterns = [
    path("orgs/new/", views.organization_create, name="org-create"),
    path("orgs/<str:org_slug>/", views.OverviewView.as_view(), name="org-overview"),
    path("orgs/<str:org_slug>/settings/", views.SettingsView.as_view(), name="org-settings"),
    path("orgs/<str:org_slug>/delete/", views.DeleteView.as_view(), name="org-delete"),
    path("orgs/<str:org_slug>/members/", views.MembersView.as_view(), name="org-members"),
    path("orgs/<str:org_slug>/members/<str:handle>/role/", views.MemberRoleView.as_view(), name="org-member-role"),
    path(
        "orgs/<str:org_slug>/members/<str:handle>/remove/", views.MemberRemoveView.as_view(), name="org-member-remove"
    ),
    path("orgs/<str:org_slug>/leave/", views.LeaveView.as_view(), name="org-leave"),
    path("orgs/<str:org_slug>/teams/", views.TeamsView.as_view(), name="org-teams"),
    path("orgs/<str:org_slug>/teams/<str:team_slug>/", views.TeamView.as_view(), name="org-team"),
    path("orgs/<str:org_slug>/teams/<str:team_slug>/delete/", views.TeamDeleteView.as_view(), name="org-team-delete"),
    path(
        "orgs/<str:org_slug>/teams/<str:team_slug>/members/",
        views.TeamMemberAddView.as_view(),
        name="org-team-member-add",
    ),
    path(
        "orgs/<str:org_slug>/teams/<str:team_slug>/members/<str:handle>/remove/",
        views.TeamMemberRemoveView.as_view(),
        name="org-team-member-remove",
    ),
    path("orgs/<str:org_slug>/invitations/", views.InvitationsView.as_view(), name="org-invitations"),
    path(
        "orgs/<str:org_slug>/invitations/<uuid:uuid>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="org-invitation-revoke",
    ),
    path("orgs/<str:org_slug>/tokens/", views.TokensView.as_view(), name="org-tokens"),
    path("orgs/<str:org_slug>/tokens/<uuid:uuid>/revoke/", views.TokenRevokeView.as_view(), name="org-token-revoke"),
    path("orgs/<str:org_slug>/audit/", views.AuditView.as_view(), name="org-audit"),
    path("orgs/<str:org_slug>/audit/export/", views.AuditExportView.as_view(), name="org-audit-export"),
    path("invitations/<str:key>/", views.invitation_accept, name="invitation-accept"),
]
