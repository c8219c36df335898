"""core's one error collector: every problem of a request, by field, each message with its own code."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.core.errors import Problems


class CodecRefusal(ValueError):
    def __init__(self, errors, code, codes):
        super().__init__(code)
        self.errors, self.code, self.codes = errors, code, codes


def test_nothing_added_raises_nothing():
    Problems().raise_if_any()
    Problems().raise_if_any(CodecRefusal)


def test_each_message_keeps_its_own_code_in_djangos_error():
    problems = Problems()
    problems.add("steps[0].name", "Required.", "required")
    problems.add("steps[1].inputs.x", "is int64, the input wants float32", "wrong_type")
    problems.add("steps[1].inputs.x", "has shape [3], the input wants [4]", "wrong_shape")
    with pytest.raises(ValidationError) as caught:
        problems.raise_if_any()
    assert caught.value.message_dict == {
        "steps[0].name": ["Required."],
        "steps[1].inputs.x": ["is int64, the input wants float32", "has shape [3], the input wants [4]"],
    }
    codes = {field: [error.code for error in errors] for field, errors in caught.value.error_dict.items()}
    assert codes == {"steps[0].name": ["required"], "steps[1].inputs.x": ["wrong_type", "wrong_shape"]}


def test_an_exception_of_the_callers_takes_the_errors_the_first_code_and_every_code():
    problems = Problems()
    problems.add("inputs.x", "not base64", "undecodable")
    problems.add("inputs.y", "ragged", "ragged")
    with pytest.raises(CodecRefusal) as caught:
        problems.raise_if_any(CodecRefusal)
    assert caught.value.errors == {"inputs.x": ["not base64"], "inputs.y": ["ragged"]}
    assert caught.value.code == "undecodable"
    assert caught.value.codes == {"inputs.x": ["undecodable"], "inputs.y": ["ragged"]}


def test_a_django_error_from_another_check_is_added_with_its_fields_and_codes():
    problems = Problems()
    problems.add_error(ValidationError({"slug": [ValidationError("“api” is reserved.", code="reserved")]}))
    problems.add_error(ValidationError("Not allowed here.", code="forbidden"))
    problems.add("name", "This field may not be blank.", "blank")
    assert problems.errors == {
        "slug": ["“api” is reserved."],
        "__all__": ["Not allowed here."],
        "name": ["This field may not be blank."],
    }
    assert problems.codes == {"slug": ["reserved"], "__all__": ["forbidden"], "name": ["blank"]}
    assert problems.first_code == "reserved"
