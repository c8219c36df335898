"""Completing a large upload session verifies its bytes in a job (``marketplace.complete_upload``), not in the request.

``MARKETPLACE_SYNC_COMPLETE_MAX_BYTES`` is set to 1 MiB here and the files are a few MiB. The first test goes
through a real Celery worker (the in-thread worker of tests/core/conftest.py: Redis as the broker, committed
data, ``transaction=True``); the others run the job's task synchronously (``complete_upload.run(job.pk)``, the
same code a worker runs) where what matters is the outcome, not the broker.
"""

from __future__ import annotations

import pytest

from apps.core.access import Role
from apps.core.jobs import Job, JobStatus
from apps.marketplace.models import Blob, UploadSession, UploadStatus, VersionFile
from apps.marketplace.upload_jobs import complete_upload
from apps.organizations.models import Membership
from tests.core.conftest import _thread_worker, job_worker, media_root  # noqa: F401 - fixtures
from tests.e2e.conftest import _async_unsafe_allowed, browser, page  # noqa: F401 - fixtures
from tests.jobs_support import job_in, wait_for
from tests.marketplace.conftest import random_bytes, sha256_of, stored_files, version_url

SIZE = 3 * 1024 * 1024 + 17
CHUNK = 1024 * 1024


@pytest.fixture(autouse=True)
def small_sync_limit(settings):
    settings.MARKETPLACE_SYNC_COMPLETE_MAX_BYTES = 1024 * 1024


def _upload(client, model, label: str, path: str, data: bytes, sha256: str | None = None) -> dict:
    """Open a session and send every byte; the session as the API last showed it."""
    response = client.post(
        version_url(model, label, "uploads/"),
        {"path": path, "size": len(data), "sha256": sha256 or sha256_of(data)},
        format="json",
    )
    assert response.status_code == 201, response.content
    session = response.json()
    for offset in range(0, len(data), CHUNK):
        response = client.generic(
            "PATCH",
            session["upload_url"],
            data=data[offset : offset + CHUNK],
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET=str(offset),
        )
        assert response.status_code == 200, response.content
    return response.json()


