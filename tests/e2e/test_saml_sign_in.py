"""Signing in through an organization's SAML IdP in headless Chromium: the login page's "Sign in with your
organization's SSO", the address routed to acme's IdP (a real pysaml2 IdP behind a tiny HTTP front on loopback,
tests/peers/saml_idp.py), its sign-in form, the signed Response posted back to the portal's ACS, and the person
signed in, provisioned with the role and team their IdP group maps to. Then the admin's SSO and SCIM pages.
Screenshots go to ``test-artifacts/e2e/``.

Both the portal and the IdP are addressed as 127.0.0.1 (different ports, the same site), so the SAML session
cookie (SameSite=Lax outside production) comes back with the IdP's POST, as it does over HTTPS in production
with SameSite=None.
"""

from __future__ import annotations

import urllib.request

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client

from apps.core.access import Role
from apps.organizations import services, sso
from apps.organizations.models import Membership
from tests.peers.saml_idp import SamlIdpFront
from tests.sso_support import verify_domain

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def idp_front(tmp_path):
    front = SamlIdpFront(tmp_path / "idp")
    yield front
    front.stop()


def test_a_person_signs_in_through_the_organizations_idp_and_is_provisioned(
    live_server, page, screenshot, world, idp_front, browser
):
    base = live_server.url.replace("localhost", "127.0.0.1")
    owner = world.user("owner")
    core = services.create_team(actor=owner, organization=world.org, slug="core", name="Core")
    verify_domain(world.org, "acme.example")
    sso.update_saml_settings(
        actor=owner, organization=world.org, idp_metadata_xml=idp_front.idp.metadata(), enabled=True, default_role=None
    )
    sso.set_group_mapping(actor=owner, organization=world.org, group="ml-engineers", role="member", team=core)
    with urllib.request.urlopen(f"{base}/orgs/acme/sso/saml/metadata/") as answer:
        idp_front.sp_metadata.append(answer.read().decode())
    idp_front.add_user("ada@acme.example", name=["Ada Lovelace"], groups=["ml-engineers", "everyone"])

    page.goto(f"{base}/accounts/login/")
    screenshot(page, "login-page")
    page.click("#sso-sign-in-link")
    page.fill("input[name=email]", "ada@acme.example")
    screenshot(page, "sign-in-with-sso")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    assert page.url.startswith(f"{idp_front.base_url}/sso?SAMLRequest="), page.url
    page.fill("#password", "anything")
    screenshot(page, "idp-sign-in-form")
    with page.expect_navigation(url=f"{base}/"):
        page.click("#idp-sign-in")
    screenshot(page, "signed-in")

    ada = get_user_model().objects.get(email="ada@acme.example")
    assert ada.name == "Ada Lovelace"
    assert Membership.objects.get(organization=world.org, user=ada).role == Role.MEMBER
    assert core.group.user_set.filter(pk=ada.pk).exists()
    page.goto(f"{base}/orgs/acme/teams/core/")
    assert ada.handle in page.content()
    screenshot(page, "team-with-the-provisioned-person")

    # The admin's pages, in a browser signed in as acme's owner.
    client = Client()
    client.force_login(owner)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies["sessionid"].value, "url": base}]
    )
    admin_page = context.new_page()
    admin_page.goto(f"{base}/orgs/acme/sso/")
    assert "ml-engineers" in admin_page.content() and f"{base}/orgs/acme/sso/saml/acs/" in admin_page.content()
    screenshot(admin_page, "sso-settings")
    admin_page.goto(f"{base}/orgs/acme/scim/")
    with admin_page.expect_navigation():
        admin_page.click("#scim-token-create")
    assert admin_page.locator("#scim-secret code").inner_text().startswith("gpuxscim_")
    screenshot(admin_page, "scim-token-shown-once")
    context.close()
