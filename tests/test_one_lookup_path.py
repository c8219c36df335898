"""One lookup path (issue #13, item 19): restrict → 404 → 403 → lock is written once, in apps/core/lookup.py.

A lookup mixin of a domain app (a class whose name ends in ``Mixin``, outside apps/core, that reads through
``restrict()`` or core's lookup) says which object and which action, and leaves the sequence to core: it raises no
``PermissionDenied`` of its own, locks no row itself (``select_for_update``) and answers no 404 by itself
(``get_object_or_404`` / ``raise Http404``). A new mixin that writes the sequence again fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN_CALLS = {"get_object_or_404", "select_for_update"}
FORBIDDEN_RAISES = {"PermissionDenied", "DjangoPermissionDenied", "Http404"}
# apps/core/lookup.py's functions, and apps/core/mixins.py's names for them
CORE_LOOKUP = {
    "find_allowed",
    "find_allowed_at_once",
    "find_among",
    "allows",
    "require_action",
    "lock_allowed",
    "refuse",
    "get_viewable_or_404",
    "get_allowed_or_403",
}
LOOKUP_MIXINS = {
    "ModelLookupMixin",
    "ModelPageMixin",
    "UploadSessionMixin",
    "DeploymentLookupMixin",
    "DeploymentPageMixin",
    "PipelinePageMixin",
    "RegistryPageMixin",
    "TeamPageMixin",
    "ObjectGrantsMixin",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _lookup_mixins():
    for path in sorted((REPO / "apps").rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[1] == "core" or "migrations" in relative.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or not node.name.endswith("Mixin"):
                continue
            calls = {_name(call) for call in ast.walk(node) if isinstance(call, ast.Call)}
            if "restrict" in calls or calls & CORE_LOOKUP:
                yield relative, node


def _own_sequence(cls: ast.ClassDef) -> list[str]:
    found = []
    for node in ast.walk(cls):
        if isinstance(node, ast.Call) and _name(node) in FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: {_name(node)}()")
        if isinstance(node, ast.Raise) and node.exc is not None and _name(node.exc) in FORBIDDEN_RAISES:
            found.append(f"line {node.lineno}: raise {_name(node.exc)}")
    return found


def test_the_lookup_mixins_look_up_through_core():
    using_core = {
        cls.name
        for _, cls in _lookup_mixins()
        if {_name(call) for call in ast.walk(cls) if isinstance(call, ast.Call)} & CORE_LOOKUP
    }
    assert using_core >= LOOKUP_MIXINS, f"not through apps/core/lookup.py: {sorted(LOOKUP_MIXINS - using_core)}"


def test_no_lookup_mixin_outside_core_writes_its_own_404_403_or_lock():
    offenders = {f"{path}:{cls.name}": found for path, cls in _lookup_mixins() if (found := _own_sequence(cls))}
    assert not offenders, f"use apps/core/lookup.py (find_allowed, require_action, lock_allowed): {offenders}"
