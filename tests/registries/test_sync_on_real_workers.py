"""Syncs on real Celery workers (subprocesses on the ``sync`` queue, Redis broker, the test PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from apps.core.job_services import reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus
from apps.marketplace.models import Model
from apps.registries.models import RegistrySync
from tests import jobs_support
from tests.conftest import api_client_for
from tests.peers.faulty_registry import FaultyRegistry
from tests.registries.support import make_registry

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sync_workers(transactional_db, settings, tmp_path):
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need Redis and PostgreSQL, as in CI")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    started: list[jobs_support.WorkerProcess] = []

    def start() -> jobs_support.WorkerProcess:
        worker = jobs_support.WorkerProcess(
            tmp_path,
            queues=("sync",),
            task_modules=("tests.registries.worker_plugins",),
            env={"GPUX_REGISTRY_ALLOWED_NETWORKS": "127.0.0.1/32", "REGISTRY_RETRY_BACKOFF_SECONDS": "0.05"},
        ).start()
        started.append(worker)
        return worker.wait_ready()

    jobs_support.purge_broker()
    yield start
    for worker in started:
        worker.terminate()
    for worker in started:
        worker.wait_stopped()
    jobs_support.purge_broker()


def finished(sync: RegistrySync, timeout: float = 60) -> Job:
    return jobs_support.wait_for(
        jobs_support.job_in(sync.job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=timeout, what="the sync job"
    )


def test_a_sync_started_through_the_api_runs_on_a_sync_worker(world, sync_workers):
    sync_workers()
    with FaultyRegistry() as server:
        server.add_models(5)
        make_registry(world.org, world.user("owner"), backend="http-index", slug="idx", config={"url": server.url})
        response = api_client_for(world.user("admin")).post(
            reverse("api:org-registry-sync-list", kwargs={"org_slug": "acme", "registry_slug": "idx"})
        )
        assert response.status_code == 202
        job = finished(RegistrySync.objects.get(pk=response.json()["id"]))

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.queue == "sync" and job.result["created"] == 5
    assert Model.objects.filter(source_registry="idx").count() == 5


def test_a_plugin_that_exits_fails_its_sync_and_the_worker_runs_the_next_one(world, sync_workers):
    from apps.registries import services

    worker = sync_workers()
    owner = world.user("owner")
    broken = make_registry(world.org, owner, backend="test-exploding", slug="boom", config={"raise": "system-exit"})
    first = finished(services.start_sync(registry=broken, actor=owner))
    assert first.status == JobStatus.FAILED and "a bug in the backend" in first.error
    assert worker.process.poll() is None, worker.log()

    good = make_registry(world.org, owner, backend="example-catalog", slug="examples", config={"page_size": 2})
    second = finished(services.start_sync(registry=good, actor=owner))
    assert second.status == JobStatus.SUCCEEDED, second.error
    assert worker.process.poll() is None


def test_a_worker_killed_mid_sync_is_replaced_and_the_run_resumes_at_its_cursor(world, sync_workers):
    from apps.registries import services

    workers = [sync_workers(), sync_workers()]
    with FaultyRegistry(page_size=2) as server:
        server.add_models(20)
        server.faults.hang = 0.4  # ten slow pages: time to kill the worker between two of them
        registry = make_registry(
            world.org, world.user("owner"), backend="http-index", slug="slow", config={"url": server.url}
        )
        sync = services.start_sync(registry=registry, actor=world.user("owner"))
        jobs_support.wait_for(
            lambda: RegistrySync.objects.filter(pk=sync.pk, pages__gte=2).exists(), timeout=30, what="two pages"
        )
        running = Job.objects.get(pk=sync.job_id)
        for worker in workers:  # SIGKILL the one running it; the other is idle and goes too, which is simpler
            worker.kill()
        requests_before = len(server.requests_to("/index.json"))
        written = RegistrySync.objects.get(pk=sync.pk)
        assert 2 <= written.pages < 10
        later = Job.objects.get(pk=sync.job_id).heartbeat_at + timedelta(
            seconds=running.time_limit + reaper_grace() + 1
        )
        assert [job.pk for job in reap_stale_jobs(now=later).requeued] == [sync.job_id]
        server.faults.hang = 0
        sync_workers()
        job = finished(sync)

    done = RegistrySync.objects.get(pk=sync.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    assert done.created == 20 and done.seen == 20  # nothing counted twice
    assert Model.objects.filter(source_registry="slow").count() == 20
    # The second attempt's first request asks for the page after the last one written, not for page 1.
    resumed_at = server.requests_to("/index.json")[requests_before]
    assert resumed_at.query.get("page") not in (None, "1", ["1"]), resumed_at
