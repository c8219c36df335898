"""A deployment's and a model's predict paths look them up through core's one lookup path
(``lookup.find_allowed_at_once``), still in one query when the caller may run them; a refusal keeps its answer:
404 for what the caller may not view, 403 for what they may view but not run (issue #13, item 19)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from rest_framework import exceptions

from apps.core import lookup
from apps.core.access import Visibility
from apps.inference import services
from apps.inference.api.views import DeploymentPredictView, VersionPredictView
from apps.inference.models import Deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(runnable, tmp_path, world, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    version = runnable.iris(tmp_path, visibility=Visibility.PRIVATE)
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="iris", version=version
    )


def predict_view(user, deployment) -> DeploymentPredictView:
    view = DeploymentPredictView()
    view.request = SimpleNamespace(user=user, auth=None)
    view.kwargs = {"org_slug": deployment.organization.slug, "slug": deployment.slug}
    return view


def test_a_caller_who_may_run_it_finds_it_in_one_query(world, deployment):
    view = predict_view(world.user("member"), deployment)
    with CaptureQueriesContext(connection) as queries:
        found = view.require_deployment("run", related=view.RUN_RELATED)
        assert found.pk == deployment.pk
        assert found.version.model.name == found.model.name  # the served version's model is the one already read
        assert found.organization.slug == world.org.slug
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_a_caller_who_may_run_the_model_finds_it_in_one_query(world, deployment):
    view = VersionPredictView()
    view.request = SimpleNamespace(user=world.user("member"), auth=None)
    view.kwargs = {"owner": world.org.slug, "name": deployment.model.name}
    with CaptureQueriesContext(connection) as queries:
        model = view.runnable_model()
        assert model.organization.slug == world.org.slug
    assert model.pk == deployment.model_id
    assert len(queries) == 1, [q["sql"] for q in queries]
    viewer = VersionPredictView()
    viewer.request = SimpleNamespace(user=world.user("viewer"), auth=None)
    viewer.kwargs = view.kwargs
    with pytest.raises(exceptions.PermissionDenied):
        viewer.runnable_model()


def test_core_finds_an_allowed_object_in_one_query(world, deployment):
    with CaptureQueriesContext(connection) as queries:
        found = lookup.find_allowed_at_once(
            Deployment.objects.all(), world.user("member"), "run", organization=world.org, slug="iris"
        )
    assert found.pk == deployment.pk
    assert len(queries) == 1


def test_a_viewer_who_may_not_run_it_gets_403_naming_the_action(world, deployment):
    with pytest.raises(exceptions.PermissionDenied) as refused:
        predict_view(world.user("viewer"), deployment).require_deployment("run")
    assert "run" in str(refused.value.detail)
    with pytest.raises(PermissionDenied):
        lookup.find_allowed_at_once(Deployment.objects.all(), world.user("viewer"), "run", slug="iris")


def test_an_outsider_gets_404(world, deployment):
    with pytest.raises(Http404):
        predict_view(world.user("outsider"), deployment).require_deployment("run")
    with pytest.raises(Http404):
        lookup.find_allowed_at_once(Deployment.objects.all(), world.user("outsider"), "run", slug="iris")
