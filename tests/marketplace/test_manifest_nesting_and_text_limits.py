"""gpux.yml nested past INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate, is refused with a short 400 naming
the manifest, and nothing is written. Before, YAML nested 10,000 deep exhausted the composer's recursion: a 500
with a 4.5 MB page."""

from __future__ import annotations

import pytest

from tests.marketplace.test_manifest_api import Unchanged, put_manifest, validated_iris

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "text",
    [
        "name: iris\nmetadata: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "name: iris\nmetadata:\n" + "".join("  " * level + "- \n" for level in range(200)),
        "name: iris\nmetadata: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
    ],
    ids=["flow-10000", "block-200", "mapping-100"],
)
def test_a_gpux_yml_nested_past_the_limit_is_refused_naming_the_manifest(catalog, text):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", text)

    assert response.status_code == 400, response.content[:300]
    assert len(response.content) < 2000
    message = response.json()["manifest"][0]
    assert message.startswith("gpux.yml: not valid YAML") and "nested deeper than 64 levels" in message
    unchanged.check()


def test_a_gpux_yml_within_the_limit_is_judged_on_its_fields(catalog):
    version = validated_iris(catalog)
    text = "name: iris\nmetadata: " + "[" * 63 + "]" * 63 + "\n"

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", text)

    assert response.status_code == 400
    assert "nested deeper" not in str(response.json())


def test_a_lone_surrogate_escape_in_a_gpux_yml_is_refused_naming_its_path(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", 'name: iris\ndescription: "a \\ud83d"\n')

    assert response.status_code == 400, response.content[:300]
    assert response.json()["manifest"] == [
        "gpux.yml: description: holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which is "
        "not Unicode text; send the character itself or its complete surrogate pair"
    ]
    unchanged.check()


def test_a_json_envelope_nested_past_the_limit_or_with_a_lone_surrogate_is_refused(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()
    client = catalog.client("member")
    deep_json = '{"manifest": ' + "[" * 5000 + "]" * 5000 + "}"

    deep = put_manifest(client, version.model, "1.0.0", deep_json, "application/json")
    lone = put_manifest(client, version.model, "1.0.0", '{"manifest": "\\udc00"}', "application/json")

    assert deep.status_code == 400 and deep.json()["codes"] == {"manifest": ["nesting_too_deep"]}
    assert lone.status_code == 400 and lone.json()["codes"] == {"manifest": ["invalid_text"]}
    unchanged.check()
