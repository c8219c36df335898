"""An organization's SAML settings: the IdP metadata is checked when it is pasted or fetched (through the SSRF
guard), bad metadata is refused naming the field, the roles that may change it are the role table's, and every
change is audited. A test sign-in shows what the IdP sent and changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from apps.audit.models import AuditEvent
from apps.organizations import sso
from apps.organizations.models import Membership, SamlSettings
from tests.peers.saml_idp import SamlIdpFront
from tests.sso_support import answer, post_to_acs, start_sign_in

pytestmark = pytest.mark.django_db


def codes(exc: ValidationError, field: str) -> list[str]:
    return [error.code for error in exc.error_dict[field]]


def test_admins_paste_metadata_and_the_idp_entity_id_and_certificate_are_read(world, idp):
    saml = sso.update_saml_settings(
        actor=world.user("admin"), organization=world.org, idp_metadata_xml=idp.metadata_xml(), enabled=True
    )

    assert saml.idp_entity_id == idp.entity_id and saml.idp_sso_url == idp.sso_url
    assert len(saml.idp_certificate_fingerprints) == 1 and saml.idp_certificate_fingerprints[0].count(":") == 31
    event = AuditEvent.objects.filter(organization=world.org, action="sso.saml_updated").get()
    assert event.diff["enabled"] == [False, True] and event.diff["idp_entity_id"] == ["", idp.entity_id]


@pytest.mark.parametrize("persona", ["member", "viewer", "outsider"])
def test_members_viewers_and_outsiders_may_not_change_saml(world, idp, persona):
    with pytest.raises(PermissionDenied):
        sso.update_saml_settings(actor=world.user(persona), organization=world.org, idp_metadata_xml=idp.metadata_xml())
    assert not SamlSettings.objects.exists()


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<md:EntityDescriptor", "invalid_xml"),
        ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "unsafe_xml"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>', "unsafe_xml"),
        ("<x>not metadata</x>", "no_idp"),
    ],
)
def test_bad_metadata_is_refused_naming_the_field_and_nothing_is_saved(world, xml, code):
    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_xml=xml)

    assert codes(refused.value, "idp_metadata_xml") == [code]
    assert not SamlSettings.objects.exists()


def test_metadata_without_a_signing_certificate_is_refused(world, idp):
    xml = idp.metadata_xml()
    import re

    stripped = re.sub(r"<(\w+:)?KeyDescriptor[ >].*?</\1KeyDescriptor>", "", xml, flags=re.S)
    assert stripped != xml

    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_xml=stripped)

    assert codes(refused.value, "idp_metadata_xml") == ["no_certificate"]


def test_enabling_without_metadata_is_refused(world):
    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, enabled=True)
    assert codes(refused.value, "enabled") == ["no_metadata"]


def test_metadata_url_on_loopback_is_refused_unless_the_operator_allows_it(world, tmp_path, settings):
    front = SamlIdpFront(tmp_path / "front")  # a real IdP's HTTP front on 127.0.0.1
    url = f"{front.base_url}/metadata"
    try:
        with pytest.raises(ValidationError) as refused:
            sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_url=url)
        assert codes(refused.value, "idp_metadata_url") == ["unsafe_url"]
        assert "GPUX_SSO_ALLOWED_NETWORKS" in str(refused.value)
        assert not SamlSettings.objects.exists()

        settings.SSO_METADATA_ALLOWED_NETWORKS = ["127.0.0.1/32"]
        saml = sso.update_saml_settings(actor=world.user("owner"), organization=world.org, idp_metadata_url=url)
    finally:
        front.stop()

    assert saml.idp_entity_id == front.idp.entity_id and saml.metadata_fetched_at is not None


def test_the_default_role_may_not_be_owner(world):
    with pytest.raises(ValidationError) as refused:
        sso.update_saml_settings(actor=world.user("owner"), organization=world.org, default_role="owner")
    assert codes(refused.value, "default_role") == ["invalid_role"]


def test_a_test_sign_in_shows_the_attributes_and_changes_nothing(saml_acme, world):
    client = Client()
    client.force_login(world.user("admin"))
    before = AuditEvent.objects.filter(organization=saml_acme.org).exclude(action="sso.saml_refused").count()
    started = start_sign_in(client, test="1")

    response = post_to_acs(
        client, answer(saml_acme.idp, started, email="erin@acme.example", groups=["eng", "ops"]), started["relay"]
    )

    body = response.content.decode()
    assert response.status_code == 200, body[:500]
    assert "erin@acme.example" in body and "eng" in body and "verified domain" in body
    assert not get_user_model().objects.filter(email="erin@acme.example").exists()
    assert client.session["_auth_user_id"] == str(world.user("admin").pk)  # still the admin, nobody new signed in
    assert AuditEvent.objects.filter(organization=saml_acme.org).count() == before


def test_only_admins_may_start_a_test_sign_in(saml_acme, world):
    client = Client()
    client.force_login(world.user("member"))
    response = client.get("/orgs/acme/sso/saml/login/", {"test": "1"})
    assert response.status_code == 403
    assert Membership.objects.filter(organization=saml_acme.org).count() == 4
