"""Fetching IdP metadata from a URL goes through ``apps.core.outbound`` (issue #13 item 5): every hop of a redirect
chain is vetted and pinned, a body past the size limit is cut off while it is read (not after), and an HTTP error
is named. A real HTTP server on loopback plays the IdP's web server; the operator allow-lists 127.0.0.1 only."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from apps.organizations import sso
from apps.organizations.models import SamlSettings

pytestmark = pytest.mark.django_db


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    served: list[str] = []

    def do_GET(self):
        type(self).served.append(self.path)
        status, headers, body = self.routes.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.routes, _Handler.served = {}, []
    settings.SSO_METADATA_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server, path):
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def codes(exc: ValidationError) -> list[str]:
    return [error.code for error in exc.error_dict["idp_metadata_url"]]


def test_a_redirect_to_an_address_the_operator_did_not_allow_is_refused_at_that_hop(world, web):
    port = web.server_address[1]
    _Handler.routes["/metadata"] = (302, {"Location": f"http://127.0.0.2:{port}/inside"}, b"")

    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(
            actor=world.user("owner"), organization=world.org, idp_metadata_url=_url(web, "/metadata")
        )

    assert codes(refused.value) == ["unsafe_url"]
    assert "127.0.0.2" in str(refused.value) and "GPUX_SSO_ALLOWED_NETWORKS" in str(refused.value)
    assert _Handler.served == ["/metadata"]  # the second hop was never connected to
    assert not SamlSettings.objects.exists()


def test_a_body_past_the_limit_is_refused_as_too_large(world, web):
    _Handler.routes["/huge"] = (200, {"Content-Type": "application/xml"}, b"<x>" + b"a" * (sso.MAX_METADATA_BYTES + 10))

    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_url=_url(web, "/huge"))

    assert codes(refused.value) == ["too_large"]
    assert not SamlSettings.objects.exists()


def test_an_http_error_is_named_and_nothing_is_saved(world, web):
    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_url=_url(web, "/gone"))

    assert codes(refused.value) == ["fetch_failed"]
    assert "404" in str(refused.value)
    assert not SamlSettings.objects.exists()


def test_the_fetch_does_not_go_through_the_registries_client():
    source = Path(sso.__file__).read_text(encoding="utf-8")
    assert "apps.registries" not in source  # organizations (a foundation app) does not import a domain app
