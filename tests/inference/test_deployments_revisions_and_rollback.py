"""Deployments: each change a revision, rollback as a new revision, canary splits, aliases, and the history that
says which version served a request at a given time."""

from __future__ import annotations

import random

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.inference import services
from apps.inference.models import DeploymentStatus
from apps.marketplace import services as catalog
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(runnable, tmp_path):
    first = runnable.iris(tmp_path)
    second = runnable.iris(tmp_path, model=first.model, label="2.0.0")
    return first, second


def deploy(world, version, **settings):
    return services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="iris",
        version=version,
        **settings,
    )


def test_each_change_is_a_revision_with_the_whole_configuration(world, versions):
    first, second = versions
    deployment = deploy(world, first)
    services.update_deployment(deployment=deployment, actor=world.user("member"), version=second, reason="2.0 is out")
    revisions = list(deployment.revisions.order_by("number"))
    assert [r.number for r in revisions] == [1, 2]
    assert revisions[0].config["version"]["label"] == "1.0.0"
    assert revisions[1].config["version"]["label"] == "2.0.0"
    assert revisions[1].reason == "2.0 is out"
    actions = set(AuditEvent.objects.filter(organization=world.org).values_list("action", flat=True))
    assert {"deployment.created", "deployment.updated"} <= actions


def test_a_change_that_changes_nothing_writes_no_revision(world, versions):
    deployment = deploy(world, versions[0])
    services.update_deployment(deployment=deployment, actor=world.user("member"), max_delay_ms=5)
    assert deployment.revisions.count() == 1


def test_rollback_serves_the_previous_version_again_as_a_new_revision(world, versions):
    first, second = versions
    deployment = deploy(world, first)
    services.update_deployment(deployment=deployment, actor=world.user("member"), version=second)
    rolled = services.rollback_deployment(deployment=deployment, actor=world.user("member"))
    assert rolled.version == first
    assert rolled.revision == 3
    assert rolled.revisions.get(number=3).reason == "rollback to revision 1"
    assert AuditEvent.objects.filter(action="deployment.rolled_back").count() == 1


def test_rollback_through_the_api_to_a_named_revision(world, versions):
    first, second = versions
    deployment = deploy(world, first)
    services.update_deployment(deployment=deployment, actor=world.user("member"), version=second)
    client = api_client_for(world.user("member"))
    response = client.post("/api/v1/orgs/acme/deployments/iris/rollback/", {"revision": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == "1.0.0"
    assert response.json()["revision"] == 3


def test_rollback_to_a_revision_that_does_not_exist_names_the_field(world, versions):
    deployment = deploy(world, versions[0])
    with pytest.raises(ValidationError) as refused:
        services.rollback_deployment(deployment=deployment, actor=world.user("member"))
    assert "revision" in refused.value.message_dict
    response = api_client_for(world.user("member")).post(
        "/api/v1/orgs/acme/deployments/iris/rollback/", {"revision": 7}, format="json"
    )
    assert response.status_code == 400
    assert "revision" in response.json()


def test_the_canary_takes_its_share_of_requests(world, versions):
    first, second = versions
    deployment = deploy(world, first, canary_version=second, canary_percent=20)
    rng = random.Random(7)
    served = [services.serving_choice(deployment, rng=rng).label for _ in range(2000)]
    share = served.count("2.0.0") / len(served)
    assert 0.17 < share < 0.23


def test_an_alias_deployment_follows_the_alias(world, versions):
    first, second = versions
    member = world.user("member")
    catalog.set_alias(model=first.model, actor=member, name="production", version=first)
    deployment = services.create_deployment(
        organization=world.org, model=first.model, actor=member, slug="prod", alias="production"
    )
    assert services.serving_choice(deployment) == first
    catalog.set_alias(model=first.model, actor=member, name="production", version=second)
    assert services.serving_choice(deployment) == second


def test_the_revision_current_at_a_time_is_found(world, versions):
    first, second = versions
    deployment = deploy(world, first)
    between = timezone.now()
    services.update_deployment(deployment=deployment, actor=world.user("member"), version=second)
    assert services.revision_at(deployment, between).number == 1
    assert services.revision_at(deployment, timezone.now()).number == 2
    response = api_client_for(world.user("viewer")).get(
        "/api/v1/orgs/acme/deployments/iris/revisions/", {"at": between.isoformat()}
    )
    assert response.status_code == 200
    assert [item["number"] for item in response.json()] == [1]


def test_a_bad_revision_time_names_the_field(world, versions):
    deploy(world, versions[0])
    response = api_client_for(world.user("viewer")).get("/api/v1/orgs/acme/deployments/iris/revisions/", {"at": "soon"})
    assert response.status_code == 400
    assert "at" in response.json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"canary_percent": 10}, "canary_percent"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"device": "tpu"}, "device"),
        ({"provider": "quantum"}, "provider"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_settings_answer_400_naming_the_field_and_write_nothing(world, versions, changes, field):
    body = {"slug": "bad", "model": versions[0].model.name, "version": "1.0.0", **changes}
    response = api_client_for(world.user("member")).post("/api/v1/orgs/acme/deployments/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not world.org.deployments.exists()


def test_a_draft_or_a_version_of_another_model_cannot_be_served(world, versions, runnable, tmp_path):
    other = runnable.iris(tmp_path, name="other-iris")
    body = {"slug": "x", "model": versions[0].model.name, "version": "1.0.0", "canary_version": "9.9.9"}
    client = api_client_for(world.user("member"))
    response = client.post("/api/v1/orgs/acme/deployments/", body, format="json")
    assert response.status_code == 400
    assert "canary_version" in response.json()
    with pytest.raises(ValidationError) as refused:
        deploy(world, versions[0], canary_version=other, canary_percent=5)
    assert "canary_version" in refused.value.message_dict


def test_a_paused_deployment_answers_409(world, versions):
    deployment = deploy(world, versions[0])
    services.update_deployment(deployment=deployment, actor=world.user("member"), status=DeploymentStatus.PAUSED)
    response = api_client_for(world.user("member")).post(
        "/api/v1/orgs/acme/deployments/iris/predict?async=1",
        {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}},
        format="json",
    )
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]


def test_a_model_without_a_batch_dimension_cannot_batch(world, runnable, tmp_path):
    from tests.inference.onnx_models import IMAGE_MANIFEST, image_model_path

    version = runnable.version("colour", {"model.onnx": image_model_path(tmp_path)}, IMAGE_MANIFEST)
    with pytest.raises(ValidationError) as refused:
        deploy(world, version, max_batch_size=8)
    assert "max_batch_size" in refused.value.message_dict
