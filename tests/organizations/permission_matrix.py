"""Organization routes outside the generic matrix, each with its reason (loaded by tests/permissions/matrix.py)."""

from __future__ import annotations

_SCIM = (
    "SCIM 2.0: authenticated by the organization's SCIM token only (no session, no API token), which the matrix's "
    "personas do not hold; tests/organizations/test_scim_*.py cover every route per caller (the organization's "
    "token, another organization's, none, a persona's session and API token)"
)
EXEMPT = {
    "scim-users": _SCIM,
    "scim-user": _SCIM,
    "scim-groups": _SCIM,
    "scim-group": _SCIM,
    "scim-service-provider-config": _SCIM,
    "scim-resource-types": _SCIM,
    "scim-schemas": _SCIM,
}
