"""Pipeline pages: the list, the builder (versions picked from those the member may run, each input mapped to a
pipeline input or an earlier output, checked on every change), saving (400 on the field that is wrong, nothing
written), the run form (400 naming the input) and a run's page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.core.jobs import Job
from apps.inference.models import Pipeline
from apps.inference.pipelines import PIPELINE_KIND, save_pipeline
from tests.inference.pipeline_models import iris_bytes, make_version, model_bytes, ref

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def versions(world):
    return make_version(world, "iris", iris_bytes()), make_version(world, "argmax", model_bytes("argmax"))


def chain(iris, argmax, **extra) -> dict:
    return {
        "slug": "species",
        "step_count": "2",
        "steps-0-name": "classify",
        "steps-0-version": ref(iris),
        "steps-1-name": "pick",
        "steps-1-version": ref(argmax),
        **extra,
    }


def test_the_builder_offers_the_versions_the_member_may_run(world, versions):
    page = client_for(world.user("member")).get("/orgs/acme/pipelines/new/").content.decode()
    assert "acme/iris@1.0.0" in page and "acme/argmax@1.0.0" in page
    assert 'hx-post="/orgs/acme/pipelines/new/check/"' in page


def test_checking_maps_a_later_input_to_the_earlier_output_that_fits(world, versions):
    iris, argmax = versions
    response = client_for(world.user("member")).post(
        "/orgs/acme/pipelines/new/check/", chain(iris, argmax), HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert '<option value="classify.probabilities" selected>' in html
    assert "The steps fit together" in html


def test_a_mapping_that_does_not_fit_is_marked_on_its_field_as_you_go(world, versions):
    iris, argmax = versions
    body = chain(iris, argmax, **{"steps-1-in-probabilities": "classify.label"})
    html = (
        client_for(world.user("member"))
        .post("/orgs/acme/pipelines/new/check/", body, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    field = html.split('id="steps-1-in-probabilities"', 1)[1].split("</select>", 1)[1].split("</div>", 2)[0]
    assert "int64" in field and "float" in field
    assert "Fix the fields marked in red" in html


def test_add_a_step_adds_one(world, versions):
    iris, argmax = versions
    body = {**chain(iris, argmax), "action": "add"}
    html = (
        client_for(world.user("member"))
        .post("/orgs/acme/pipelines/new/check/", body, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert 'name="steps-2-version"' in html and 'name="step_count" value="3"' in html


def test_saving_a_chain_goes_to_its_page_with_the_run_form(world, versions):
    iris, argmax = versions
    member = client_for(world.user("member"))
    response = member.post("/orgs/acme/pipelines/new/", chain(iris, argmax))
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/pipelines/species/"
    pipeline = Pipeline.objects.get(slug="species")
    assert pipeline.steps[1]["inputs"] == {"probabilities": "classify.probabilities"}
    page = member.get(response["Location"]).content.decode()
    assert 'name="input-float_input"' in page and "acme/argmax@1.0.0" in page
    assert "species" in member.get("/orgs/acme/pipelines/").content.decode()


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"slug": "Not A Slug"}, "pipeline-slug", "lowercase"),
        ({"steps-1-version": "acme/nothing@9"}, "steps-1-version", "no version"),
        ({"steps-1-in-probabilities": "classify.label"}, "steps-1-in-probabilities", "int64"),
        ({"steps-1-name": "classify"}, "steps-1-name", "already called"),
    ],
)
def test_saving_a_wrong_pipeline_answers_400_on_its_field_and_writes_nothing(world, versions, extra, field, words):
    iris, argmax = versions
    response = client_for(world.user("member")).post("/orgs/acme/pipelines/new/", chain(iris, argmax, **extra))
    assert response.status_code == 400
    html = response.content.decode()
    after = html.split(f'id="{field}"', 1)[1][:1500]
    assert "invalid-feedback" in after and words in text_of(after)
    assert not Pipeline.objects.exists()


def test_a_viewer_may_read_pipelines_but_not_build_or_run_them(world, versions):
    iris, _argmax = versions
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[{"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.float_input"}}],
        actor=world.user("member"),
    )
    viewer = client_for(world.user("viewer"))
    assert viewer.get("/orgs/acme/pipelines/species/").status_code == 200
    assert viewer.get("/orgs/acme/pipelines/new/").status_code == 403
    assert viewer.post("/orgs/acme/pipelines/species/run/", {"input-float_input": "[[1, 2, 3, 4]]"}).status_code == 403
    assert client_for(world.user("outsider")).get("/orgs/acme/pipelines/species/").status_code == 404


def test_running_with_a_wrong_input_answers_400_naming_it_and_starts_nothing(world, versions):
    iris, _argmax = versions
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[{"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.float_input"}}],
        actor=world.user("member"),
    )
    member = client_for(world.user("member"))
    for value, words in (("[[1, 2", "Not JSON"), ("[[1, 2, 3]]", "4")):
        response = member.post("/orgs/acme/pipelines/species/run/", {"input-float_input": value})
        assert response.status_code == 400
        after = response.content.decode().split('id="input-float_input"', 1)[1][:800]
        assert "invalid-feedback" in after and words in after
    assert not Job.objects.filter(kind=PIPELINE_KIND).exists()


def test_a_run_starts_a_job_and_its_page_follows_it(world, versions):
    iris, _argmax = versions
    save_pipeline(
        organization=world.org,
        slug="species",
        steps=[{"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.float_input"}}],
        actor=world.user("member"),
    )
    member = client_for(world.user("member"))
    response = member.post("/orgs/acme/pipelines/species/run/", {"input-float_input": "[[5.1, 3.5, 1.4, 0.2]]"})
    job = Job.objects.get(kind=PIPELINE_KIND)
    assert response.status_code == 302 and response["Location"] == f"/orgs/acme/pipelines/species/runs/{job.uuid}/"
    page = member.get(response["Location"]).content.decode()
    assert "Pipeline run" in page and "The steps show here as they run" in page
    jobs = member.get("/orgs/acme/jobs/").content.decode()
    assert f"/orgs/acme/pipelines/species/runs/{job.uuid}/" in jobs and "pipeline acme/species" in jobs
