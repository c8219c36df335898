"""The "try it" card on a model's and a version's page: a form generated from the version's signature and gpux.yml
(text: a textarea; an image: a file input; tensors: one JSON textarea per input with its name, type and shape),
and for those who may not run the model, why not. Nothing here runs a model: inputs refused before any job is
written need no worker."""

from __future__ import annotations

import html as html_module
import re

import pytest
from django.test import Client
from onnx import TensorProto, helper

from apps.core.access import Visibility
from apps.core.jobs import Job
from apps.inference.predictions import PREDICT_KIND
from apps.marketplace import services as catalog
from apps.marketplace.models import ModelVersion
from tests.inference import onnx_models
from tests.marketplace.onnx_fixtures import make_model

pytestmark = pytest.mark.django_db


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def card_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    page = response.content.decode()
    start = page.index('id="try-it"')
    return page[start : page.index("</section>", start)]


def two_input_model() -> bytes:
    """``ids`` int64 [batch, 3] and ``weights`` float32 [batch, 3] -> ``scaled`` = Cast(ids) * weights."""
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["ids_float", "weights"], ["scaled"]),
    ]
    model = make_model(
        nodes,
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3]),
            helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", 3]),
        ],
        [helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["batch", 3])],
    )
    return model.SerializeToString()


def test_a_tensor_model_gets_one_json_field_per_input_with_its_type_and_shape(runnable, world):
    runnable.version("scaler", {"model.onnx": two_input_model()}, None)
    card = card_of(client_for(world.user("member")).get("/models/acme/scaler/"))
    fields = re.findall(r'<textarea name="(tensor_\d)"[^>]*placeholder="([^"]+)"', card)
    assert fields == [("tensor_0", "[[0, 0, 0]]"), ("tensor_1", "[[0.0, 0.0, 0.0]]")]
    labels = [label.strip() for label in re.findall(r'<label class="form-label" for="[^"]+">([^<]+)<', card)]
    assert labels[:2] == ["ids", "weights"]
    # The shape reads as the model page and the refusal of a wrong shape write it: symbolic dimensions by name.
    assert "int64 [batch, 3]: a JSON nested list." in card and "float32 [batch, 3]: a JSON nested list." in card
    assert 'data-kind="tensors"' in card


def test_a_text_model_gets_a_textarea_that_says_its_tokenizer_and_limit(runnable, world):
    runnable.minilm()
    card = card_of(client_for(world.user("member")).get("/models/acme/minilm/versions/1.0.0/"))
    assert re.search(r'<textarea name="text"', card)
    assert "tokenizer.json" in card and "128 tokens" in card
    assert "reads text, answers embeddings" in card


def test_an_image_model_gets_a_file_input_and_a_multipart_form(runnable, world, tmp_path):
    runnable.version(
        "average-colour", {"model.onnx": onnx_models.image_model_path(tmp_path)}, onnx_models.IMAGE_MANIFEST
    )
    card = card_of(client_for(world.user("member")).get("/models/acme/average-colour/"))
    assert re.search(r'<input type="file" name="image"[^>]*accept="image/png,image/jpeg', card)
    assert 'enctype="multipart/form-data"' in card and 'hx-encoding="multipart/form-data"' in card
    assert "resized to 8 × 8" in card


