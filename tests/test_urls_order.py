"""The predict routes come first in the API's URL patterns (gpux_portal/urls.py), so that the busiest requests are
resolved without trying every other pattern. That is only safe because no other pattern matches their paths:
checked here over paths whose parts are names other routes use, so moving them first changed nothing else."""

from __future__ import annotations

import itertools

import pytest
from django.urls import URLResolver, resolve
from django.urls.exceptions import Resolver404

from apps.inference.api.urls import predict_urlpatterns
from gpux_portal import urls

PARTS = ["acme", "predict", "versions", "deployments", "files", "grants", "1.0.0", "latest", "run", "batch"]


def without_predict_routes() -> URLResolver:
    from django.urls import include, path
    from django.urls.resolvers import RegexPattern

    others = [pattern for pattern in urls.api_v1 if pattern not in predict_urlpatterns]
    return URLResolver(RegexPattern(r"^/"), [path("api/v1/", include((others, "api"), namespace="api"))])


def sample_paths():
    for owner, name in itertools.product(PARTS, repeat=2):
        yield "model-predict", f"/api/v1/models/{owner}/{name}/predict"
        yield "model-deployment", f"/api/v1/orgs/{owner}/deployments/{name}/predict"
        for label in ("1.0.0", "predict", "versions"):
            yield "model-version-predict", f"/api/v1/models/{owner}/{name}/versions/{label}/predict"


def test_the_predict_routes_are_first_in_the_api():
    assert urls.api_v1[: len(predict_urlpatterns)] == predict_urlpatterns


@pytest.mark.parametrize("kind", ["model-predict", "model-deployment", "model-version-predict"])
def test_no_other_pattern_matches_a_predict_path(kind):
    others = without_predict_routes()
    assert others.resolve("/api/v1/orgs/acme/deployments/embed/").url_name == "deployment-detail"  # it resolves
    paths = [path for each, path in sample_paths() if each == kind]
    assert paths
    for path in paths:
        assert resolve(path).url_name in {"model-predict", "model-version-predict", "deployment-predict"}, path
        with pytest.raises(Resolver404):
            found = others.resolve(path)
            pytest.fail(f"{path} also matches {found.url_name}")
