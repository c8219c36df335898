"""Who may run a model, as behaviour: a caller who may not view the model gets 404 (nothing said about it), one
who may view it but not run it gets 403 (the org's viewer on a private model, a token without the ``run`` scope),
anonymous on a public model 401; none of them writes a job. Members, and any signed-in user on a public model,
may run it."""

from __future__ import annotations

import pytest

from apps.accounts.models import TokenScope
from apps.core.access import Visibility
from apps.core.jobs import Job
from apps.inference.models import InferenceJob
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db

BODY = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def prediction_jobs() -> int:
    return Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).count()


@pytest.fixture(autouse=True)
def no_performance_card(settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False


def test_an_outsider_gets_404_on_a_private_model_and_no_job(runnable, world):
    version = iris_version(runnable, visibility=Visibility.PRIVATE)
    response = api_client_for(world.user("outsider")).post(predict_url(version), BODY, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    assert "iris" not in response.content.decode()
    assert prediction_jobs() == 0


def test_the_orgs_viewer_gets_403_saying_they_may_not_run_it(runnable, world):
    version = iris_version(runnable, visibility=Visibility.PRIVATE)
    response = api_client_for(world.user("viewer")).post(predict_url(version), BODY, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert "run" in response.json()["detail"]
    assert prediction_jobs() == 0
    assert not InferenceJob.objects.exists()


def test_a_token_without_the_run_scope_gets_403(runnable, world):
    version = iris_version(runnable, visibility=Visibility.PRIVATE)
    client = api_client_for(world.user("member"), scope=TokenScope.WRITE)
    response = client.post(predict_url(version), BODY, format="json")
    assert response.status_code == 403, response.content
    assert "run" in response.json()["detail"]
    assert prediction_jobs() == 0


def test_anonymous_gets_401_on_a_public_model(runnable, world):
    version = iris_version(runnable, visibility=Visibility.PUBLIC)
    response = api_client_for(None).post(predict_url(version), BODY, format="json")
    assert response.status_code == 401, response.content
    assert prediction_jobs() == 0


def test_an_outsider_may_run_a_public_model_and_a_member_a_private_one(runnable, world):
    public = iris_version(runnable, visibility=Visibility.PUBLIC, name="iris-public")
    private = iris_version(runnable, visibility=Visibility.PRIVATE, name="iris-private")
    outsider = api_client_for(world.user("outsider")).post(predict_url(public) + "?async=1", BODY, format="json")
    member = api_client_for(world.user("member")).post(predict_url(private) + "?async=1", BODY, format="json")
    assert (outsider.status_code, member.status_code) == (202, 202), (outsider.content, member.content)
    assert outsider.json()["status"] == member.json()["status"] == "queued"
    assert prediction_jobs() == 2
