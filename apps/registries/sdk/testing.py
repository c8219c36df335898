"""The conformance kit: point it at a configured backend and it checks the SDK contract.

    from apps.registries.sdk.testing import assert_conforms

    def test_my_backend_conforms():
        assert_conforms(MyRegistry(config, context=context), missing_model_id="no-such/model")

It checks that pagination is complete and stable (two listings agree, no id twice, it ends), that every
page's cursor resumes exactly after that page, that ``get_model`` answers each listed id and raises
``NotFound`` for a missing one, that files stream as bytes matching their listed size and checksum, that a
missing file raises ``NotFound``, that the parameter schema is sound, and that every error raised is one of
the SDK's. ``run_conformance`` returns the report instead of raising.
"""

from __future__ import annotations

import hashlib
import itertools
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.registries.sdk.backend import RegistryBackend
from apps.registries.sdk.errors import NotFound, RegistryError
from apps.registries.sdk.types import ModelPage, RemoteFile, RemoteModel

DEFAULT_MAX_PAGES = 10_000


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    backend: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    def summary(self) -> str:
        lines = [f"Conformance of {self.backend}: {'passed' if self.passed else 'FAILED'}"]
        for r in self.results:
            lines.append(f"  {'ok  ' if r.passed else 'FAIL'} {r.name}{': ' + r.detail if r.detail else ''}")
        return "\n".join(lines)


class ContractViolation(AssertionError):
    pass


def _listing(backend: RegistryBackend, cursor: str | None, max_pages: int) -> list[ModelPage]:
    pages = []
    for page in backend.iter_models(cursor):
        if not isinstance(page, ModelPage):
            raise ContractViolation(f"iter_models yielded {type(page).__name__}, not ModelPage")
        for model in page.models:
            if not isinstance(model, RemoteModel):
                raise ContractViolation(f"a page holds {type(model).__name__}, not RemoteModel")
        pages.append(page)
        if len(pages) > max_pages:
            raise ContractViolation(f"iter_models did not end within {max_pages} pages (does it paginate forever?)")
        if page.cursor is None:
            break
    if pages and pages[-1].cursor is not None:
        raise ContractViolation("the last page has a cursor: a listing must end with cursor None")
    return pages


def _ids(pages: list[ModelPage]) -> list[str]:
    return [model.id for page in pages for model in page.models]


def _read_file(
    backend: RegistryBackend, model_id: str, version: str, remote: RemoteFile, limit: int
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in backend.open_file(model_id, version, remote):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise ContractViolation(f"open_file yielded {type(chunk).__name__}, not bytes")
        size += len(chunk)
        digest.update(chunk)
        if size > limit:
            return size, ""
    return size, digest.hexdigest()


def run_conformance(
    backend: RegistryBackend,
    *,
    missing_model_id: str = "gpux-conformance/there-is-no-such-model",
    max_pages: int = DEFAULT_MAX_PAGES,
    sample_models: int = 3,
    max_file_bytes: int = 64 * 1024 * 1024,
    expect_models: bool = True,
) -> ConformanceReport:
    """Every check, recorded. A check that raises a non-SDK exception fails with its traceback's last line."""
    report = ConformanceReport(backend=f"{type(backend).__module__}.{type(backend).__name__}")
    state: dict = {}

    def check(name: str, body: Callable[[], str | None]) -> None:
        try:
            detail = body() or ""
            report.results.append(CheckResult(name, True, detail))
        except ContractViolation as exc:
            report.results.append(CheckResult(name, False, str(exc)))
        except RegistryError as exc:
            report.results.append(CheckResult(name, False, f"unexpected {type(exc).__name__}: {exc}"))
        except Exception as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            report.results.append(CheckResult(name, False, f"raised a non-SDK exception: {last}"))

    def schema() -> str:
        names = [parameter.name for parameter in backend.parameters]
        if len(names) != len(set(names)):
            raise ContractViolation(f"parameter names repeat: {names}")
        if not backend.name:
            raise ContractViolation("the backend has no name")
        return f"{len(names)} parameters"

    def pagination() -> str:
        first = _listing(backend, None, max_pages)
        second = _listing(backend, None, max_pages)
        ids = _ids(first)
        if len(ids) != len(set(ids)):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ContractViolation(f"ids listed more than once: {duplicates}")
        if ids != _ids(second):
            raise ContractViolation("two listings in a row gave different ids or orders")
        if expect_models and not ids:
            raise ContractViolation("the listing is empty; configure the backend with at least one model")
        state["pages"], state["ids"] = first, ids
        return f"{len(ids)} models in {len(first)} pages"

    def cursors() -> str:
        pages = state.get("pages")
        if pages is None:
            raise ContractViolation("skipped: pagination failed")
        ids = state["ids"]
        offset = 0
        for page in pages[:-1]:
            offset += len(page.models)
            rest = _ids(_listing(backend, page.cursor, max_pages))
            if rest != ids[offset:]:
                raise ContractViolation(f"resuming at cursor {page.cursor!r} did not give the models after that page")
        return f"{max(len(pages) - 1, 0)} cursors resumed"

    def get_model() -> str:
        pages = state.get("pages")
        if pages is None:
            raise ContractViolation("skipped: pagination failed")
        models = [model for page in pages for model in page.models][:sample_models]
        for listed in models:
            fetched = backend.get_model(listed.id)
            if fetched.id != listed.id:
                raise ContractViolation(f"get_model({listed.id!r}) answered id {fetched.id!r}")
        try:
            backend.get_model(missing_model_id)
        except NotFound:
            pass
        else:
            raise ContractViolation(f"get_model({missing_model_id!r}) did not raise NotFound")
        return f"{len(models)} fetched, a missing id raised NotFound"

    def files() -> str:
        pages = state.get("pages")
        if pages is None:
            raise ContractViolation("skipped: pagination failed")
        streamed = 0
        for model in [model for page in pages for model in page.models][:sample_models]:
            for version in model.versions[:1]:
                listed = backend.list_files(model.id, version.label)
                if not all(isinstance(remote, RemoteFile) for remote in listed):
                    raise ContractViolation("list_files returned something that is not a RemoteFile")
                for remote in listed[:2]:
                    size, sha256 = _read_file(backend, model.id, version.label, remote, max_file_bytes)
                    where = f"{model.id}@{version.label}/{remote.path}"
                    if remote.size is not None and size <= max_file_bytes and size != remote.size:
                        raise ContractViolation(f"{where}: {size} bytes, listed {remote.size}")
                    if remote.sha256 and sha256 and sha256 != remote.sha256:
                        raise ContractViolation(f"{where}: checksum differs from the listing")
                    streamed += 1
                if listed:
                    ghost = RemoteFile(path="gpux-conformance-missing.bin", locator="gpux-conformance-missing.bin")
                    try:
                        for _ in itertools.islice(backend.open_file(model.id, version.label, ghost), 1):
                            pass
                    except NotFound:
                        pass
                    else:
                        raise ContractViolation("opening a file that does not exist did not raise NotFound")
        return f"{streamed} files streamed"

    check("parameters schema", schema)
    check("pagination is complete and stable", pagination)
    check("cursors resume after their page", cursors)
    check("get_model answers listed ids and NotFound for missing ones", get_model)
    check("files stream with their size and checksum; missing files raise NotFound", files)
    return report


def assert_conforms(backend: RegistryBackend, **options) -> ConformanceReport:
    """``run_conformance`` that raises ``AssertionError`` with the report when any check fails."""
    report = run_conformance(backend, **options)
    if not report.passed:
        raise AssertionError(report.summary())
    return report
