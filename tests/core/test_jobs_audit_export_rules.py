"""The audit export job's own rules, run in-process through the task's real ``run`` (no worker needed)."""

from __future__ import annotations

import pytest

from apps.audit.tasks import export_audit_trail
from apps.core.access import Role
from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus

pytestmark = pytest.mark.django_db


def test_an_export_fails_if_its_creator_is_no_longer_an_admin_when_it_runs(world, media_root):
    admin = world.user("admin")
    job = start_job(kind="audit.export", organization=world.org, creator=admin, params={"format": "csv"})
    world.org.memberships.filter(user=admin).update(role=Role.MEMBER)

    assert export_audit_trail.run(job.pk) == JobStatus.FAILED

    failed = Job.objects.get(pk=job.pk)
    assert failed.error == "PermissionDenied: The job's creator is no longer an admin of the organization."
    assert not failed.result_file
    assert not (media_root / "jobs").exists()


def test_an_export_of_an_organization_with_no_matching_events_is_an_empty_file(world, media_root):
    job = start_job(
        kind="audit.export",
        organization=world.org,
        creator=world.user("owner"),
        params={"format": "jsonl", "filters": {"action": "nothing.matches"}},
    )

    assert export_audit_trail.run(job.pk) == JobStatus.SUCCEEDED

    done = Job.objects.get(pk=job.pk)
    assert (done.result["rows"], done.result["bytes"]) == (0, 0)
    assert done.result_file.name == f"jobs/{job.uuid}/{done.result['file']}"
    assert (media_root / done.result_file.name).read_bytes() == b""


def test_an_export_runs_once_even_if_run_is_called_twice(world, media_root):
    job = start_job(kind="audit.export", organization=world.org, creator=world.user("admin"))

    assert export_audit_trail.run(job.pk) == JobStatus.SUCCEEDED
    assert export_audit_trail.run(job.pk) == "skipped"

    assert len(list((media_root / "jobs" / str(job.uuid)).iterdir())) == 1
