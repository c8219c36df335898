from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.audit.api.views import OrganizationAuditEventViewSet

router = SimpleRouter()
router.register(r"orgs/(?P<org_slug>[^/.]+)/audit", OrganizationAuditEventViewSet, basename="org-audit")

urlpatterns = [*router.urls]
