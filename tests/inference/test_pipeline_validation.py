"""Saving a pipeline validates it against its versions' signatures, and every refusal names its field path and the
reason: step names, versions (seen, runnable, validated), references (pipeline inputs, earlier steps only, outputs
that exist), required inputs, element types, fixed dimensions, pipeline inputs feeding inputs that disagree."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.core.access import Visibility
from apps.inference.models import Pipeline
from apps.inference.pipelines import save_pipeline
from apps.marketplace import services as catalog
from tests.factories import OrganizationFactory, UserFactory
from tests.inference.pipeline_models import iris_bytes, make_version, model_bytes, ref

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(world):
    return make_version(world, "iris", iris_bytes())


@pytest.fixture
def argmax(world):
    return make_version(world, "argmax", model_bytes("argmax"))


def errors_of(excinfo) -> dict[str, list[str]]:
    return {field: [str(m) for m in messages] for field, messages in excinfo.value.message_dict.items()}


def save(world, steps, outputs=None, *, actor=None, slug="flow"):
    return save_pipeline(
        organization=world.org, slug=slug, steps=steps, outputs=outputs, actor=actor or world.user("member")
    )


def chain(iris, second, mapping):
    return [
        {"name": "iris", "version": ref(iris), "inputs": {"float_input": "input.features"}},
        {"name": "second", "version": ref(second), "inputs": mapping},
    ]


def test_a_valid_chain_is_stored_with_version_uuids_default_outputs_and_an_audit_event(world, iris, argmax):
    pipeline = save(world, chain(iris, argmax, {"probabilities": "iris.probabilities"}))
    pipeline.refresh_from_db()
    assert [step["version"] for step in pipeline.steps] == [str(iris.uuid), str(argmax.uuid)]
    assert pipeline.steps[1]["inputs"] == {"probabilities": "iris.probabilities"}
    assert pipeline.outputs == {"index": "second.index"}
    event = AuditEvent.objects.get(action="pipeline.created")
    assert event.metadata["steps"][0]["reference"] == "acme/iris@1.0.0"


def test_an_output_of_another_element_type_names_the_path_and_both_types(world, iris):
    ids = make_version(world, "ids", model_bytes("ids"))
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, ids, {"ids": "iris.probabilities"}))
    assert errors_of(excinfo) == {
        "steps[1].inputs.ids": ['"iris.probabilities" is float32, the input wants int64'],
    }
    assert not Pipeline.objects.exists()


def test_fixed_dimensions_that_disagree_name_both_shapes_and_the_dimension(world, iris):
    wide = make_version(world, "wide", model_bytes("wide"))
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, wide, {"x": "iris.probabilities"}))
    (message,) = errors_of(excinfo)["steps[1].inputs.x"]
    assert message == '"iris.probabilities" has shape [?, 3], the input wants [N, 5] (dimension 1: 3 against 5)'


def test_a_rank_that_disagrees_names_both_ranks(world, iris, argmax):
    ids = make_version(world, "ids", model_bytes("ids"))
    steps = [
        *chain(iris, argmax, {"probabilities": "iris.probabilities"}),
        {"name": "ids", "version": ref(ids), "inputs": {"ids": "second.index"}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    assert errors_of(excinfo) == {
        "steps[2].inputs.ids": ['"second.index" has shape [N], the input wants [N, 3] (rank 1 against rank 2)']
    }


def test_a_reference_to_a_later_step_is_refused_so_that_no_cycle_can_be_written(world, iris, argmax):
    steps = [
        {"name": "first", "version": ref(argmax), "inputs": {"probabilities": "iris.probabilities"}},
        {"name": "iris", "version": ref(iris), "inputs": {"float_input": "input.features"}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    (message,) = errors_of(excinfo)["steps[0].inputs.probabilities"]
    assert "“iris” runs after step 0" in message
    assert "no cycles" in message


def test_a_step_reading_itself_is_refused(world, argmax):
    steps = [{"name": "loop", "version": ref(argmax), "inputs": {"probabilities": "loop.index"}}]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    assert "no earlier step “loop”" in errors_of(excinfo)["steps[0].inputs.probabilities"][0]


def test_an_unknown_step_and_an_unknown_output_are_named_with_what_exists(world, iris, argmax):
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "iris.scores"}))
    assert errors_of(excinfo)["steps[1].inputs.probabilities"] == [
        "Step “iris” (acme/iris@1.0.0) has no output “scores”; its outputs are label, probabilities."
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "embed.probabilities"}))
    message = errors_of(excinfo)["steps[1].inputs.probabilities"][0]
    assert "There is no earlier step “embed”" in message and "input, iris" in message


def test_a_required_model_input_left_unmapped_is_named(world, iris):
    pair = make_version(world, "pair", model_bytes("pair"))
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, pair, {"x": "iris.probabilities"}))
    errors = errors_of(excinfo)
    assert list(errors) == ["steps[1].inputs.y"]
    assert errors["steps[1].inputs.y"][0].startswith("Required: acme/pair@1.0.0 needs this input")


def test_a_model_input_the_version_does_not_have_is_named_with_its_inputs(world, iris, argmax):
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "iris.probabilities", "scores": "iris.probabilities"}))
    assert errors_of(excinfo) == {
        "steps[1].inputs.scores": ["acme/argmax@1.0.0 has no input “scores”; its inputs are probabilities."]
    }


def test_a_malformed_reference_is_refused(world, iris, argmax):
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "probabilities"}))
    assert (
        "Expected “input.<name>” or “<earlier step>.<output>”" in errors_of(excinfo)["steps[1].inputs.probabilities"][0]
    )


def test_step_names_must_be_valid_unique_and_not_input(world, iris):
    steps = [
        {"name": "a", "version": ref(iris), "inputs": {"float_input": "input.features"}},
        {"name": "a", "version": ref(iris), "inputs": {"float_input": "input.features"}},
        {"name": "input", "version": ref(iris), "inputs": {"float_input": "input.features"}},
        {"name": "has.dot", "version": ref(iris), "inputs": {"float_input": "input.features"}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    errors = errors_of(excinfo)
    assert errors["steps[1].name"] == ["Step 0 is already called “a”; names are unique."]
    assert "“input” names the pipeline's inputs" in errors["steps[2].name"][0]
    assert errors["steps[3].name"][0].startswith("Required: a step name of 1 to 64 letters")


def test_a_pipeline_input_feeding_inputs_of_two_types_names_both(world, iris):
    ids = make_version(world, "ids", model_bytes("ids"))
    steps = [
        {"name": "iris", "version": ref(iris), "inputs": {"float_input": "input.x"}},
        {"name": "ids", "version": ref(ids), "inputs": {"ids": "input.x"}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    assert errors_of(excinfo) == {
        "steps[1].inputs.ids": [
            '"input.x" also feeds steps[0].inputs.float_input, which wants float32; this input wants int64'
        ]
    }


def test_versions_the_caller_may_not_see_or_not_run_are_refused_without_telling_more(world, iris):
    elsewhere = OrganizationFactory(slug="globex")
    secret = make_version(world, "secret", model_bytes("argmax"), organization=elsewhere, actor=UserFactory())
    steps = [
        {"name": "iris", "version": ref(iris), "inputs": {"float_input": "input.features"}},
        {"name": "secret", "version": ref(secret), "inputs": {"probabilities": "iris.probabilities"}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    assert errors_of(excinfo)["steps[1].version"] == [
        "There is no version “globex/secret@1.0.0” that you may see; write it “owner/name@label” (or a version's uuid)."
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, iris, {"float_input": "input.features"}), actor=world.user("viewer"))
    errors = errors_of(excinfo)
    assert errors["steps[0].version"] == ["You may view acme/iris@1.0.0 but not run it."]


def test_a_public_model_of_another_organization_may_be_used_by_anyone_signed_in(world, iris):
    elsewhere = OrganizationFactory(slug="globex")
    shared = make_version(
        world,
        "argmax",
        model_bytes("argmax"),
        organization=elsewhere,
        actor=UserFactory(),
        visibility=Visibility.PUBLIC,
    )
    pipeline = save(world, chain(iris, shared, {"probabilities": "iris.probabilities"}))
    assert pipeline.steps[1]["version"] == str(shared.uuid)


def test_unvalidated_and_yanked_versions_are_refused_with_the_reason(world, iris, argmax):
    draft = make_version(world, "draft", model_bytes("argmax"), validated=False)
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, draft, {"probabilities": "iris.probabilities"}))
    assert "has not passed validation" in errors_of(excinfo)["steps[1].version"][0]
    catalog.yank_version(version=argmax, actor=world.user("admin"), reason="Wrong axis.")
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "iris.probabilities"}))
    assert errors_of(excinfo)["steps[1].version"] == [
        "acme/argmax@1.0.0 was yanked (Wrong axis.); choose another version."
    ]


def test_an_alias_or_a_uuid_may_name_the_version(world, iris, argmax):
    catalog.set_alias(model=argmax.model, actor=world.user("member"), name="production", version=argmax)
    steps = chain(iris, argmax, {"probabilities": "iris.probabilities"})
    steps[0]["version"] = str(iris.uuid)
    steps[1]["version"] = "acme/argmax@production"
    pipeline = save(world, steps)
    assert [step["version"] for step in pipeline.steps] == [str(iris.uuid), str(argmax.uuid)]


def test_outputs_must_name_existing_steps_and_outputs(world, iris, argmax):
    steps = chain(iris, argmax, {"probabilities": "iris.probabilities"})
    outputs = {"index": "second.index", "bad": "second.nothing", "ghost": "nowhere.y", "raw": "input.features"}
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps, outputs)
    errors = errors_of(excinfo)
    assert set(errors) == {"outputs.bad", "outputs.ghost", "outputs.raw"}
    assert "has no output “nothing”; its outputs are index" in errors["outputs.bad"][0]
    assert errors["outputs.ghost"] == ["There is no step “nowhere”; the steps are iris, second."]


def test_every_problem_of_a_pipeline_is_reported_at_once(world, iris):
    ids = make_version(world, "ids", model_bytes("ids"))
    steps = [
        {"name": "iris", "version": ref(iris), "inputs": {}},
        {"name": "ids", "version": ref(ids), "inputs": {"ids": "iris.probabilities"}, "extra": 1},
        {"name": "gone", "version": "acme/nothing@1.0.0", "inputs": {}},
    ]
    with pytest.raises(ValidationError) as excinfo:
        save(world, steps)
    assert set(errors_of(excinfo)) == {
        "steps[0].inputs.float_input",
        "steps[1].extra",
        "steps[1].inputs.ids",
        "steps[2].version",
    }


def test_a_slug_taken_and_an_empty_list_of_steps_are_refused(world, iris, argmax):
    save(world, chain(iris, argmax, {"probabilities": "iris.probabilities"}))
    with pytest.raises(ValidationError) as excinfo:
        save(world, chain(iris, argmax, {"probabilities": "iris.probabilities"}))
    assert errors_of(excinfo) == {"slug": ["acme already has a pipeline “flow”."]}
    with pytest.raises(ValidationError) as excinfo:
        save(world, [], slug="empty")
    assert list(errors_of(excinfo)) == ["steps"]
