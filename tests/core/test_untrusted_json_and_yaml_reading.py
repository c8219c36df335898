"""apps.core.parsing, the one reader of JSON and YAML from outside: nesting is measured without recursion before
parsing (brackets inside strings do not count), lone surrogates are found with the path of their field, and the
YAML loader refuses deep nesting and aliases while composing."""

from __future__ import annotations

import json

import pytest
import yaml

from apps.core import parsing


@pytest.mark.parametrize(
    ("text", "exceeds"),
    [
        ("[" * 4 + "]" * 4, False),
        ("[" * 5 + "]" * 5, True),
        ("[[1],[2],[3],[4],[5],[6],[7]]", False),  # many brackets, depth 2
        ('["[[[[[[[[[[", "{{{{{{{{"]', False),  # brackets in strings
        ('["\\"[[[[[[[[[", "\\\\", [[]]]', False),  # escaped quote and backslash keep the string's end right
        ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', True),
        ("[" * 100_000, True),  # never closed
    ],
)
def test_nesting_is_measured_on_brackets_outside_strings(text, exceeds):
    assert parsing.json_nesting_exceeds(text, 4) is exceeds


def test_loads_json_refuses_nesting_past_the_limit_before_parsing():
    with pytest.raises(parsing.NestingTooDeep) as caught:
        parsing.loads_json("[" * 1_000_000 + "]" * 1_000_000)
    assert caught.value.limit == 64
    assert isinstance(caught.value, ValueError)


def test_loads_json_reads_bytes_in_any_json_encoding_and_refuses_lone_surrogates_with_their_path():
    assert parsing.loads_json('{"a": ["é", "\\ud83d\\ude00"]}'.encode("utf-16")) == {"a": ["é", "\U0001f600"]}
    with pytest.raises(parsing.InvalidText) as caught:
        parsing.loads_json(b'{"inputs": {"text": ["ok", "\\udc00"]}}')
    assert caught.value.path == "inputs.text[1]"
    assert caught.value.under("body") == "body.inputs.text[1]"
    assert str(caught.value).startswith("inputs.text[1]: holds a lone UTF-16 surrogate")


def test_an_escaped_backslash_before_u_is_text_not_a_surrogate():
    assert parsing.loads_json('["\\\\ud83d"]') == ["\\ud83d"]


def test_lone_surrogates_are_found_in_keys_and_in_data_as_deep_as_the_limit_allows():
    deep: list = ["\ud83d"]
    for _ in range(63):
        deep = [deep]
    assert parsing.lone_surrogate_at(deep) == "[0]" * 64
    assert parsing.lone_surrogate_at({"a": {"\udfff": 1}}) == "a (a key)"
    assert parsing.lone_surrogate_at({"a": [1, 2.5, None, True, "fine \U0001f600"]}) is None


def test_the_yaml_loader_refuses_block_and_flow_nesting_past_the_limit_while_composing():
    within = "a: " + "[" * 63 + "]" * 63
    assert yaml.load(within, Loader=parsing.DepthLimitedSafeLoader)["a"] is not None
    for text in ("a: " + "[" * 64 + "]" * 64, "".join("  " * level + "- \n" for level in range(70))):
        with pytest.raises(yaml.composer.ComposerError, match="nested deeper than 64 levels"):
            parsing.load_yaml(text)


def test_the_yaml_loader_refuses_aliases_and_lone_surrogate_escapes():
    with pytest.raises(yaml.composer.ComposerError, match="anchors and aliases"):
        parsing.load_yaml("a: &x [1, 2]\nb: *x\n")
    with pytest.raises(parsing.InvalidText) as caught:
        parsing.load_yaml('model: {source: "\\ud83d.onnx"}')
    assert caught.value.path == "model.source"


def test_the_depth_of_a_valid_document_agrees_with_pythons_json():
    document = {"a": [{"b": [[1, 2], {"c": "]]]"}]}], "d": "{"}
    text = json.dumps(document)
    assert not parsing.json_nesting_exceeds(text, 5)
    assert parsing.json_nesting_exceeds(text, 4)
    assert parsing.loads_json(text, max_depth=5) == document
