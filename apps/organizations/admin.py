"""Django admin for operators: organizations, memberships, teams and invitations.

Operators' changes here bypass the services' role rules (they are operators, not members), so every save and
delete is recorded in the organization's audit chain as an ``admin.*`` event with a diff. Invitations are
made by the services (they need a key and an e-mail), so the admin only lists and revokes them.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import GroupMapping, Invitation, Membership, Organization, Team


def _field_values(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _json_safe(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class AuditedAdmin(admin.ModelAdmin):
    """Records operators' saves and deletes in the audit chain of the object's organization."""

    audited_fields: tuple[str, ...] = ()

    def organization_of(self, obj) -> Organization | None:
        return getattr(obj, "organization", None)

    def save_model(self, request, obj, form, change) -> None:
        before = {}
        if change and obj.pk:
            before = _field_values(type(obj).objects.get(pk=obj.pk), self.audited_fields)
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            after = _field_values(obj, self.audited_fields)
            diff = {
                name: [_json_safe(before.get(name)), _json_safe(value)]
                for name, value in after.items()
                if before.get(name) != value
            }
            record_event(
                action=f"admin.{obj._meta.model_name}.{'changed' if change else 'created'}",
                organization=self.organization_of(obj),
                actor=request.user,
                target=obj,
                diff=diff,
                metadata={"via": "django-admin"},
            )

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            self._record_deletion(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset:
                self._record_deletion(request, obj)
            super().delete_queryset(request, queryset)

    def _record_deletion(self, request, obj) -> None:
        record_event(
            action=f"admin.{obj._meta.model_name}.deleted",
            organization=self.organization_of(obj),
            actor=request.user,
            target=obj,
            diff={name: [_json_safe(value), None] for name, value in _field_values(obj, self.audited_fields).items()},
            metadata={"via": "django-admin"},
        )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class TeamInline(admin.TabularInline):
    model = Team
    extra = 0
    fields = ["slug", "name", "created_at"]
    readonly_fields = ["slug", "name", "created_at"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # teams need their auth group: add them from the Team page


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = ["slug", "name", "visibility", "is_personal", "require_mfa", "member_count", "created_at"]
    list_filter = ["visibility", "is_personal", "require_mfa", "created_at"]
    search_fields = ["slug", "name", "description", "uuid"]
    readonly_fields = ["uuid", "is_personal", "personal_owner", "created_at", "updated_at"]
    fields = [
        "uuid",
        "slug",
        "name",
        "description",
        "avatar",
        "visibility",
        "require_mfa",
        "storage_quota_bytes",
        "is_personal",
        "personal_owner",
        "created_at",
        "updated_at",
    ]
    inlines = [MembershipInline, TeamInline]
    date_hierarchy = "created_at"
    audited_fields = ("slug", "name", "description", "visibility", "require_mfa", "storage_quota_bytes")

    def organization_of(self, obj) -> Organization | None:
        return obj

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))

    def save_formset(self, request, form, formset, change) -> None:
        """Memberships edited inline are audited like those edited on their own page."""
        with transaction.atomic():
            old_roles = dict(Membership.objects.filter(organization=form.instance).values_list("pk", "role"))
            super().save_formset(request, form, formset, change)
            if formset.model is not Membership:
                return
            for membership in formset.new_objects:
                self._record_membership(request, membership, "created", {"role": [None, Role(membership.role).label]})
            for membership, changed in formset.changed_objects:
                if "role" in changed:
                    old = Role(old_roles[membership.pk]).label if membership.pk in old_roles else None
                    diff = {"role": [old, Role(membership.role).label]}
                    self._record_membership(request, membership, "changed", diff)
            for membership in formset.deleted_objects:
                self._record_membership(request, membership, "deleted", {"role": [Role(membership.role).label, None]})

    def _record_membership(self, request, membership, what: str, diff: dict) -> None:
        record_event(
            action=f"admin.membership.{what}",
            organization=membership.organization,
            actor=request.user,
            target=membership,
            diff=diff,
            metadata={"via": "django-admin", "user": membership.user.handle},
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.is_personal:
            readonly.append("slug")  # a personal organization's slug follows its owner's handle
        return readonly

    def delete_model(self, request, obj) -> None:
        group_ids = list(obj.teams.values_list("group_id", flat=True))
        with transaction.atomic():
            super().delete_model(request, obj)
            Group.objects.filter(pk__in=group_ids).delete()

    def _record_deletion(self, request, obj) -> None:
        super()._record_deletion(request, obj)
        # The organization's own chain goes with it; the platform chain keeps the deletion.
        record_event(
            action="admin.organization.deleted",
            organization=None,
            actor=request.user,
            target=obj,
            diff={"slug": [obj.slug, None]},
            metadata={"via": "django-admin", "organization_id": obj.pk},
        )

    def delete_queryset(self, request, queryset) -> None:
        group_ids = list(Team.objects.filter(organization__in=queryset).values_list("group_id", flat=True))
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            Group.objects.filter(pk__in=group_ids).delete()


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ["user", "organization", "role_name", "managed_by", "created_at"]
    list_filter = ["role", "organization__is_personal", "created_at"]
    search_fields = ["user__handle", "user__email", "organization__slug", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]
    audited_fields = ("role",)

    @admin.display(description="role", ordering="role")
    def role_name(self, obj) -> str:
        return Role(obj.role).label


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["__str__", "name", "organization", "member_count", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["slug", "name", "organization__slug", "uuid"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["uuid", "group", "members", "created_at"]
    list_select_related = ["organization"]
    audited_fields = ("slug", "name", "description")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("group__user", distinct=True))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count

    @admin.display(description="members")
    def members(self, obj) -> str:
        if not obj.group_id:
            return "—"
        return ", ".join(obj.group.user_set.order_by("handle").values_list("handle", flat=True)) or "—"

    def save_model(self, request, obj, form, change) -> None:
        if not obj.group_id:
            # A new team gets its own auth group, named after its (fixed) uuid, as the services make it.
            obj.uuid = obj.uuid or uuid.uuid4()
            obj.group = Group.objects.create(name=f"team:{obj.uuid}")
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj) -> None:
        group = obj.group
        with transaction.atomic():
            super().delete_model(request, obj)
            group.delete()

    def delete_queryset(self, request, queryset) -> None:
        group_ids = list(queryset.values_list("group_id", flat=True))
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            Group.objects.filter(pk__in=group_ids).delete()


@admin.register(GroupMapping)
class GroupMappingAdmin(AuditedAdmin):
    """Identity-provider groups mapped onto organization roles and teams (docs/operator/ldap.md, "Groups and roles").

    At each sign-in through the source, the person's groups decide their role and teams in the mapped organizations
    (apps/organizations/group_sync.py). Changes here apply at the person's next sign-in.
    """

    list_display = ["group", "source", "organization", "role_name", "team", "created_at"]
    list_filter = ["source", "role", "created_at"]
    search_fields = ["group", "source", "organization__slug", "team__slug"]
    autocomplete_fields = ["organization", "team"]
    list_select_related = ["organization", "team"]
    readonly_fields = ["uuid", "created_at"]
    fields = ["uuid", "source", "group", "organization", "role", "team", "created_at"]
    audited_fields = ("source", "group", "organization", "role", "team")

    @admin.display(description="role", ordering="role")
    def role_name(self, obj) -> str:
        return Role(obj.role).label


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role_name", "status_name", "invited_by", "created_at", "expires_at"]
    list_filter = ["role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    search_fields = ["email", "organization__slug", "invited_by__handle", "uuid"]
    list_select_related = ["organization", "invited_by"]
    exclude = ["key_hash"]
    readonly_fields = [
        "uuid",
        "organization",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]
    actions = ["revoke"]

    @admin.display(description="role", ordering="role")
    def role_name(self, obj) -> str:
        return Role(obj.role).label

    @admin.display(description="status")
    def status_name(self, obj) -> str:
        return obj.status

    def has_add_permission(self, request) -> bool:
        return False  # made by the services: they need a key and send the e-mail

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row is the record of who was invited

    @admin.action(description="Revoke the selected open invitations")
    def revoke(self, request, queryset) -> None:
        revoked = 0
        with transaction.atomic():
            open_ = (
                queryset.select_related(None)
                .select_for_update()
                .filter(accepted_at__isnull=True, revoked_at__isnull=True)
            )
            for invitation in open_:
                invitation.revoked_at = timezone.now()
                invitation.save(update_fields=["revoked_at"])
                record_event(
                    action="admin.invitation.revoked",
                    organization=invitation.organization,
                    actor=request.user,
                    target=invitation,
                    diff={"status": [Invitation.Status.PENDING, Invitation.Status.REVOKED]},
                    metadata={"via": "django-admin", "email": invitation.email},
                )
                revoked += 1
        self.message_user(request, f"Revoked {revoked} invitation(s).", messages.SUCCESS)
