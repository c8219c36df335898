"""The SSO and SCIM pages: an admin pastes IdP metadata (bad metadata is refused naming the field), reads what to
copy to the IdP, verifies a domain by DNS TXT record (through an injected resolver: no DNS server is reachable
here) or by a link e-mailed to the domain, makes a SCIM token that is shown once; and the sign-in step that sends
an address at a verified domain to its organization's IdP."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from apps.organizations import sso
from apps.organizations.models import SamlSettings, ScimToken, VerifiedDomain
from tests import sso_support

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dns(settings):
    settings.SSO_DNS_TXT_RESOLVER = "tests.sso_support.txt_records"
    sso_support.TXT_RECORDS.clear()


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_pastes_metadata_and_reads_what_to_give_the_idp(world, idp):
    client = client_of(world.user("admin"))

    response = client.post(
        "/orgs/acme/sso/",
        {"idp_metadata_xml": idp.metadata_xml(), "email_attribute": "email", "enabled": "on", "default_role": "20"},
    )

    assert response.status_code == 302, response.content[:500]
    assert SamlSettings.objects.get(organization=world.org).idp_entity_id == idp.entity_id
    page = client.get("/orgs/acme/sso/").content.decode()
    assert (
        "http://testserver/orgs/acme/sso/saml/acs/" in page and "http://testserver/orgs/acme/sso/saml/metadata/" in page
    )
    assert idp.entity_id in page and 'id="saml-test"' in page


def test_unsafe_metadata_is_refused_on_the_page_and_nothing_is_saved(world):
    xxe = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    response = client_of(world.user("owner")).post(
        "/orgs/acme/sso/", {"idp_metadata_xml": xxe, "email_attribute": "email"}
    )

    assert response.status_code == 400
    assert "DOCTYPE" in response.content.decode()
    assert not SamlSettings.objects.exists()


def test_a_domain_is_verified_by_its_txt_record(world):
    client = client_of(world.user("admin"))
    client.post("/orgs/acme/sso/domains/", {"domain": "Acme.Example"})
    claim = VerifiedDomain.objects.get(organization=world.org)
    assert claim.domain == "acme.example" and not claim.is_verified

    missing = client.post(f"/orgs/acme/sso/domains/{claim.uuid}/verify/", follow=True)
    assert "No TXT record" in missing.content.decode()
    claim.refresh_from_db()
    assert not claim.is_verified

    sso_support.TXT_RECORDS["acme.example"] = ["v=spf1 -all", f"{sso.DNS_TXT_PREFIX}{claim.token}"]
    client.post(f"/orgs/acme/sso/domains/{claim.uuid}/verify/")
    claim.refresh_from_db()
    assert claim.is_verified and claim.method == "dns"


def test_a_domain_is_verified_by_a_link_mailed_to_an_address_there(world):
    client = client_of(world.user("admin"))
    client.post("/orgs/acme/sso/domains/", {"domain": "acme.example"})
    claim = VerifiedDomain.objects.get(organization=world.org)

    wrong = client.post(f"/orgs/acme/sso/domains/{claim.uuid}/email/", {"email": "it@elsewhere.example"}, follow=True)
    assert "Give an address at acme.example" in wrong.content.decode() and not mail.outbox
    client.post(f"/orgs/acme/sso/domains/{claim.uuid}/email/", {"email": "it@acme.example"})

    assert mail.outbox[0].to == ["it@acme.example"]
    link = re.search(r"http://\S+/sso/domains/verify/\S+/", mail.outbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    reader = Client()  # whoever reads the mailbox: no account needed
    assert reader.get(f"/{path}").status_code == 200
    claim.refresh_from_db()
    assert not claim.is_verified  # opening the link (a mail scanner) verifies nothing
    assert "is verified" in reader.post(f"/{path}").content.decode()
    claim.refresh_from_db()
    assert claim.is_verified and claim.method == "email"
    assert Client().post("/sso/domains/verify/forged/").status_code == 400


def test_a_domain_verified_by_another_organization_cannot_be_claimed(world):
    from tests.factories import OrganizationFactory

    sso_support.verify_domain(OrganizationFactory(slug="globex"), "acme.example")
    response = client_of(world.user("owner")).post("/orgs/acme/sso/domains/", {"domain": "acme.example"}, follow=True)
    assert "already verified by another organization" in response.content.decode()
    assert not VerifiedDomain.objects.filter(organization=world.org).exists()


def test_the_scim_token_is_shown_once_and_can_be_revoked(world):
    client = client_of(world.user("admin"))

    made = client.post("/orgs/acme/scim/")

    secret = re.search(r"gpuxscim_[0-9a-f]+_[\w-]+", made.content.decode()).group(0)
    assert made["Cache-Control"] == "no-store"
    page = client.get("/orgs/acme/scim/").content.decode()
    assert secret not in page and "http://testserver/orgs/acme/scim/v2" in page
    assert sso_support.ScimClient(secret).get("/Users").status_code == 200
    token = ScimToken.objects.get(organization=world.org)
    client.post(f"/orgs/acme/scim/{token.uuid}/revoke/")
    assert sso_support.ScimClient(secret).get("/Users").status_code == 401


def test_sign_in_with_sso_routes_an_address_at_a_verified_domain_to_its_idp(saml_acme):
    response = Client().post("/sso/", {"email": "Someone@ACME.example", "next": "/orgs/acme/"})

    assert response.status_code == 302
    assert response["Location"] == "/orgs/acme/sso/saml/login/?next=%2Forgs%2Facme%2F"


def test_sign_in_with_sso_does_not_route_an_unverified_or_unknown_domain(saml_acme, world):
    VerifiedDomain.objects.create(organization=world.org, domain="acme-labs.example", token="x" * 32)  # claimed only
    for email in ("someone@acme-labs.example", "someone@nowhere.example"):
        response = Client().post("/sso/", {"email": email})
        assert response.status_code == 400
        assert "sign in with your password" in response.content.decode()


def test_the_login_page_links_to_sign_in_with_sso():
    assert 'id="sso-sign-in-link"' in Client().get("/accounts/login/").content.decode()


def test_the_owner_requires_sso_on_the_page_once_they_have_two_factor(saml_acme, world):
    from tests.pages.mfa import enrol_totp

    owner = world.user("owner")
    client = client_of(owner)
    refused = client.post("/orgs/acme/sso/require/", {"require_sso": "on"}, follow=True)
    assert "Set up two-factor authentication first" in refused.content.decode()
    world.org.refresh_from_db()
    assert not world.org.require_sso

    enrol_totp(Client(), owner.email)
    client.post("/orgs/acme/sso/require/", {"require_sso": "on"})

    world.org.refresh_from_db()
    assert world.org.require_sso
    # This session signed in without a second factor: it is now sent to the IdP like a member's.
    assert client.get("/orgs/acme/sso/").status_code == 302


def test_metadata_from_a_url_is_fetched_again_when_asked_a_rotated_certificate_for_example(world, tmp_path, settings):
    from tests.peers.saml_idp import SamlIdpFront, make_key_pair

    settings.SSO_METADATA_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    front = SamlIdpFront(tmp_path / "front")
    url = f"{front.base_url}/metadata"
    form = {"idp_metadata_url": url, "email_attribute": "email"}
    client = client_of(world.user("admin"))
    try:
        assert client.post("/orgs/acme/sso/", form).status_code == 302
        before = SamlSettings.objects.get(organization=world.org).idp_certificate_fingerprints
        (tmp_path / "rotated").mkdir()
        front.idp.keys = make_key_pair(tmp_path / "rotated", "idp-rotated")  # the IdP rotates its key

        client.post("/orgs/acme/sso/", form)
        assert SamlSettings.objects.get(organization=world.org).idp_certificate_fingerprints == before
        client.post("/orgs/acme/sso/", {**form, "refetch": "1"})
    finally:
        front.stop()

    after = SamlSettings.objects.get(organization=world.org).idp_certificate_fingerprints
    assert after != before and len(after) == 1
