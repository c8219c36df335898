"""The API's model serializers build their fields from the model once per class (``CachedFieldsModelSerializer``):
each instance still gets fields of its own, equal to what DRF builds, and one request's changes never reach the
next."""

from __future__ import annotations

import copy

import django.apps
import pytest
from rest_framework import serializers

from apps.accounts.api.serializers import UserSerializer
from apps.core.api.serializers import CachedFieldsModelSerializer, copies_by_attributes, fresh_field


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def _project_serializers() -> list[type]:
    django.apps.apps.get_app_configs()  # the API modules are imported with the URLconf
    import gpux_portal.urls  # noqa: F401

    return sorted(_all_subclasses(CachedFieldsModelSerializer), key=lambda cls: f"{cls.__module__}.{cls.__name__}")


def test_every_model_serializer_of_the_api_builds_its_fields_once_per_class():
    """No API module declares a model serializer that builds its fields on every request."""
    import gpux_portal.urls  # noqa: F401

    plain = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in _all_subclasses(serializers.ModelSerializer)
        if cls.__module__.startswith("apps.") and not issubclass(cls, CachedFieldsModelSerializer)
    ]
    assert plain == []
    assert len(_project_serializers()) >= 20


@pytest.mark.parametrize("serializer_class", _project_serializers(), ids=lambda cls: cls.__name__)
def test_the_kept_fields_are_the_ones_drf_builds(serializer_class):
    kept = serializer_class().get_fields()
    built = serializers.ModelSerializer.get_fields(serializer_class())  # DRF's own, from the model again
    assert list(kept) == list(built)
    assert {name: repr(field) for name, field in kept.items()} == {name: repr(field) for name, field in built.items()}


def _checks(validator) -> tuple:
    """What a validator checks and says (DRF's lazy messages compare by their text)."""
    return (
        type(validator),
        {name: str(value) if name == "message" else value for name, value in vars(validator).items()
         if name != "_constructor_args"},
    )  # fmt: skip


@pytest.mark.parametrize("serializer_class", _project_serializers(), ids=lambda cls: cls.__name__)
def test_a_field_copied_by_its_attributes_equals_drfs_deep_copy(serializer_class):
    """``fresh_field`` (a leaf field of plain values) makes what ``copy.deepcopy`` makes: the same attributes, equal
    values, and containers of its own."""
    serializer_class().get_fields()
    for name, field, plain in serializer_class.__dict__["_kept_fields"]:
        assert plain == copies_by_attributes(field), name
        if not plain:
            continue
        fast, deep = fresh_field(field), copy.deepcopy(field)
        assert type(fast) is type(deep), name
        fast_state = {key: value for key, value in vars(fast).items() if key != "_creation_counter"}
        deep_state = {key: value for key, value in vars(deep).items() if key != "_creation_counter"}
        assert fast_state.keys() == deep_state.keys(), name
        for key, value in fast_state.items():
            if key == "_validators":  # DRF makes new validator objects (CharField's): the same checks, shared here
                assert [_checks(v) for v in value] == [_checks(v) for v in deep_state[key]], name
                assert value is not field._validators
                continue
            assert value == deep_state[key], (name, key)
            if isinstance(value, (dict, list, set)):
                assert value is not getattr(field, key), (name, key)  # the copy's own container
        assert repr(fast) == repr(deep), name


def test_fields_with_children_querysets_or_serializers_are_deep_copied():
    from apps.accounts.models import User

    UserSerializer().get_fields()
    assert all(plain for _name, _field, plain in UserSerializer.__dict__["_kept_fields"])
    assert not copies_by_attributes(serializers.PrimaryKeyRelatedField(queryset=User.objects.all()))  # not shared
    assert copies_by_attributes(serializers.SlugRelatedField(slug_field="slug", read_only=True))  # no queryset
    assert not copies_by_attributes(serializers.ListField(child=serializers.CharField()))
    assert not copies_by_attributes(UserSerializer())
    assert not copies_by_attributes(serializers.CharField(default=[["a"]]))  # the copy's list would share the inner one
    assert not copies_by_attributes(serializers.CharField(default=object()))
    default = ["a"]
    field = serializers.CharField(default=default)
    assert copies_by_attributes(field) and fresh_field(field).default == default
    assert fresh_field(field).default is not default
    assert copies_by_attributes(serializers.CharField(max_length=5, style={"base_template": "textarea.html"}))


def test_each_instance_gets_fields_of_its_own_unbound_until_used():
    first, second = UserSerializer(), UserSerializer()
    assert first.fields["handle"] is not second.fields["handle"]
    assert first.fields["handle"].parent is first and second.fields["handle"].parent is second
    kept = UserSerializer.__dict__["_kept_fields"]
    assert all(field.parent is None and field.field_name is None for _name, field, _plain in kept)  # never bound


def test_a_change_to_one_instances_fields_does_not_reach_the_next():
    changed = UserSerializer()
    changed.fields["name"].read_only = True
    before = len(changed.fields["name"].validators)

    def extra(value):
        return None

    changed.fields["name"].validators.append(extra)
    del changed.fields["handle"]
    fresh = UserSerializer()
    assert "handle" in fresh.fields
    assert fresh.fields["name"].read_only is False
    assert extra not in fresh.fields["name"].validators
    assert len(fresh.fields["name"].validators) == before


def test_a_subclass_builds_and_keeps_its_own_fields():
    class Narrower(UserSerializer):
        class Meta(UserSerializer.Meta):
            fields = ["uuid", "handle"]

    assert "name" in UserSerializer().fields  # the parent's kept fields exist first
    assert list(Narrower().fields) == ["uuid", "handle"]
    assert list(UserSerializer().fields) == ["uuid", "handle", "name", "email", "date_joined"]


@pytest.mark.django_db
def test_validation_and_output_are_drfs(django_user_model):
    user = django_user_model.objects.create_user(email="kept@example.com", handle="kept-fields", password=None)
    out = UserSerializer(user).data
    assert out["handle"] == "kept-fields" and out["email"] == "kept@example.com"
    refused = UserSerializer(user, data={"name": "x" * 10_000}, partial=True)
    assert not refused.is_valid()
    assert "name" in refused.errors
    accepted = UserSerializer(user, data={"name": "Kept Fields"}, partial=True)
    assert accepted.is_valid(), accepted.errors
    assert accepted.validated_data == {"name": "Kept Fields"}
