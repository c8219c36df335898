"""Durable predictions with tensor inputs on a real worker and serving loop: the web process keeps the inputs in the
online wire format (``execution.pack_tensors``), the loop reads them back and runs them, and the answer is the one the
online path gives for the same tensors. A row written by a web process from before (its inputs an ``.npz``) still
runs. A job nobody waits for (``?async=1``) is not announced on Redis: its answer is in its row, not held for a
minute in a message no one reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection

from apps.core.jobs import Job, JobStatus
from apps.inference import predictions, services
from apps.inference.completion import KEY_PREFIX, NOBODY_WAITS
from apps.inference.execution import arrays_to_npz, unpack_tensors
from apps.inference.models import InferenceJob
from apps.inference.online import gateway
from tests.conftest import api_client_for
from tests.inference.online_support import forget_online_requests, wait_for_serving_loop
from tests.jobs_support import wait_for

IDS = [
    [101, 1045, 2377, 1996, 2858, 2296, 3944, 1012, 102, 0, 0, 0],
    [101, 4542, 2003, 3517, 4826, 1012, 102, 0, 0, 0, 0, 0],
    [101, 1037, 2460, 2028, 1012, 102, 0, 0, 0, 0, 0, 0],
]


def tensors(ids: list[int]) -> dict:
    return {
        "input_ids": [ids],
        "attention_mask": [[1 if token else 0 for token in ids]],
        "token_type_ids": [[0] * len(ids)],
    }


def post(user, url: str, ids: list[int]) -> dict:
    try:
        response = api_client_for(user).post(url, {"inputs": tensors(ids)}, format="json")
        assert response.status_code in (200, 202), response.content
        return response.json()
    finally:
        connection.close()


@pytest.fixture
def deployment(world, runnable):
    version = runnable.minilm()
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="embed", version=version,
        max_batch_size=16, max_delay_ms=50,
    )  # fmt: skip


def finished(uuids: list[str]) -> None:
    wait_for(
        lambda: (
            Job.objects.filter(uuid__in=uuids, status__in=(JobStatus.SUCCEEDED, JobStatus.FAILED)).count() == len(uuids)
        ),
        timeout=60,
        what="the durable jobs to finish",
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_tensor_inputs_are_kept_in_the_wire_format_and_answer_as_online(inference_worker, world, deployment):
    forget_online_requests()
    wait_for_serving_loop()
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    member = world.user("member")
    online = [post(member, url, ids) for ids in IDS]
    with ThreadPoolExecutor(max_workers=len(IDS)) as pool:
        accepted = list(pool.map(lambda ids: post(member, url + "?async=1", ids), IDS))
    uuids = [answer["job"] for answer in accepted]
    finished(uuids)

    client = api_client_for(member)
    for ids, uuid, alone in zip(IDS, uuids, online, strict=True):
        row = InferenceJob.objects.get(job__uuid=uuid)
        assert bytes(row.inputs).startswith(b'{"tensors":'), bytes(row.inputs)[:40]
        kept = unpack_tensors(row.inputs)
        assert kept["input_ids"].dtype == np.int64 and kept["input_ids"].tolist() == [ids]
        answer = client.get(f"/api/v1/predictions/{uuid}/").json()
        assert answer["status"] == "succeeded", answer
        got, single = answer["answer"]["embeddings"][0], alone["answer"]["embeddings"][0]
        assert np.allclose(np.asarray(got), np.asarray(single), atol=1e-4)
        # Its tensor outputs too, read back from the row the loop wrote them to.
        assert np.asarray(answer["outputs"]["last_hidden_state"]).shape == (1, len(ids), 384)
        assert Job.objects.get(uuid=uuid).params[NOBODY_WAITS] is True
        assert not gateway._client().exists(f"{KEY_PREFIX}{uuid}"), "an async job's outcome was left in Redis"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_row_whose_inputs_an_older_web_process_wrote_as_npz_still_runs(
    inference_worker, world, deployment, monkeypatch
):
    forget_online_requests()
    wait_for_serving_loop()
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    member = world.user("member")
    online = post(member, url, IDS[0])
    monkeypatch.setattr(predictions, "pack_tensors", arrays_to_npz)  # the web process of before

    uuid = post(member, url + "?async=1", IDS[0])["job"]
    finished([uuid])

    assert bytes(InferenceJob.objects.get(job__uuid=uuid).inputs).startswith(b"PK")
    answer = api_client_for(member).get(f"/api/v1/predictions/{uuid}/").json()
    assert answer["status"] == "succeeded", answer
    got, single = answer["answer"]["embeddings"][0], online["answer"]["embeddings"][0]
    assert np.allclose(np.asarray(got), np.asarray(single), atol=1e-4)
