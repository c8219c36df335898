"""One of each helper (issue #13, item 20): each small helper is defined once, in the module where DESIGN.md's
layering puts it, and every other module uses that one instead of a copy of its own.

Read from the source with ``ast`` (nothing is imported), so a copy that comes back under the old name fails here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"


def _definitions() -> dict[str, list[str]]:
    """Every function and class (at any depth) and every module- or class-level assignment in apps/ -> where."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        where = path.relative_to(APPS.parent).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[node.name].append(where)
        for scope in [tree, *(node for node in ast.walk(tree) if isinstance(node, ast.ClassDef))]:
            for node in scope.body:
                targets = list(node.targets) if isinstance(node, ast.Assign) else []
                targets += [node.target] if isinstance(node, ast.AnnAssign) else []
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id].append(where)
    return found


DEFINITIONS = _definitions()

# name -> the one module that defines it
ONE_OF_EACH = {
    "shape_text": "apps/inference/runtime/signature.py",
    "tensor_type": "apps/inference/runtime/signature.py",
    "mergeable": "apps/inference/runtime/validation.py",
    "split_outputs": "apps/inference/runtime/codecs.py",
    "SLUG_VALIDATOR": "apps/core/validators.py",
    "absolute_url": "apps/core/api/serializers.py",
    "Problems": "apps/core/errors.py",
    "json_kind": "apps/inference/runtime/codecs.py",
}

# the copies that were folded into the helpers above
GONE = [
    "_shape_text",
    "_tensor_type",
    "_tensor_elem_type",
    "_mergeable",
    "_compatible",
    "_split_outputs",
    "_tensor_and_other",
    "_absolute",
    "_Problems",
    "_add_error",
    "_raise_if",
    "_json_kind",
    "_kind",
]


@pytest.mark.parametrize("name", sorted(ONE_OF_EACH))
def test_each_helper_is_defined_once_where_the_layering_puts_it(name):
    assert DEFINITIONS.get(name) == [ONE_OF_EACH[name]]


@pytest.mark.parametrize("name", GONE)
def test_the_copies_are_gone(name):
    assert DEFINITIONS.get(name, []) == []


def test_no_module_keeps_an_error_collector_of_its_own():
    """A class with an ``add(field, message, code)`` that fills a dict of lists is an error collector: only core's
    ``Problems`` is one."""
    collectors = []
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            source = ast.unparse(node)
            if "def add(" in source and ".setdefault(" in source and "[]).append(" in source:
                collectors.append(f"{path.relative_to(APPS.parent).as_posix()}:{node.name}")
    assert collectors == ["apps/core/errors.py:Problems"]
