"""A write re-checks the caller's right inside its transaction, with the row locked (DESIGN.md: "Writes are
re-checked inside the transaction; a failed re-check rolls back"), on every route that changes or deletes a
deployment, a pipeline or a registry (issue #13, item 2).

The race is made deterministic: the caller's role is lowered, as an admin doing so at that moment would, after the
route has found the object and checked the caller's right, and before it writes: when it first reads the request's
body (a change) or right after it found the object (a delete). The route must answer 403 and write nothing.
"""

from __future__ import annotations

import pytest
from rest_framework.request import Request

from apps.core.access import Role
from apps.core.api.views import RestrictedViewSetMixin
from apps.inference import pipelines
from apps.inference import services as inference
from apps.inference.models import Deployment, Pipeline
from apps.organizations.models import Membership
from apps.registries import services as registries
from apps.registries.models import Registry
from tests.conftest import api_client_for
from tests.inference.pipeline_models import iris_bytes, make_version, ref

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(world):
    return make_version(world, "iris", iris_bytes())


def make_deployment(world, iris):
    return inference.create_deployment(
        organization=world.org, model=iris.model, actor=world.user("member"), slug="iris", version=iris
    )


def make_pipeline(world, iris):
    steps = [{"name": "iris", "version": ref(iris), "inputs": {"float_input": "input.features"}}]
    return pipelines.save_pipeline(organization=world.org, slug="species", steps=steps, actor=world.user("member"))


def make_registry(world, iris):
    return registries.create_registry(
        organization=world.org,
        actor=world.user("admin"),
        backend="example-catalog",
        config={"page_size": 2},
        slug="examples",
        name="Examples",
    )


# What is written: how it is made, its API URL, its model.
OBJECTS = {
    "deployment": (make_deployment, "/api/v1/orgs/acme/deployments/iris/", Deployment),
    "pipeline": (make_pipeline, "/api/v1/orgs/acme/pipelines/species/", Pipeline),
    "registry": (make_registry, "/api/v1/orgs/acme/registries/examples/", Registry),
}
# Who writes, per (object, method): the least role that may, lowered to viewer during the request.
WRITER = {
    ("deployment", "patch"): "member",
    ("deployment", "delete"): "admin",
    ("pipeline", "patch"): "member",
    ("pipeline", "delete"): "admin",
    ("registry", "patch"): "admin",
    ("registry", "delete"): "admin",
}


def lower_to_viewer_during_the_request(monkeypatch, user, world, method: str) -> list[bool]:
    """Lower ``user``'s role once the route has found and checked the object (see the module); returns a list that
    holds True once it happened."""
    done: list[bool] = []

    def lower() -> None:
        if not done:
            Membership.objects.filter(organization=world.org, user=user).update(role=Role.VIEWER)
            done.append(True)

    if method == "patch":
        original_parse = Request._parse

        def parse_then_lower(self):
            parsed = original_parse(self)
            lower()
            return parsed

        monkeypatch.setattr(Request, "_parse", parse_then_lower)
    else:
        original_get_object = RestrictedViewSetMixin.get_object

        def get_object_then_lower(self):
            found = original_get_object(self)
            lower()
            return found

        monkeypatch.setattr(RestrictedViewSetMixin, "get_object", get_object_then_lower)
    return done


@pytest.mark.parametrize(("what", "method"), sorted(WRITER))
def test_a_write_racing_the_removal_of_the_writers_right_is_refused(world, iris, monkeypatch, what, method):
    make, url, model = OBJECTS[what]
    obj = make(world, iris)
    before = model.objects.filter(pk=obj.pk).values().first()
    writer = world.user(WRITER[(what, method)])
    client = api_client_for(writer)
    lowered = lower_to_viewer_during_the_request(monkeypatch, writer, world, method)

    if method == "patch":
        response = client.patch(url, {"description": "changed while the right was removed"}, format="json")
    else:
        response = client.delete(url)

    assert lowered, "the race was not staged: the route did not get that far"
    assert response.status_code == 403, response.content
    assert model.objects.filter(pk=obj.pk).values().first() == before


@pytest.mark.parametrize(("what", "method"), sorted(WRITER))
def test_the_same_write_without_the_race_goes_through(world, iris, what, method):
    make, url, model = OBJECTS[what]
    obj = make(world, iris)
    client = api_client_for(world.user(WRITER[(what, method)]))

    if method == "patch":
        response = client.patch(url, {"description": "changed"}, format="json")
        assert response.status_code == 200, response.content
        assert model.objects.get(pk=obj.pk).description == "changed"
    else:
        response = client.delete(url)
        assert response.status_code == 204, response.content
        assert not model.objects.filter(pk=obj.pk).exists()
