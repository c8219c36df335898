"""The conformance kit fails backends that break the contract, each with the check that caught it."""

from __future__ import annotations

import hashlib

import pytest

from apps.registries.sdk import ModelPage, NotFound, Parameter, RegistryBackend, RemoteFile, RemoteModel, RemoteVersion
from apps.registries.sdk.testing import assert_conforms, run_conformance

DATA = b"model bytes"


def model(model_id: str, sha256: str | None = None) -> RemoteModel:
    remote_file = RemoteFile(path="model.onnx", size=len(DATA), sha256=sha256 or hashlib.sha256(DATA).hexdigest())
    return RemoteModel(id=model_id, versions=(RemoteVersion(label="1", files=(remote_file,)),))


class GoodBackend(RegistryBackend):
    name = "good"
    parameters = (Parameter("x"),)
    ids = ("a", "b", "c", "d", "e")

    def models(self) -> list[RemoteModel]:
        return [model(i) for i in self.ids]

    def iter_models(self, cursor=None):
        models = self.models()
        start = int(cursor or 0)
        for offset in range(start, len(models), 2):
            end = offset + 2
            yield ModelPage(models=tuple(models[offset:end]), cursor=str(end) if end < len(models) else None)

    def get_model(self, model_id):
        for candidate in self.models():
            if candidate.id == model_id:
                return candidate
        raise NotFound(model_id)

    def open_file(self, model_id, version, file):
        self.get_model(model_id)
        if file.path != "model.onnx":
            raise NotFound(file.path)
        yield DATA


class DuplicateIds(GoodBackend):
    ids = ("a", "b", "a")


class CursorIgnored(GoodBackend):
    def iter_models(self, cursor=None):
        yield from super().iter_models(None)  # always starts over


class Endless(GoodBackend):
    def iter_models(self, cursor=None):
        page = int(cursor or 0)
        while True:
            page += 1
            yield ModelPage(models=(model(f"m{page}"),), cursor=str(page))


class RaisesKeyError(GoodBackend):
    def get_model(self, model_id):
        raise KeyError(model_id)


class WrongChecksum(GoodBackend):
    def models(self):
        return [model(i, sha256="0" * 64) for i in self.ids]


class MissingFileNotNotFound(GoodBackend):
    def open_file(self, model_id, version, file):
        if file.path != "model.onnx":
            raise FileNotFoundError(file.path)
        yield DATA


def test_a_backend_that_keeps_the_contract_passes():
    report = assert_conforms(GoodBackend({}))
    assert report.passed and len(report.results) == 5


@pytest.mark.parametrize(
    ("backend", "check", "detail"),
    [
        (DuplicateIds, "pagination", "more than once"),
        (CursorIgnored, "cursors", "did not give the models after that page"),
        (Endless, "pagination", "paginate forever"),
        (RaisesKeyError, "get_model", "non-SDK exception: KeyError"),
        (WrongChecksum, "files", "checksum differs"),
        (MissingFileNotNotFound, "files", "non-SDK exception: FileNotFoundError"),
    ],
)
def test_a_backend_that_breaks_the_contract_fails_the_check_that_catches_it(backend, check, detail):
    report = run_conformance(backend({}), max_pages=50)

    assert not report.passed
    failed = [result for result in report.failures if result.name.startswith(check)]
    assert failed, report.summary()
    assert detail in failed[0].detail, report.summary()
    with pytest.raises(AssertionError, match="FAIL"):
        assert_conforms(backend({}), max_pages=50)
