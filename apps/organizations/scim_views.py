"""SCIM 2.0 endpoints of an organization (``/orgs/<slug>/scim/v2/``): RFC 7644's shapes, ``application/scim+json``.

Every answer, refusals included, is SCIM JSON; errors carry ``schemas: [..:Error]``, ``status``, ``scimType`` and
``detail``. The organization's SCIM token authenticates (apps/organizations/scim.py); no session, no CSRF.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.audit.context import context_from_request, current_request
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.organizations import scim

CONTENT_TYPE = "application/scim+json"
MAX_BODY_BYTES = 1024 * 1024


def scim_response(body: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    """Authenticates the organization's token and turns ``ScimError`` into RFC 7644 errors."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = current_request.set(context_from_request(request))
        try:
            auth = scim.authenticate(request.headers.get("Authorization", ""), kwargs.pop("org_slug"))
            base_url = request.build_absolute_uri(f"/orgs/{auth.organization.slug}/scim/v2").rstrip("/")
            self.ctx = scim.Context(organization=auth.organization, token=auth, base_url=base_url)
            return super().dispatch(request, *args, **kwargs)
        except scim.ScimError as error:
            headers = {"WWW_Authenticate": 'Bearer realm="scim"'} if error.status == 401 else {}
            return scim_response(error.body(), error.status, **headers)
        finally:
            current_request.reset(token)

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        error = scim.ScimError(405, f"{request.method} is not supported here.")
        return scim_response(error.body(), 405, Allow=", ".join(m.upper() for m in self._allowed_methods()))

    def payload(self) -> Any:
        if len(self.request.body) > MAX_BODY_BYTES:
            raise scim.ScimError(413, "The request body is larger than 1 MiB.", "tooMany")
        try:
            return loads_json(self.request.body or b"null")
        except (NestingTooDeep, InvalidText) as exc:
            raise scim.ScimError(400, f"The request body is not usable: {exc}.", "invalidSyntax") from None
        except (ValueError, UnicodeDecodeError):
            raise scim.ScimError(400, "The request body is not valid JSON.", "invalidSyntax") from None

    def paged(self, queryset, render) -> HttpResponse:
        try:
            start = max(1, int(self.request.GET.get("startIndex", 1)))
            count = min(scim.MAX_COUNT, max(0, int(self.request.GET.get("count", 100))))
        except ValueError:
            raise scim.ScimError(400, "startIndex and count are integers.", "invalidValue") from None
        total = queryset.count()
        page = list(queryset[start - 1 : start - 1 + count])
        return scim_response(
            {
                "schemas": [scim.LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(page),
                "Resources": [render(item) for item in page],
            }
        )


class UsersView(ScimView):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        users = scim.filtered(scim.users(self.ctx), request.GET.get("filter"), scim.USER_FILTERS)
        return self.paged(users, lambda identity: scim.user_resource(self.ctx, identity))

    def post(self, request: HttpRequest) -> HttpResponse:
        identity = scim.create_user(self.ctx, self.payload())
        resource = scim.user_resource(self.ctx, identity)
        return scim_response(resource, 201, Location=resource["meta"]["location"])


class UserView(ScimView):
    http_method_names = ["get", "put", "patch", "delete"]

    def get(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        return scim_response(scim.user_resource(self.ctx, scim.user_or_404(self.ctx, scim_id)))

    def put(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        identity = scim.replace_user(self.ctx, scim.user_or_404(self.ctx, scim_id), self.payload())
        return scim_response(scim.user_resource(self.ctx, identity))

    def patch(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        identity = scim.patch_user(self.ctx, scim.user_or_404(self.ctx, scim_id), self.payload())
        return scim_response(scim.user_resource(self.ctx, identity))

    def delete(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        scim.delete_user(self.ctx, scim.user_or_404(self.ctx, scim_id))
        return HttpResponse(status=204)


def _with_members(request: HttpRequest) -> bool:
    excluded = {a.strip().lower() for a in request.GET.get("excludedAttributes", "").split(",")}
    return "members" not in excluded


class GroupsView(ScimView):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        groups = scim.filtered(scim.groups(self.ctx), request.GET.get("filter"), scim.GROUP_FILTERS)
        members = _with_members(request)
        return self.paged(groups, lambda group: scim.group_resource(self.ctx, group, members=members))

    def post(self, request: HttpRequest) -> HttpResponse:
        group = scim.create_group(self.ctx, self.payload())
        resource = scim.group_resource(self.ctx, group)
        return scim_response(resource, 201, Location=resource["meta"]["location"])


class GroupView(ScimView):
    http_method_names = ["get", "put", "patch", "delete"]

    def get(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        group = scim.group_or_404(self.ctx, scim_id)
        return scim_response(scim.group_resource(self.ctx, group, members=_with_members(request)))

    def put(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        group = scim.replace_group(self.ctx, scim.group_or_404(self.ctx, scim_id), self.payload())
        return scim_response(scim.group_resource(self.ctx, group))

    def patch(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        group = scim.patch_group(self.ctx, scim.group_or_404(self.ctx, scim_id), self.payload())
        return scim_response(scim.group_resource(self.ctx, group))

    def delete(self, request: HttpRequest, scim_id: str) -> HttpResponse:
        scim.delete_group(self.ctx, scim.group_or_404(self.ctx, scim_id))
        return HttpResponse(status=204)


class ServiceProviderConfigView(ScimView):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return scim_response(scim.service_provider_config(self.ctx.base_url))


class ResourceTypesView(ScimView):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        types = scim.resource_types(self.ctx.base_url)
        return scim_response(
            {
                "schemas": [scim.LIST_SCHEMA],
                "totalResults": len(types),
                "startIndex": 1,
                "itemsPerPage": len(types),
                "Resources": types,
            }
        )


class SchemasView(ScimView):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        found = scim.schemas(self.ctx.base_url)
        return scim_response(
            {
                "schemas": [scim.LIST_SCHEMA],
                "totalResults": len(found),
                "startIndex": 1,
                "itemsPerPage": len(found),
                "Resources": found,
            }
        )
