"""A sync writes a registry's models into the organization's catalog: incremental, idempotent, counted."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus
from apps.marketplace.models import Alias, Model, ModelVersion, VersionStatus
from apps.registries.models import RegistryModel, RemoteFile
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(world):
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model(f"team/model-{n}", versions=("1", "2")) for n in range(5)]
    return make_registry(world.org, world.user("owner"), model_visibility="internal")


def test_first_sync_creates_models_versions_files_and_aliases(registry, world):
    sync = run_sync(registry, world.user("admin"))

    assert sync.job.status == JobStatus.SUCCEEDED, sync.job.error
    assert (sync.seen, sync.created, sync.updated, sync.unchanged, sync.failed) == (5, 5, 0, 0, 0)
    assert sync.complete and sync.pages == 3
    model = Model.objects.get(organization=world.org, name="team.model-3")
    assert model.source_registry == "scripted" and model.external_id == "team/model-3"
    assert model.visibility == "internal" and model.license == "mit"
    assert sorted(model.versions.values_list("label", flat=True)) == ["1", "2"]
    assert set(model.versions.values_list("status", flat=True)) == {VersionStatus.PUBLISHED}
    assert Alias.objects.get(model=model, name="latest").version.label == "2"
    files = RemoteFile.objects.filter(version__model=model)
    assert {(f.path, f.upstream_label) for f in files} == {("model.onnx", "1"), ("model.onnx", "2")}
    assert all(len(f.sha256) == 64 for f in files)
    assert sync.job.result["created"] == 5


def test_a_second_sync_with_nothing_changed_writes_nothing_new(registry, world):
    run_sync(registry)
    second = run_sync(registry)

    assert (second.seen, second.created, second.updated, second.unchanged, second.removed) == (5, 0, 0, 5, 0)
    assert Model.objects.filter(organization=world.org).count() == 5
    assert ModelVersion.objects.filter(model__organization=world.org).count() == 10
    assert set(RegistryModel.objects.values_list("last_seen_sync_id", flat=True)) == {second.pk}


def test_a_changed_model_is_updated_and_a_new_version_added(registry, world):
    run_sync(registry)
    ScriptedBackend.CATALOGS["scripted"][2] = scripted_model(
        "team/model-2", summary="Retrained.", versions=("1", "2", "3")
    )
    second = run_sync(registry)

    assert (second.created, second.updated, second.unchanged) == (0, 1, 4)
    model = Model.objects.get(name="team.model-2")
    assert model.summary == "Retrained."
    assert sorted(model.versions.values_list("label", flat=True)) == ["1", "2", "3"]
    assert Alias.objects.get(model=model, name="latest").version.label == "3"


def test_a_model_gone_upstream_is_marked_removed_not_deleted(registry, world):
    run_sync(registry)
    del ScriptedBackend.CATALOGS["scripted"][0]
    second = run_sync(registry)

    assert second.removed == 1
    gone = Model.objects.get(name="team.model-0")  # still in the catalog
    assert gone.registry_link.removed_upstream_at is not None
    assert RegistryModel.objects.filter(removed_upstream_at__isnull=False).count() == 1

    ScriptedBackend.CATALOGS["scripted"].append(scripted_model("team/model-0", versions=("1", "2")))
    third = run_sync(registry)
    assert third.updated == 1 and third.removed == 0
    gone.registry_link.refresh_from_db()
    assert gone.registry_link.removed_upstream_at is None


def test_a_sync_writes_one_audit_event_with_its_counts(registry, world):
    before = AuditEvent.objects.filter(organization=world.org, action__startswith="registry.sync").count()
    sync = run_sync(registry, world.user("admin"))

    events = AuditEvent.objects.filter(organization=world.org, action__startswith="registry.sync")
    assert events.count() == before + 1
    event = events.latest("seq")
    assert event.action == "registry.synced"
    assert event.metadata["created"] == 5 and event.metadata["job"] == str(sync.job.uuid)
    assert not AuditEvent.objects.filter(organization=world.org, action__startswith="model.").exists()


def test_filters_keep_only_matching_ids_tags_and_licenses(world):
    ScriptedBackend.CATALOGS["filtered"] = [
        scripted_model("keep/a", tags=("onnx", "nlp")),
        scripted_model("keep/b", tags=("vision",)),
        scripted_model("keep/c", tags=("nlp",), license="proprietary"),
        scripted_model("drop/d", tags=("nlp",)),
        scripted_model("keep/e-experimental", tags=("nlp",)),
    ]
    registry = make_registry(
        world.org,
        world.user("owner"),
        slug="filtered",
        include_patterns=["keep/*"],
        exclude_patterns=["*-experimental"],
        tags=["NLP"],
        licenses=["mit", "apache-2.0"],
    )
    sync = run_sync(registry)

    assert list(Model.objects.filter(source_registry="filtered").values_list("external_id", flat=True)) == ["keep/a"]
    assert (sync.seen, sync.skipped, sync.created) == (5, 4, 1)


def test_ids_map_to_catalog_names_and_a_taken_name_gets_a_hash(world):
    owner = world.user("owner")
    Model.objects.create(organization=world.org, name="hub.bert-base")  # an uploaded model holds the name
    ScriptedBackend.CATALOGS["names"] = [scripted_model("Hub/BERT base"), scripted_model("x" * 150)]
    sync = run_sync(make_registry(world.org, owner, slug="names"))

    assert sync.created == 2
    names = set(Model.objects.filter(source_registry="names").values_list("name", flat=True))
    assert len(names) == 2
    bert = Model.objects.get(external_id="Hub/BERT base")
    assert bert.name.startswith("hub.bert-base-") and len(bert.name) == len("hub.bert-base-") + 8
    assert all(len(name) <= 96 for name in names)
