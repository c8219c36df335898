"""Job results and prediction answers are written by ``apps.core.jsondata`` (orjson, with Django's JSON encoder for
what orjson does not take): the same JSON the standard library wrote, and a float that JSON cannot spell (a model can
answer NaN) written as null instead of failing the whole batch's write."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid

import numpy as np
import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from apps.core import jsondata
from apps.core.job_services import claim_jobs, finish_job, finish_jobs, start_job
from apps.core.jobs import Job, JobStatus


def test_the_json_is_what_the_standard_library_and_djangos_encoder_wrote():
    value = {
        "when": timezone.now(),
        "day": datetime.date(2026, 12, 7),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "price": decimal.Decimal("1.50"),
        "spent": datetime.timedelta(seconds=3),
        "pair": (1, 2),
        "nested": {"é": ["日本語", None, True, 1.5e-7, 2**62]},
        7: "an integer key",
    }

    assert json.loads(jsondata.dumps(value)) == json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def test_numbers_orjson_refuses_and_numpy_values_are_written_too():
    assert json.loads(jsondata.dumps({"big": 2**70})) == {"big": 2**70}
    assert json.loads(jsondata.dumps({"x": np.float32(0.5), "v": np.arange(3)})) == {"x": 0.5, "v": [0, 1, 2]}


def test_a_float_json_cannot_spell_is_written_as_null():
    assert json.loads(jsondata.dumps({"scores": [1.0, math.nan, math.inf, -math.inf]})) == {
        "scores": [1.0, None, None, None]
    }


def test_what_is_not_json_raises_type_error_as_the_standard_library_does():
    for value in ({"s": {1, 2}}, object(), {"f": lambda: 1}):
        with pytest.raises(TypeError, match="not JSON serializable"):
            jsondata.dumps(value)


@pytest.mark.django_db
def test_a_batch_whose_answer_holds_nan_is_recorded_with_null(world):
    jobs = [
        start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 1})
        for _ in range(2)
    ]
    claimed = claim_jobs([job.pk for job in jobs])

    recorded = finish_jobs([(job, {"answer": [math.nan, 0.25]}) for job in claimed])

    assert recorded == {job.pk for job in jobs}
    for job in Job.objects.filter(pk__in=recorded):
        assert job.status == JobStatus.SUCCEEDED and job.result == {"answer": [None, 0.25]}


@pytest.mark.django_db
def test_one_job_whose_result_is_not_json_fails_saying_so(world):
    job = start_job(kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 1})
    (claimed,) = claim_jobs([job.pk])

    assert finish_job(claimed, {"s": {1, 2}}) == JobStatus.FAILED
    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.FAILED and "not JSON" in stored.error