def _complete(client, session: dict):
    return client.post(session["complete_url"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("job_worker")
def test_a_large_upload_answers_202_and_a_worker_adds_the_file_with_its_sha256(catalog):
    """Real worker: 202 with the job, the session ``verifying``, then ``completed`` with the file in the version."""
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", data)

    response = _complete(client, session)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] in ("verifying", "completed")  # the worker may already be done
    assert body["job"]["url"].endswith(f"/api/v1/jobs/{body['job']['uuid']}/")
    assert response.headers["Location"] == body["job"]["url"]
    job = Job.objects.get(uuid=body["job"]["uuid"])
    assert job.kind == "marketplace.complete_upload"
    assert job.queue == "default"
    job = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the completion job")
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 1.0
    assert job.result["sha256"] == sha256_of(data)

    polled = client.get(body["job"]["url"]).json()
    assert polled["status"] == "succeeded"
    shown = client.get(session["upload_url"]).json()
    assert shown["status"] == "completed"
    assert shown["file"]["sha256"] == sha256_of(data)
    assert shown["job"]["uuid"] == body["job"]["uuid"]
    assert shown["error"] == ""
    stored = VersionFile.objects.get(version__model=model, path="weights.bin")
    assert (stored.blob.sha256, stored.blob.size) == (sha256_of(data), SIZE)
    assert stored_files(catalog_spool()) == []


def catalog_spool():
    from django.conf import settings

    return settings.MARKETPLACE_UPLOAD_DIR / "sessions"


@pytest.mark.django_db
def test_a_checksum_mismatch_fails_the_session_and_stores_nothing(catalog):
    """Task run synchronously: the job fails, the session says why, no blob, no file, no spool file left."""
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", data, sha256="ab" * 32)

    response = _complete(client, session)
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"]["uuid"])

    assert complete_upload.run(job.pk) == JobStatus.FAILED

    job.refresh_from_db()
    assert "not the " + "ab" * 32 + " declared: nothing was stored" in job.error
    shown = client.get(session["upload_url"]).json()
    assert shown["status"] == "failed"
    assert shown["error"].startswith(f"The bytes received have SHA-256 {sha256_of(data)}")
    assert Blob.objects.count() == 0
    assert VersionFile.objects.count() == 0
    assert stored_files(catalog_spool()) == []
    assert UploadSession.objects.get(uuid=session["uuid"]).status == UploadStatus.FAILED


@pytest.mark.django_db
def test_completing_twice_starts_one_job(catalog):
    """No worker: the first job stays queued, so the second ``complete`` finds it running and answers it."""
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", random_bytes(SIZE))

    first = _complete(client, session)
    second = _complete(client, session)

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["job"]["uuid"] == second.json()["job"]["uuid"]
    assert Job.objects.filter(kind="marketplace.complete_upload").count() == 1
    assert client.get(session["upload_url"]).json()["status"] == "verifying"


@pytest.mark.django_db
def test_a_session_being_verified_cannot_be_aborted(catalog):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", random_bytes(SIZE))
    assert _complete(client, session).status_code == 202

    response = client.delete(session["upload_url"])

    assert response.status_code == 409
    assert response.json()["code"] == "upload_verifying"


@pytest.mark.django_db
def test_a_job_run_twice_records_one_file(catalog):
    """Task run synchronously, then again as a redelivered message or a re-run after a lost worker would."""
    model = catalog.model("big")
    version = catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", data)
    job = Job.objects.get(uuid=_complete(client, session).json()["job"]["uuid"])
    assert complete_upload.run(job.pk) == JobStatus.SUCCEEDED

    # A second delivery of the same message finds the job finished and does nothing.
    assert complete_upload.run(job.pk) == "skipped"
    # An attempt that stored the file but died before marking the session: the re-run keeps that one file.
    UploadSession.objects.filter(uuid=session["uuid"]).update(status=UploadStatus.OPEN, file=None)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert complete_upload.run(job.pk) == JobStatus.SUCCEEDED

    assert VersionFile.objects.filter(version=version).count() == 1
    assert Blob.objects.count() == 1
    assert client.get(session["upload_url"]).json()["status"] == "completed"


@pytest.mark.django_db
def test_a_job_whose_received_bytes_are_gone_fails_the_session_with_a_clear_message(catalog):
    """Task run synchronously after the spool file vanished (a wiped disk): no traceback-only error, no file."""
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", random_bytes(SIZE))
    job = Job.objects.get(uuid=_complete(client, session).json()["job"]["uuid"])
    UploadSession.objects.get(uuid=session["uuid"]).spool_path.unlink()

    assert complete_upload.run(job.pk) == JobStatus.FAILED

    shown = client.get(session["upload_url"]).json()
    assert (shown["status"], shown["error"]) == (
        "failed",
        "The bytes received are no longer on the server; start a new upload.",
    )
    assert VersionFile.objects.count() == 0


@pytest.mark.django_db
def test_the_job_rechecks_that_the_uploader_may_still_change_the_model(catalog):
    """Task run synchronously after the uploader was demoted to viewer: the session fails, nothing is stored."""
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", random_bytes(SIZE))
    job = Job.objects.get(uuid=_complete(client, session).json()["job"]["uuid"])
    member = catalog.world.user("member")
    Membership.objects.filter(organization=catalog.world.org, user=member).update(role=Role.VIEWER)

    assert complete_upload.run(job.pk) == JobStatus.FAILED

    job.refresh_from_db()
    assert "may no longer change acme/big" in job.error
    assert VersionFile.objects.count() == 0
    assert Blob.objects.count() == 0
    assert stored_files(catalog_spool()) == []
    shown = catalog.client("owner").get(session["upload_url"]).json()
    assert shown["status"] == "failed"
    assert "may no longer change" in shown["error"]


@pytest.mark.django_db
def test_the_completion_job_is_seen_by_its_creator_and_the_org_admins_only(catalog):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    session = _upload(catalog.client("member"), model, "1.0", "weights.bin", random_bytes(SIZE))
    url = _complete(catalog.client("member"), session).json()["job"]["url"]

    assert catalog.client("member").get(url).status_code == 200
    assert catalog.client("admin").get(url).status_code == 200
    assert catalog.client("viewer").get(url).status_code == 404
    assert catalog.client("outsider").get(url).status_code == 404


@pytest.mark.django_db
def test_a_session_at_the_limit_still_completes_in_the_request(catalog, settings):
    settings.MARKETPLACE_SYNC_COMPLETE_MAX_BYTES = SIZE
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", data)

    response = _complete(client, session)

    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == sha256_of(data)
    assert Job.objects.filter(kind="marketplace.complete_upload").count() == 0
    shown = client.get(session["upload_url"]).json()
    assert (shown["status"], shown["job"], shown["error"]) == ("completed", None, "")


@pytest.mark.e2e
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("job_worker")
def test_the_upload_page_follows_the_job_on_its_progress_bar_until_the_file_is_listed(
    catalog,
    live_server,
    page,  # noqa: F811 - the e2e fixture
    settings,
    tmp_path,
):
    """Headless Chromium (tests/e2e) and the real in-thread worker: upload.js gets a 202 from ``complete``, polls
    the job (``GET /api/v1/jobs/{uuid}/``) and marks the file done once the worker added it."""
    from django.test import Client

    settings.MARKETPLACE_PAGE_UPLOAD_SMALL_FILE_LIMIT = 1024 * 1024
    settings.MARKETPLACE_PAGE_UPLOAD_CHUNK_SIZE = CHUNK
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    client = Client()
    client.force_login(catalog.world.user("member"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page.goto(f"{live_server.url}/models/acme/big/versions/1.0/upload/")
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)) if "/api/v1/" in r.url else None)
    completes = []
    page.on("response", lambda r: completes.append(r.status) if r.url.endswith("/complete/") else None)

    page.set_input_files("#upload-input", str(source))
    page.locator('.upload-item[data-path="weights.bin"]:is([data-state="done"], [data-state="failed"])').wait_for(
        timeout=60_000
    )

    item = page.locator('.upload-item[data-path="weights.bin"]')
    assert item.get_attribute("data-state") == "done", item.inner_text()
    assert completes == [202]
    job = Job.objects.get(kind="marketplace.complete_upload")
    assert ("GET", f"{live_server.url}/api/v1/jobs/{job.uuid}/") in requests
    page.locator('#file-table tr[data-path="weights.bin"]').wait_for()
    assert VersionFile.objects.get(version__model=model, path="weights.bin").blob.sha256 == sha256_of(data)


