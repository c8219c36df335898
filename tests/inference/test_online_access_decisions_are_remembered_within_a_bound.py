"""The predict routes remember a token's run decision for at most ``SHORT_LIVED_CACHE_SECONDS``
(apps/core/shortlived.py, apps/inference/online/access.py): a revoked token, a removed membership, a deployment made
private are refused at once when changed through the portal, and within the bound when changed behind its back (raw
SQL, another process whose invalidation was lost). Asynchronous requests are used so that no worker is needed: the
decision comes first."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.core.access import Visibility
from apps.inference import services as inference
from apps.organizations.models import Membership
from tests.factories import make_token
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db
BOUND = 0.6
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}


@pytest.fixture(autouse=True)
def short_bound(settings):
    settings.SHORT_LIVED_CACHE_SECONDS = BOUND


def client_with(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def deployment(runnable, world):
    version = iris_version(runnable)
    return inference.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="prod", version=version
    )


def predict(client: APIClient, deployment):
    return client.post(
        f"/api/v1/orgs/{deployment.organization.slug}/deployments/{deployment.slug}/predict?async=1",
        IRIS,
        format="json",
    )


def test_a_membership_removed_through_the_portal_is_refused_at_once(world, deployment):
    member = world.user("member")
    client = client_with(make_token(member))
    assert predict(client, deployment).status_code == 202
    Membership.objects.filter(user=member, organization=world.org).delete()
    assert predict(client, deployment).status_code == 404


def test_a_membership_removed_behind_the_portals_back_is_refused_within_the_bound(world, deployment):
    member = world.user("member")
    client = client_with(make_token(member))
    assert predict(client, deployment).status_code == 202
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE user_id = %s", [member.pk])
    assert predict(client, deployment).status_code == 202  # remembered, as the bound allows
    time.sleep(BOUND + 0.1)
    assert predict(client, deployment).status_code == 404


def test_a_public_deployment_made_private_is_refused_to_an_outsider_within_the_bound(world, deployment):
    from apps.inference.models import Deployment

    Deployment.objects.filter(pk=deployment.pk).update(visibility=Visibility.PUBLIC)
    client = client_with(make_token(world.user("outsider")))
    assert predict(client, deployment).status_code == 202
    Deployment.objects.filter(pk=deployment.pk).update(visibility=Visibility.PRIVATE)  # .update(): no signal
    time.sleep(BOUND + 0.1)
    assert predict(client, deployment).status_code == 404


def test_a_deployment_made_private_through_the_orm_is_refused_at_once(world, deployment):
    deployment.visibility = Visibility.PUBLIC
    deployment.save()
    client = client_with(make_token(world.user("outsider")))
    assert predict(client, deployment).status_code == 202
    deployment.visibility = Visibility.PRIVATE
    deployment.save()
    assert predict(client, deployment).status_code == 404


def test_a_revoked_token_is_refused_on_the_predict_route_within_the_bound(world, deployment):
    member = world.user("member")
    client = client_with(make_token(member))
    assert predict(client, deployment).status_code == 202
    ApiToken.objects.filter(user=member).update(revoked_at=timezone.now())
    time.sleep(BOUND + 0.1)
    assert predict(client, deployment).status_code == 401


def test_kserve_infer_decisions_follow_the_same_bound(world, runnable):
    version = iris_version(runnable, visibility=Visibility.PUBLIC)
    client = client_with(make_token(world.user("outsider")))
    url = f"/v2/models/{world.org.slug}--{version.model.name}/infer"
    body = {
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}],
        "parameters": {"timeout": 100_000},  # microseconds: no worker here, 504 after 0.1 s
    }
    first = client.post(url, body, format="json")
    assert first.status_code != 404, first.content
    from apps.marketplace.models import Model

    Model.objects.filter(pk=version.model_id).update(visibility=Visibility.PRIVATE)
    time.sleep(BOUND + 0.1)
    assert client.post(url, body, format="json").status_code == 404
