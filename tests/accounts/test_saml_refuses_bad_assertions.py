"""The ACS refuses every assertion it must not trust, each answered with a refusal page, nobody signed in, nothing
provisioned, and the refusal in the organization's audit chain. The assertions are made by a real pysaml2 IdP
(with its own key, or another IdP's) and then altered here the way an attacker would."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.audit.models import AuditEvent
from apps.organizations.models import SamlSettings
from tests.factories import OrganizationFactory
from tests.sso_support import (
    ASSERTION,
    SIGNATURE,
    SP_ENTITY_ID,
    SsoIdp,
    answer,
    decoded,
    encoded,
    post_to_acs,
    refusal_of,
    start_sign_in,
)

pytestmark = pytest.mark.django_db

EMAIL = "dave@acme.example"


def assert_refused(response, client: Client, saml, reason_part: str = "") -> None:
    assert response.status_code in (400, 403), response.content[:500]
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(email=EMAIL).exists()
    assert not get_user_model().objects.filter(email="mallory@acme.example").exists()
    event = AuditEvent.objects.filter(organization=saml.org, action="sso.saml_refused").order_by("-seq").first()
    assert event is not None, "the refusal is not in the organization's audit chain"
    if reason_part:
        assert reason_part in refusal_of(response), refusal_of(response)


def started_and_answered(saml, client: Client, **kwargs) -> tuple[dict, str]:
    started = start_sign_in(client)
    return started, answer(saml.idp, started, email=EMAIL, **kwargs)


def test_a_good_assertion_is_accepted_which_is_what_the_refusals_below_are_measured_against(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client)
    assert post_to_acs(client, response, started["relay"]).status_code == 302
    assert get_user_model().objects.filter(email=EMAIL).exists()


def test_a_tampered_assertion_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_response=False)
    tampered = decoded(response).replace(EMAIL, "mallory@acme.example")
    assert tampered != decoded(response)

    result = post_to_acs(client, encoded(tampered), started["relay"])

    assert_refused(result, client, saml_acme, "signature")


def test_an_unsigned_assertion_is_refused_even_inside_a_signed_response(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_assertion=False, sign_response=True)

    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme)


def test_a_response_with_no_signature_at_all_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_assertion=False, sign_response=False)

    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme)


def test_an_assertion_whose_signature_was_stripped_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_response=False)
    stripped = SIGNATURE.sub("", decoded(response))
    assert "Signature" not in stripped

    assert_refused(post_to_acs(client, encoded(stripped), started["relay"]), client, saml_acme)


def test_an_expired_assertion_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, lifetime_minutes=-10)

    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme, "expired")


def test_a_replayed_response_is_refused_in_the_same_session_and_in_another(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client)
    assert post_to_acs(client, response, started["relay"]).status_code == 302
    client.logout()

    assert post_to_acs(client, response, started["relay"]).status_code in (400, 403)
    other = Client()
    assert post_to_acs(other, response, started["relay"]).status_code in (400, 403)
    assert "_auth_user_id" not in client.session and "_auth_user_id" not in other.session


def test_a_replayed_idp_initiated_assertion_is_refused_by_the_assertion_id_cache(saml_acme):
    saml_acme.settings(allow_idp_initiated=True)
    response = saml_acme.idp.respond(sp_entity_id=SP_ENTITY_ID, email=EMAIL)
    first = Client()
    assert post_to_acs(first, response).status_code == 302

    again = Client()
    result = post_to_acs(again, response)

    assert result.status_code in (400, 403)
    assert "already been used" in refusal_of(result)
    assert "_auth_user_id" not in again.session


def test_an_idp_initiated_sign_in_is_refused_unless_the_organization_allows_it(saml_acme):
    response = saml_acme.idp.respond(sp_entity_id=SP_ENTITY_ID, email=EMAIL)
    client = Client()

    assert_refused(post_to_acs(client, response), client, saml_acme)


def test_an_assertion_for_another_audience_is_refused(saml_acme):
    globex = OrganizationFactory(slug="globex")
    SamlSettings.objects.create(organization=globex, idp_metadata_xml=saml_acme.org.saml.idp_metadata_xml)
    saml_acme.idp.trust_sp(Client().get("/orgs/globex/sso/saml/metadata/").content.decode())
    client = Client()
    started = start_sign_in(client)

    # Answering acme's request, at acme's ACS, but meant for globex's service provider (its audience).
    response = answer(saml_acme.idp, started, email=EMAIL, audience="http://testserver/orgs/globex/sso/saml/metadata/")

    assert "orgs/globex/sso/saml/metadata/</" in decoded(response)
    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme)


def test_an_assertion_from_another_idp_is_refused(saml_acme, tmp_path):
    stranger = SsoIdp(tmp_path / "stranger", entity_id="http://stranger.test/metadata", name="stranger.test")
    stranger.trust_sp(saml_acme.idp.sp_metadata[0])
    client = Client()
    started = start_sign_in(client)

    response = answer(stranger, started, email=EMAIL)

    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme)


def test_an_assertion_claiming_the_right_issuer_but_signed_by_another_key_is_refused(saml_acme, tmp_path):
    impostor = SsoIdp(tmp_path / "impostor", entity_id=saml_acme.idp.entity_id, name="impostor.test")
    impostor.trust_sp(saml_acme.idp.sp_metadata[0])
    client = Client()
    started = start_sign_in(client)

    response = answer(impostor, started, email=EMAIL)

    assert_refused(post_to_acs(client, response, started["relay"]), client, saml_acme)


def test_a_response_with_an_external_entity_is_refused(saml_acme, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-file-content")
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_response=False)
    xml = decoded(response)
    doctype = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    attacked = doctype + xml.replace(EMAIL, "&xxe;", 1)

    result = post_to_acs(client, encoded(attacked), started["relay"])

    assert_refused(result, client, saml_acme)
    assert b"top-secret-file-content" not in result.content


def test_signature_wrapping_with_a_forged_assertion_before_the_signed_one_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_response=False)
    xml = decoded(response)
    signed = ASSERTION.search(xml).group(0)
    forged = SIGNATURE.sub("", signed).replace(EMAIL, "mallory@acme.example")
    forged = re.sub(r'ID="[^"]+"', 'ID="id-forged"', forged, count=1)
    wrapped = xml.replace(signed, forged + signed)

    assert_refused(post_to_acs(client, encoded(wrapped), started["relay"]), client, saml_acme)


def test_signature_wrapping_with_the_signed_assertion_hidden_inside_a_forged_one_is_refused(saml_acme):
    client = Client()
    started, response = started_and_answered(saml_acme, client, sign_response=False)
    xml = decoded(response)
    signed = ASSERTION.search(xml).group(0)
    forged = SIGNATURE.sub("", signed).replace(EMAIL, "mallory@acme.example")
    forged = re.sub(r'ID="[^"]+"', 'ID="id-forged"', forged, count=1)
    # The original, signed assertion rides along inside the forged one's Advice, where a careless verifier finds a
    # valid signature while the application reads the forged assertion's subject.
    prefix = ASSERTION.search(xml).group(1) or ""
    forged = forged.replace(f"</{prefix}Assertion>", f"<{prefix}Advice>{signed}</{prefix}Advice></{prefix}Assertion>")
    wrapped = xml.replace(signed, forged)

    assert_refused(post_to_acs(client, encoded(wrapped), started["relay"]), client, saml_acme)


def test_a_response_that_is_not_xml_is_refused(saml_acme):
    client = Client()
    start_sign_in(client)

    assert_refused(post_to_acs(client, encoded("not xml at all")), client, saml_acme)


def test_a_post_without_a_saml_response_is_a_bad_request(saml_acme):
    assert Client().post("/orgs/acme/sso/saml/acs/", {}).status_code == 400
