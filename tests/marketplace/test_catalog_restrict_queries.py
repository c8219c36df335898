"""restrict() on models and versions is one SQL query, grants on the model and the draft rule included."""

from __future__ import annotations

import pytest

from apps.marketplace.models import Model, ModelVersion

pytestmark = pytest.mark.django_db


def test_listing_visible_models_and_versions_is_one_query_each(catalog, django_assert_num_queries):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    public = catalog.model("open", visibility="public")
    catalog.published(public, "1.0")
    catalog.version(public, "2.0")  # a draft: not the outsider's to see
    viewer = catalog.world.user("viewer")
    outsider = catalog.world.user("outsider")
    with django_assert_num_queries(1):
        assert len(list(Model.objects.restrict(viewer, "view"))) == 2
    with django_assert_num_queries(1):
        assert len(list(ModelVersion.objects.restrict(catalog.world.user("member"), "change"))) == 3
    with django_assert_num_queries(1):
        assert [(v.model_id, v.label) for v in ModelVersion.objects.restrict(outsider, "view")] == [(public.pk, "1.0")]
    with django_assert_num_queries(1):
        assert len(list(ModelVersion.objects.restrict(catalog.world.user("member"), "view"))) == 3