@pytest.mark.django_db
def test_a_chunk_sent_while_the_session_is_verified_is_refused(catalog):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", random_bytes(SIZE))
    assert _complete(client, session).status_code == 202

    response = client.generic(
        "PATCH",
        session["upload_url"],
        data=b"x",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(SIZE),
    )

    assert response.status_code == 409
    assert response.json()["code"] == "upload_verifying"


@pytest.mark.django_db
def test_a_session_whose_job_was_cancelled_reopens_and_completes_on_a_second_try(catalog):
    """The job ends without settling the session (cancelled, as after a lost worker): the session's next read
    shows it open again with the reason, and ``complete`` starts a new job that adds the file once."""
    from apps.core.job_services import cancel_job

    model = catalog.model("big")
    version = catalog.version(model, "1.0")
    data = random_bytes(SIZE)
    client = catalog.client("member")
    session = _upload(client, model, "1.0", "weights.bin", data)
    first = Job.objects.get(uuid=_complete(client, session).json()["job"]["uuid"])
    cancel_job(job=first, actor=catalog.world.user("admin"))

    shown = client.get(session["upload_url"]).json()
    assert shown["status"] == "open"
    assert shown["error"]

    second = _complete(client, session)
    assert second.status_code == 202
    job = Job.objects.get(uuid=second.json()["job"]["uuid"])
    assert job.pk != first.pk
    assert complete_upload.run(job.pk) == JobStatus.SUCCEEDED
    assert list(VersionFile.objects.filter(version=version).values_list("path", "blob__sha256")) == [
        ("weights.bin", sha256_of(data))
    ]
    assert client.get(session["upload_url"]).json()["status"] == "completed"


@pytest.mark.django_db
def test_listing_open_sessions_costs_the_same_queries_whatever_their_number(catalog, django_assert_max_num_queries):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    for index in range(4):
        session = _upload(client, model, "1.0", f"part{index}.bin", random_bytes(SIZE))
        if index % 2:
            assert _complete(client, session).status_code == 202
    url = version_url(model, "1.0", "uploads/")
    client.get(url)  # warm: token and permission caches
    with django_assert_max_num_queries(8):
        response = client.get(url)
    assert response.status_code == 200
    assert {item["status"] for item in response.json()} == {"open", "verifying"}
