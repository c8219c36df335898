"""A backend's parameters schema validates configuration and names the parameter in every refusal."""

from __future__ import annotations

import pytest

from apps.registries.sdk import ConfigurationError, Parameter, clean_parameters

SCHEMA = (
    Parameter("url", type="url", required=True),
    Parameter("token", sensitive=True),
    Parameter("page_size", type="integer", default=100, min_value=1, max_value=1000),
    Parameter("mirror", type="boolean", default=False),
    Parameter("kind", type="choice", choices=("a", "b")),
    Parameter("repositories", type="list"),
)


def test_values_are_cleaned_into_their_types_with_defaults():
    cleaned = clean_parameters(
        SCHEMA, {"url": " https://hub.example/ ", "page_size": "50", "mirror": "on", "repositories": "a/b, c/d\ne/f"}
    )
    assert cleaned == {
        "url": "https://hub.example/",
        "token": None,
        "page_size": 50,
        "mirror": True,
        "kind": None,
        "repositories": ["a/b", "c/d", "e/f"],
    }


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({}, "url", "required"),
        ({"url": "ftp://x"}, "url", "http"),
        ({"url": 5}, "url", "text"),
        ({"url": "https://x", "page_size": 0}, "page_size", "at least 1"),
        ({"url": "https://x", "page_size": True}, "page_size", "whole number"),
        ({"url": "https://x", "page_size": 1.5}, "page_size", "whole number"),
        ({"url": "https://x", "mirror": "maybe"}, "mirror", "true or false"),
        ({"url": "https://x", "kind": "c"}, "kind", "one of"),
        ({"url": "https://x", "repositories": [1]}, "repositories", "list of text"),
        ({"url": "https://x\x00"}, "url", "NUL"),
        ({"url": "https://x", "surprise": 1}, "surprise", "not a parameter"),
    ],
)
def test_bad_values_raise_configuration_error_naming_the_parameter(values, field, reason):
    with pytest.raises(ConfigurationError) as refused:
        clean_parameters(SCHEMA, values)
    assert refused.value.field == field
    assert reason in refused.value.message


def test_a_sensitive_parameter_never_describes_its_default():
    described = Parameter("token", sensitive=True, default="dev-token").describe()
    assert described["sensitive"] is True and described["default"] is None
