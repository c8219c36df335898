"""What the API's serializers share."""

from __future__ import annotations

import copy
from types import FunctionType
from typing import Any

from django.utils.functional import Promise
from rest_framework import serializers
from rest_framework.fields import empty


def absolute_url(request: Any, path: str) -> str:
    """``path`` as an absolute URL on the host the request came to; as it is without a request (a serializer used
    outside a view, in a task or a shell)."""
    return request.build_absolute_uri(path) if request is not None else path


# What a field may hold for ``fresh_field`` to copy it by its attributes: values nothing changes in place (or
# containers of them, each copied), functions and validators, which DRF itself shares between copies of a field.
_PLAIN = (type(None), bool, int, float, str, bytes, Promise, type, FunctionType)
_CONTAINERS = (dict, list, set)
_VALIDATOR_MODULES = ("django.core.validators", "rest_framework.validators")


def _plain(value: Any, depth: int = 1) -> bool:
    """A value nothing changes in place, or a container of at most ``depth`` levels of them."""
    if value is empty or isinstance(value, _PLAIN):
        return True
    if type(value) in _CONTAINERS or type(value) is tuple:
        items = value.items() if isinstance(value, dict) else ((item, None) for item in value)
        return depth > 0 and all(_plain(key, depth - 1) and _plain(item, depth - 1) for key, item in items)
    return type(value).__module__ in _VALIDATOR_MODULES


def copies_by_attributes(field: serializers.Field) -> bool:
    """Whether ``fresh_field`` may copy ``field`` by its attributes rather than deep-copy it: a leaf field (no
    serializer, no child field, no queryset, no default object of its own) whose class copies itself as DRF's
    ``Field`` does."""
    return (
        not isinstance(field, serializers.BaseSerializer)
        and type(field).__deepcopy__ is serializers.Field.__deepcopy__
        # ``_kwargs``, the arguments the field was made with, is only read (by ``repr`` and a deep copy); any other
        # container is copied one level deep, so it may hold only plain values
        and all(_plain(value, 3 if name == "_kwargs" else 1) for name, value in vars(field).items())
    )


def fresh_field(field: serializers.Field) -> serializers.Field:
    """A copy of an unbound leaf field (``copies_by_attributes``) as ``copy.deepcopy`` makes it, a fifth of the cost.

    DRF's deep copy calls the field's ``__init__`` again with its first arguments (a ``CharField`` makes its
    validators and error messages again); this one takes the attributes that ``__init__`` left, giving the copy its
    own dicts, lists and sets, so that changing one copy (its ``validators``, ``error_messages``, ``style``) never
    reaches another."""
    copied = object.__new__(type(field))
    attributes = dict(field.__dict__)
    for name, value in attributes.items():
        if type(value) in _CONTAINERS:
            attributes[name] = value.copy()
    copied.__dict__ = attributes
    return copied


class CachedFieldsModelSerializer(serializers.ModelSerializer):
    """DRF's ``ModelSerializer``, its fields built from the model once per class, not once per request.

    DRF builds a model serializer's fields anew for every instance: it reads the model's fields, their unique
    constraints, ``Meta.extra_kwargs`` and ``read_only_fields``, and makes each field. That was a quarter of the web
    CPU of ``GET /api/v1/user/`` (issue #15 counts it: every API route pays it once per request). What it builds
    depends on the class alone (its ``Meta`` and declared fields), so the first instance keeps the result on its
    class, and each instance gets a copy of it: fresh, unbound fields, as DRF's own declared fields are copied. A
    leaf field of plain values is copied by its attributes (``fresh_field``); any other (a nested serializer, a
    related or list field, a field with a default object) is deep-copied as DRF does. A subclass that needs fields
    of its own per request changes ``self.fields`` (the copy) or overrides ``get_fields`` and calls this one."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        kept = cls.__dict__.get("_kept_fields")  # this class's own: a subclass builds its own
        if kept is None:
            built = super().get_fields()
            # two threads building at once build the same: either is kept
            kept = cls._kept_fields = [(name, field, copies_by_attributes(field)) for name, field in built.items()]
        return {name: fresh_field(field) if plain else copy.deepcopy(field) for name, field, plain in kept}
