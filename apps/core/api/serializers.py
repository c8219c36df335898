"""What the API's serializers share."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers


def absolute_url(request: Any, path: str) -> str:
    """``path`` as an absolute URL on the host the request came to; as it is without a request (a serializer used
    outside a view, in a task or a shell)."""
    return request.build_absolute_uri(path) if request is not None else path


class CachedFieldsModelSerializer(serializers.ModelSerializer):
    """DRF's ``ModelSerializer``, its fields built from the model once per class, not once per request.

    DRF builds a model serializer's fields anew for every instance: it reads the model's fields, their unique
    constraints, ``Meta.extra_kwargs`` and ``read_only_fields``, and makes each field. That was a quarter of the web
    CPU of ``GET /api/v1/user/`` (issue #15 counts it: every API route pays it once per request). What it builds
    depends on the class alone (its ``Meta`` and declared fields), so the first instance keeps the result on its
    class, and each instance gets a deep copy of it: fresh, unbound fields, as DRF's own declared fields are copied.
    A subclass that needs fields of its own per request changes ``self.fields`` (the copy) or overrides
    ``get_fields`` and calls this one."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")  # this class's own: a subclass builds its own
        if built is None:
            built = super().get_fields()
            cls._built_fields = built  # two threads building at once build the same: either is kept
        return copy.deepcopy(built)
