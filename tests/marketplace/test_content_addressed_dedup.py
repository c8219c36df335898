"""The same bytes uploaded by two organizations are stored once: one Blob, one stored file."""

from __future__ import annotations

import pytest

from apps.marketplace.models import Blob, VersionFile, blob_storage_name
from tests.factories import MembershipFactory, OrganizationFactory
from tests.marketplace.conftest import iris_bytes, sha256_of, stored_files

pytestmark = pytest.mark.django_db


def test_same_bytes_in_two_organizations_are_one_blob_and_one_file(catalog, catalog_storage):
    other = OrganizationFactory(slug="globex")
    MembershipFactory(organization=other, user=catalog.world.user("member"))
    data = iris_bytes()
    catalog.add(catalog.version(catalog.model("iris"), "1.0"), "model.onnx", data)
    catalog.add(catalog.version(catalog.model("iris-copy", organization=other), "1.0"), "classifier.onnx", data)

    assert VersionFile.objects.count() == 2
    blob = Blob.objects.get()
    assert blob.sha256 == sha256_of(data)
    files = stored_files(catalog_storage / "media")
    assert [path.relative_to(catalog_storage / "media").as_posix() for path in files] == [
        blob_storage_name(blob.sha256)
    ]
    assert stored_files(catalog_storage / "uploads") == []


def test_different_bytes_are_different_blobs(catalog):
    version = catalog.version(catalog.model("iris"), "1.0")
    catalog.add(version, "a.txt", b"a")
    catalog.add(version, "b.txt", b"b")
    assert Blob.objects.count() == 2
