"""restrict() on models and versions is one SQL query, grants on the model included."""

from __future__ import annotations

import pytest

from apps.marketplace.models import Model, ModelVersion

pytestmark = pytest.mark.django_db


def test_listing_visible_models_and_versions_is_one_query_each(catalog, django_assert_num_queries):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    catalog.version(catalog.model("open", visibility="public"), "1.0")
    viewer = catalog.world.user("viewer")
    outsider = catalog.world.user("outsider")
    with django_assert_num_queries(1):
        assert len(list(Model.objects.restrict(viewer, "view"))) == 2
    with django_assert_num_queries(1):
        assert len(list(ModelVersion.objects.restrict(catalog.world.user("member"), "change"))) == 2
    public = Model.objects.get(name="open")
    with django_assert_num_queries(1):
        assert [v.model_id for v in ModelVersion.objects.restrict(outsider, "view")] == [public.pk]
