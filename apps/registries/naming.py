"""Catalog names and version labels for what registries call their models and versions.

Registry ids ("onnxmodelzoo/ResNet-50", "team/fraud model", "42") become catalog names that match the catalog's
rules (lowercase letters, digits, single ``.-_`` between them, at most 96 characters): ``/`` becomes ``.``,
anything else not allowed becomes ``-``, runs of separators collapse. Too long, empty or taken names get a
short hash of the id, so the same id always maps to the same name.
"""

from __future__ import annotations

import hashlib
import re

from apps.marketplace.models import ALIAS_NAME_PATTERN, MODEL_NAME_PATTERN, VERSION_LABEL_PATTERN

MAX_NAME = 96
MAX_LABEL = 64
_NAME_BAD = re.compile(r"[^a-z0-9._-]+")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9._+-]+")
_SEPARATORS = re.compile(r"[._+-]{2,}")


def id_hash(external_id: str, length: int = 8) -> str:
    return hashlib.sha1(external_id.encode(), usedforsecurity=False).hexdigest()[:length]


def _squeeze(text: str, bad: re.Pattern, limit: int, suffix: str) -> str:
    text = bad.sub("-", text)
    text = _SEPARATORS.sub(lambda match: match.group(0)[0], text).strip("._+-")
    if len(text) > limit:
        text = text[: limit - len(suffix) - 1].rstrip("._+-") + "-" + suffix
    return text


def catalog_name_for(external_id: str) -> str:
    """The catalog name a registry id maps to (before collisions)."""
    simple = external_id.lower().replace("/", ".")
    if len(simple) <= MAX_NAME and MODEL_NAME_PATTERN.match(simple):
        return simple  # the common case, one regex: ids that are already good names ("org/model-1")
    name = _squeeze(external_id.lower().replace("/", "."), _NAME_BAD, MAX_NAME, id_hash(external_id))
    if not name or not name[0].isalnum() or not MODEL_NAME_PATTERN.match(name):
        name = f"model-{id_hash(external_id)}"
    return name


def disambiguated_name(external_id: str) -> str:
    """The name to use when ``catalog_name_for`` is taken by another model of the organization."""
    suffix = id_hash(external_id)
    base = catalog_name_for(external_id)[: MAX_NAME - len(suffix) - 1].rstrip("._-")
    return f"{base}-{suffix}" if base else f"model-{suffix}"


def version_label_for(label: str) -> str:
    text = _squeeze(str(label), _LABEL_BAD, MAX_LABEL, id_hash(str(label)))
    if not text or not VERSION_LABEL_PATTERN.match(text):
        text = f"v-{id_hash(str(label))}"
    return text


def alias_name_for(alias: str) -> str | None:
    """The catalog alias for a registry alias, or None when it cannot be one (aliases are not hashed)."""
    text = re.sub(r"[^a-z0-9_-]+", "-", str(alias).lower()).strip("-_")
    text = re.sub(r"[-_]{2,}", "-", text)[:40].rstrip("-_")
    return text if ALIAS_NAME_PATTERN.match(text or "") else None
