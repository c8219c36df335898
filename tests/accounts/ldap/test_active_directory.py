"""An Active Directory-style directory (the active-directory preset): user principal names, objectGUID, nested
groups through ``member``, and accounts disabled by ``userAccountControl``."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import ApiToken, ExternalIdentity, User
from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations.models import GroupMapping, Membership
from tests.accounts.ldap.conftest import sign_in, signed_in_user_id
from tests.factories import OrganizationFactory, make_token
from tests.peers.ldap import BUREAU_ADMINS, DANA, FOX, WALTER, X_FILES, object_guid

pytestmark = pytest.mark.django_db


# Not tested here: signing in by userPrincipalName. The preset's filter also matches it (real AD gives the attribute
# an equality rule), but Debian's msuser.schema declares userPrincipalName without one, so slapd never matches it.


def test_an_ad_person_signs_in_with_their_mail_address(ad_directory):
    client, response = sign_in(DANA)
    assert response.status_code == 302
    dana = User.objects.get(email=DANA.email)
    assert signed_in_user_id(client) == str(dana.pk)
    assert dana.handle == "dscully"  # sAMAccountName
    assert dana.name == "Dana Scully"  # displayName


def test_the_identity_is_the_object_guid(ad_directory):
    sign_in(DANA)
    assert ExternalIdentity.objects.get(user__email=DANA.email).subject == str(object_guid(DANA))


def test_nested_ad_groups_map_onto_roles(ad_directory):
    org = OrganizationFactory(slug="fbi")
    GroupMapping.objects.create(source="ldap", group=X_FILES, organization=org, role=Role.MEMBER)
    GroupMapping.objects.create(source="ldap", group=BUREAU_ADMINS, organization=org, role=Role.ADMIN)
    sign_in(DANA)
    sign_in(WALTER)  # in XF Leads, which is in Bureau Admins
    roles = dict(Membership.objects.filter(organization=org).values_list("user__email", "role"))
    assert roles == {DANA.email: Role.MEMBER, WALTER.email: Role.ADMIN}


def test_an_account_disabled_in_ad_is_refused_even_with_its_right_password(ad_directory):
    # slapd would accept Fox's password (it does not act on userAccountControl): the portal refuses him.
    client, response = sign_in(FOX)
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    assert not User.objects.filter(email=FOX.email).exists()


def test_disabling_an_ad_account_deactivates_its_portal_user_their_session_and_their_tokens(use_directory, slapd):
    # Fox signed in while his account was enabled (the directory without the disabled filter, for this step).
    use_directory(slapd.ad_environment(LDAP_DISABLED_FILTER="none"))
    client, _ = sign_in(FOX)
    fox = User.objects.get(email=FOX.email)
    token = make_token(fox)
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/user/").status_code == 200

    use_directory(slapd.ad_environment())  # now the portal sees userAccountControl's ACCOUNTDISABLE bit
    sign_in(FOX)

    fox.refresh_from_db()
    assert not fox.is_active
    assert AuditEvent.objects.filter(action="user.deactivated", target_id=str(fox.uuid)).exists()
    assert client.get("/settings/profile/").status_code == 302  # the old session no longer counts
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/user/").status_code == 401
    assert ApiToken.objects.get(user=fox).revoked_at is None  # kept: it works again if he is re-enabled


def test_a_re_enabled_account_is_reactivated_at_its_next_sign_in(use_directory, slapd):
    use_directory(slapd.ad_environment(LDAP_DISABLED_FILTER="none"))
    sign_in(FOX)
    use_directory(slapd.ad_environment())
    sign_in(FOX)
    assert not User.objects.get(email=FOX.email).is_active

    use_directory(slapd.ad_environment(LDAP_DISABLED_FILTER="none"))  # as if re-enabled in AD
    client, _ = sign_in(FOX)
    fox = User.objects.get(email=FOX.email)
    assert fox.is_active
    assert signed_in_user_id(client) == str(fox.pk)
    assert AuditEvent.objects.filter(action="user.reactivated", target_id=str(fox.uuid)).exists()
