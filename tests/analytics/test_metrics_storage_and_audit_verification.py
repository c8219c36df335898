"""/metrics reads the portal's data for two families: the bytes each organization stores (the largest N, the rest
under "(other)", one grouped query kept in the cache) and the last verification of the audit chains (the periodic
task, or `verify_audit_chain --all`), whose broken count the AuditChainBroken alert watches."""

from __future__ import annotations

import hashlib

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from apps.analytics import metrics as analytics_metrics
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.audit.tasks import verify_audit_chains
from apps.marketplace.models import Blob, Model, ModelVersion, VersionFile
from apps.organizations.models import Organization
from tests.audit.conftest import tamper
from tests.factories import OrganizationFactory
from tests.metrics_support import scrape_web

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.delete(analytics_metrics.STORAGE_KEY)
    yield
    cache.delete(analytics_metrics.STORAGE_KEY)


def _store(organization: Organization, sizes: list[int], *, shared: Blob | None = None) -> list[Blob]:
    model = Model.objects.create(organization=organization, name=f"m-{organization.slug}")
    version = ModelVersion.objects.create(model=model, label="1.0.0")
    blobs = []
    for index, size in enumerate(sizes):
        sha = hashlib.sha256(f"{organization.slug}-{index}".encode()).hexdigest()
        blob = Blob.objects.create(sha256=sha, size=size, storage_name=f"blobs/{sha}")
        VersionFile.objects.create(version=version, path=f"f{index}.bin", blob=blob)
        blobs.append(blob)
    if shared is not None:  # the same bytes twice in one organization count once
        VersionFile.objects.create(version=version, path="shared-a.bin", blob=shared)
        VersionFile.objects.create(version=version, path="shared-b.bin", blob=shared)
    return blobs


def test_storage_per_organization_is_bounded_to_the_largest(settings):
    settings.METRICS_STORAGE_TOP_ORGANIZATIONS = 2
    big, middle, small, tiny = (OrganizationFactory(slug=slug) for slug in ("big", "middle", "small", "tiny"))
    shared = _store(big, [1000, 500])[0]
    _store(middle, [700], shared=shared)
    _store(small, [30])
    _store(tiny, [5])
    scraped = scrape_web(Client())
    assert scraped.value("gpux_organization_storage_bytes", organization="big") == 1500
    assert scraped.value("gpux_organization_storage_bytes", organization="middle") == 1700
    assert scraped.value("gpux_organization_storage_bytes", organization="(other)") == 35
    assert len(scraped.find("gpux_organization_storage_bytes")) == 3


def test_storage_is_computed_at_most_once_per_refresh_period(settings, django_assert_num_queries):
    OrganizationFactory(slug="lonely")
    analytics_metrics.storage_top()
    with django_assert_num_queries(0):
        list(analytics_metrics.storage_families())


def test_the_periodic_verification_reports_intact_chains(world):
    record_event(action="team.created", organization=world.org, actor=world.user("owner"))
    result = verify_audit_chains()
    assert result["broken"] == 0 and result["intact"] >= 1
    scraped = scrape_web(Client())
    assert scraped.value("gpux_audit_chains", result="broken") == 0
    assert scraped.value("gpux_audit_chains", result="intact") == result["intact"]
    assert scraped.value("gpux_audit_chain_verification_timestamp_seconds") == pytest.approx(result["at"])


def test_a_tampered_chain_is_reported_broken_by_the_command(world):
    event = record_event(action="team.created", organization=world.org, actor=world.user("owner"))
    record_event(action="team.deleted", organization=world.org, actor=world.user("owner"))
    tamper(f"UPDATE {AuditEvent._meta.db_table} SET action = 'tampered.action' WHERE id = %s", [event.pk])
    with pytest.raises(Exception, match="broken"):
        call_command("verify_audit_chain", "--all", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))  # noqa: SIM115
    scraped = scrape_web(Client())
    assert scraped.value("gpux_audit_chains", result="broken") == 1