def test_a_viewer_of_a_private_model_is_told_why_there_is_no_form(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    card = card_of(client_for(world.user("viewer")).get("/models/acme/iris/"))
    assert "<form" not in card
    assert "You may view acme/iris but not run it" in card
    assert "member role in acme" in card


def test_an_anonymous_visitor_of_a_public_model_is_asked_to_sign_in(runnable, world, tmp_path):
    runnable.iris(tmp_path, visibility=Visibility.PUBLIC)
    card = card_of(client_for().get("/models/acme/iris/"))
    assert "<form" not in card
    assert "Sign in to run this model" in card
    assert 'href="/accounts/login/?next=%2Fmodels%2Facme%2Firis%2F"' in card


def test_a_signed_in_outsider_may_try_a_public_model_but_not_deploy_it(runnable, world, tmp_path):
    runnable.iris(tmp_path, visibility=Visibility.PUBLIC)
    card = card_of(client_for(world.user("outsider")).get("/models/acme/iris/"))
    assert 'id="try-it-form"' in card
    assert 'id="deploy-link"' not in card


def test_members_get_a_deploy_link_filled_in_with_the_version(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    member_card = card_of(client_for(world.user("member")).get("/models/acme/iris/versions/1.0.0/"))
    link = re.search(r'id="deploy-link" href="([^"]+)"', member_card).group(1)
    assert html_module.unescape(link) == "/orgs/acme/deployments/new/?model=iris&version=1.0.0"
    form = client_for(world.user("member")).get(html_module.unescape(link)).content.decode()
    assert re.search(r'name="version" value="1.0.0"', form)
    assert re.search(r'<option value="iris" selected>', form)
    viewer_card = card_of(client_for(world.user("viewer")).get("/models/acme/iris/versions/1.0.0/"))
    assert "deploy-link" not in viewer_card


def test_a_version_that_has_not_passed_validation_says_so_instead_of_a_form(world):
    member = world.user("member")
    model = catalog.create_model(organization=world.org, actor=member, name="draft-model")
    catalog.create_version(model=model, actor=member, label="0.1.0")
    card = card_of(client_for(member).get("/models/acme/draft-model/versions/0.1.0/"))
    assert "<form" not in card
    assert "has not passed validation" in card


def test_a_yanked_version_is_not_run_from_its_page(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    catalog.yank_version(version=version, actor=world.user("admin"), reason="Wrong labels.")
    admin = client_for(world.user("admin"))
    card = card_of(admin.get("/models/acme/iris/versions/1.0.0/"))
    assert "was yanked: Wrong labels." in card and "<form" not in card
    response = admin.post("/models/acme/iris/versions/1.0.0/try/", {"tensor_0": "[[1, 2, 3, 4]]"})
    assert response.status_code == 410
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()


def test_text_that_is_not_json_is_refused_on_its_field_and_writes_no_job(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(
        "/models/acme/iris/versions/1.0.0/try/",
        {"tensor_0": "[[5.1, 3.5, 1.4,", "timeout": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    feedback = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', response.content.decode())
    assert len(feedback) == 1 and feedback[0].startswith("float_input: not JSON (")
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()


def test_an_unknown_dtype_value_is_refused_naming_the_input_and_the_reason(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(
        "/models/acme/iris/versions/1.0.0/try/", {"tensor_0": '[["a", "b", "c", "d"]]'}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    feedback = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', response.content.decode())
    assert feedback and "float32" in html_module.unescape(feedback[0]), feedback
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()


def test_a_wait_past_the_operators_limit_is_refused_on_the_wait_field(runnable, world, tmp_path, settings):
    settings.INFERENCE_SYNC_TIMEOUT_MAX_SECONDS = 20
    runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(
        "/models/acme/iris/versions/1.0.0/try/", {"tensor_0": "[[5.1, 3.5, 1.4, 0.2]]", "timeout": "600"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "<html" in page, "without htmx the card comes in a page of its own"
    assert "The longest a page may wait is 20 seconds." in page
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()


def test_the_model_page_tries_its_latest_published_version(runnable, world, tmp_path):
    first = runnable.iris(tmp_path)
    runnable.iris(tmp_path, model=first.model, label="2.0.0")
    ModelVersion.objects.filter(pk=first.pk).update(published_at=first.published_at)  # 2.0.0 is the newer
    card = card_of(client_for(world.user("member")).get("/models/acme/iris/"))
    assert "acme/iris @ 2.0.0" in card
    assert 'action="/models/acme/iris/versions/2.0.0/try/"' in card


def test_every_field_starts_with_a_working_example_when_the_gpux_yml_gives_none(runnable, world, tmp_path):
    runnable.version("scaler", {"model.onnx": two_input_model()}, None)
    card = card_of(client_for(world.user("member")).get("/models/acme/scaler/"))
    values = re.findall(r'<textarea name="(tensor_\d)"[^>]*>\s*([^<]*)</textarea>', card)
    assert values == [("tensor_0", "[[0, 0, 0]]"), ("tensor_1", "[[0.0, 0.0, 0.0]]")]
    runnable.minilm(name="minilm")
    text = card_of(client_for(world.user("member")).get("/models/acme/minilm/"))
    assert re.search(r'<textarea name="text"[^>]*>\s*A man is playing the guitar\.</textarea>', text)


def test_the_gpux_yml_example_fills_the_form_in(runnable, world, tmp_path):
    manifest = {**onnx_models.IRIS_MANIFEST, "examples": [{"float_input": [[6.2, 2.9, 4.3, 1.3]]}]}
    manifest["inputs"] = [{**manifest["inputs"][0], "description": "sepal and petal sizes in cm"}]
    runnable.version("iris", {"model.onnx": onnx_models.sklearn_iris_path(tmp_path)}, manifest)
    card = card_of(client_for(world.user("member")).get("/models/acme/iris/"))
    assert re.search(r'<textarea name="tensor_0"[^>]*>\s*\[\[6\.2, 2\.9, 4\.3, 1\.3\]\]</textarea>', card)
    assert "sepal and petal sizes in cm" in card
