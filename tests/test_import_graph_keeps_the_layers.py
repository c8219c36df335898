"""DESIGN.md's layering, measured on the import graph of ``apps/`` (issue #13, item 18).

* ``apps.core`` holds mechanisms: it imports no domain app (the catalog, inference, registries, analytics);
* core may know identity and tenancy (accounts, organizations, audit: the foundation apps, which all build on core's
  base classes) only through interfaces, never by importing them: an import back would be a cycle;
* the catalog (``apps.marketplace``) does not import inference: publishing sends ``version_published``, which
  inference listens to, and the model page asks the catalog's extension point for the panels other apps add;
* accounts' and organizations' services do not import each other (a membership that ends sends
  ``membership_ended``; accounts revokes the tokens bound to it).

Every import counts, wherever it is written (inside a function, under ``TYPE_CHECKING``), and so does every chain
of imports through other modules, as import-linter's ``forbidden`` contracts count them; the same contracts are
declared for import-linter in pyproject.toml (``[tool.importlinter]``), which the last test runs where installed.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import deque
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOUNDATION = ("apps.accounts", "apps.organizations", "apps.audit")
DOMAIN = ("apps.marketplace", "apps.inference", "apps.registries", "apps.analytics")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def import_graph() -> dict[str, set[str]]:
    """Each module of apps/ (migrations left out) and the modules of apps/ it imports."""
    files = {_module_name(path): path for path in (REPO / "apps").rglob("*.py") if "migrations" not in path.parts}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                imported.add(target)
                imported.update(f"{target}.{alias.name}" for alias in node.names)
        graph[module] = {name for name in imported if name in files and name != module}
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def chains(source: str, target: str) -> list[list[str]]:
    """Shortest import chains from any module of package ``source`` to any module of package ``target``
    (one per first module of ``target`` reached), e.g. ``[["apps.core.mixins", "apps.organizations.services"]]``."""
    graph = import_graph()
    starts = [module for module in graph if _in(module, source)]
    previous: dict[str, str | None] = dict.fromkeys(starts)
    queue = deque(starts)
    found = []
    while queue:
        module = queue.popleft()
        for imported in sorted(graph[module]):
            if imported in previous:
                continue
            previous[imported] = module
            if _in(imported, target):
                chain, step = [imported], module
                while step is not None:
                    chain.append(step)
                    step = previous[step]
                found.append(chain[::-1])
            else:
                queue.append(imported)
    return found


def _explain(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(chain) for chain in found)


@pytest.mark.parametrize("domain_app", DOMAIN)
def test_core_imports_no_domain_app(domain_app):
    found = chains("apps.core", domain_app)
    assert not found, f"apps.core imports {domain_app}:\n{_explain(found)}"


@pytest.mark.parametrize("foundation_app", FOUNDATION)
def test_no_cycle_between_core_and_a_foundation_app(foundation_app):
    assert chains(foundation_app, "apps.core"), f"{foundation_app} is expected to build on apps.core"
    found = chains("apps.core", foundation_app)
    assert not found, f"apps.core imports {foundation_app}, which imports apps.core:\n{_explain(found)}"


def test_the_catalog_does_not_import_inference():
    found = chains("apps.marketplace", "apps.inference")
    assert not found, f"the catalog imports inference:\n{_explain(found)}"


def test_accounts_and_organizations_services_do_not_import_each_other():
    back = chains("apps.organizations.services", "apps.accounts.services")
    assert not back, f"organizations' services import accounts' services:\n{_explain(back)}"


def test_an_import_inside_a_function_counts():
    """The checker itself: ``export_version_manifest`` is imported inside a method of the catalog's pages."""
    assert "apps.marketplace.validation" in import_graph()["apps.marketplace.views"]


def test_import_linter_contracts_hold():
    """The same contracts, as import-linter declares them (pyproject.toml), run by its own command."""
    pytest.importorskip("importlinter")
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "import-linter is installed but its lint-imports command is not"
    run = subprocess.run([command, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
