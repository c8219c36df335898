"""Whose a prediction is (DESIGN.md, "Inference"), one test per sentence of the rule:

* a prediction on a deployment belongs to the deployment's organization: its admins see it (the API's predictions
  and jobs, the organization's jobs page), it counts against that organization;
* a direct run of a version belongs to the caller's acting organization: their personal one by default, a bound
  token's organization;
* the caller always sees their own (a token bound elsewhere too, when it may view what ran);
* an org-bound token never reveals objects of an organization it cannot view: a token bound to the caller's
  personal organization does not read the prediction they made on a private model of acme, which it gets 404 on;
* a public deployment of a private organization: its REST detail, KServe metadata and answers agree on what an
  outsider learns (the deployment's name and revision, never the model's name or versions).

No worker runs here: predictions are started asynchronously (their job is written, not run); the answers of runs
that finish are in test_whose_prediction_it_is_on_a_real_worker.py.
"""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.access import Visibility
from apps.core.jobs import Job
from apps.inference import services
from apps.inference.predictions import PREDICT_KIND
from apps.organizations.models import Organization
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

MODEL = "hush-iris"  # the private model's name: it must not appear in what outsiders read
FLOWER = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}


@pytest.fixture
def deployment(runnable, world, tmp_path, settings):
    """acme (a private organization) serves its private model through a public deployment."""
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    version = runnable.iris(tmp_path, name=MODEL)
    return services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="species",
        version=version,
        visibility=Visibility.PUBLIC,
    )


def personal(user) -> Organization:
    return Organization.objects.get(personal_owner=user)


def predict_deployment(client):
    response = client.post("/api/v1/orgs/acme/deployments/species/predict?async=1", FLOWER, format="json")
    assert response.status_code == 202, response.content
    return Job.objects.get(uuid=response.json()["job"])


def predict_version(client, name: str = MODEL):
    response = client.post(f"/api/v1/models/acme/{name}/versions/1.0.0/predict?async=1", FLOWER, format="json")
    assert response.status_code == 202, response.content
    return Job.objects.get(uuid=response.json()["job"])


# --- a prediction on a deployment belongs to the deployment's organization ----------------------------------------


def test_a_prediction_on_a_deployment_belongs_to_the_deployments_organization(world, deployment):
    job = predict_deployment(api_client_for(world.user("outsider")))
    assert job.organization == world.org and job.creator == world.user("outsider")
    # The version it served is not in the job's params; that nobody waits for it is.
    assert job.params == {"deployment": str(deployment.uuid), "async": True}
    assert not AuditEvent.objects.filter(action="job.created", target_id=str(job.uuid)).exists()  # a Job row only
    own = predict_deployment(api_client_for(world.user("member")))
    assert own.organization == world.org


def test_acmes_admin_sees_the_traffic_of_their_deployment_in_the_organizations_jobs(world, deployment):
    job = predict_deployment(api_client_for(world.user("outsider")))
    admin = api_client_for(world.user("admin"))
    assert str(job.uuid) in [item["uuid"] for item in admin.get("/api/v1/jobs/?organization=acme").json()["results"]]
    listed = admin.get("/api/v1/predictions/").json()["results"]
    assert [item["job"] for item in listed] == [str(job.uuid)]
    assert listed[0]["model"] == f"acme/{MODEL}" and listed[0]["deployment"] == "acme/species"
    page = Client()
    page.force_login(world.user("admin"))
    html = page.get("/orgs/acme/jobs/").content.decode()
    assert str(job.uuid)[:8] in html and PREDICT_KIND in html
    member = api_client_for(world.user("member"))  # members see their own jobs only, as for any job
    assert member.get(f"/api/v1/predictions/{job.uuid}/").status_code == 404


# --- a direct run of a version belongs to the caller's acting organization ----------------------------------------


def test_a_direct_run_belongs_to_the_callers_personal_organization_by_default(world, deployment):
    member = world.user("member")
    job = predict_version(api_client_for(member))
    assert job.organization == personal(member)
    assert job.params["version"] == str(deployment.version.uuid)


def test_a_direct_run_with_a_bound_token_belongs_to_the_tokens_organization(world, deployment):
    job = predict_version(api_client_for(world.user("member"), organization=world.org))
    assert job.organization == world.org


# --- the caller always sees their own -----------------------------------------------------------------------------


def test_the_caller_always_sees_their_own_prediction_on_another_organizations_deployment(world, deployment):
    outsider = world.user("outsider")
    job = predict_deployment(api_client_for(outsider))
    for client in (api_client_for(outsider), api_client_for(outsider, organization=personal(outsider))):
        detail = client.get(f"/api/v1/predictions/{job.uuid}/")
        assert detail.status_code == 200, detail.content
        assert [item["job"] for item in client.get("/api/v1/predictions/").json()["results"]] == [str(job.uuid)]
        assert client.get(f"/api/v1/jobs/{job.uuid}/").status_code == 200


# --- an org-bound token never reveals objects of an organization it cannot view -----------------------------------


def test_a_token_bound_to_the_personal_organization_does_not_read_a_private_models_prediction(world, deployment):
    member = world.user("member")
    job = predict_version(api_client_for(member))  # an unbound token: counted against the member's personal org
    assert job.organization == personal(member)
    bound = api_client_for(member, organization=personal(member))
    assert (
        bound.post(f"/api/v1/models/acme/{MODEL}/versions/1.0.0/predict?async=1", FLOWER, format="json").status_code
        == 404
    )
    for url in (
        f"/api/v1/predictions/{job.uuid}/",
        f"/api/v1/jobs/{job.uuid}/",
        f"/api/v1/predictions/{job.uuid}/webhooks/",
    ):
        response = bound.get(url)
        assert response.status_code == 404, (url, response.content)
        assert MODEL not in response.content.decode()
    for url in ("/api/v1/predictions/", "/api/v1/jobs/", f"/api/v1/jobs/?organization={personal(member).slug}"):
        response = bound.get(url)
        assert response.status_code == 200 and response.json()["results"] == [], (url, response.content)
    unbound = api_client_for(member)  # the member's own, seen by their unbound token
    assert unbound.get(f"/api/v1/predictions/{job.uuid}/").json()["model"] == f"acme/{MODEL}"


def test_a_token_bound_to_acme_reads_acmes_deployment_traffic_but_not_another_orgs(world, deployment):
    job = predict_deployment(api_client_for(world.user("outsider")))
    admin = world.user("admin")
    assert api_client_for(admin, organization=world.org).get(f"/api/v1/predictions/{job.uuid}/").status_code == 200
    assert (
        api_client_for(admin, organization=personal(admin)).get(f"/api/v1/predictions/{job.uuid}/").status_code == 404
    )


# --- a public deployment of a private organization: what an outsider learns ---------------------------------------


def test_the_rest_detail_names_the_deployment_and_its_revision_not_the_private_model(world, deployment):
    outsider = api_client_for(world.user("outsider"))
    detail = outsider.get("/api/v1/orgs/acme/deployments/species/")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert body["slug"] == "species" and body["visibility"] == "public" and body["revision"] == 1
    assert body["model"] is None and body["version"] is None and body["canary_version"] is None
    assert MODEL not in detail.content.decode()
    assert outsider.get("/api/v1/orgs/acme/deployments/").status_code == 404  # the organization's list: its members'
    assert (
        outsider.patch("/api/v1/orgs/acme/deployments/species/", {"timeout_seconds": 5}, format="json").status_code
        == 403
    )
    revisions = outsider.get("/api/v1/orgs/acme/deployments/species/revisions/")
    assert revisions.status_code == 403 and MODEL not in revisions.content.decode()
    member = api_client_for(world.user("member")).get("/api/v1/orgs/acme/deployments/species/").json()
    assert member["model"] == MODEL and member["version"] == "1.0.0"


def test_kserve_metadata_lists_the_revision_not_the_models_versions(world, deployment):
    outsider = api_client_for(world.user("outsider"))
    response = outsider.get("/v2/models/acme--deployments--species")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "acme--deployments--species" and body["versions"] == ["r1"]
    assert [item["name"] for item in body["inputs"]] == ["float_input"]
    assert MODEL not in response.content.decode()
    member = api_client_for(world.user("member")).get("/v2/models/acme--deployments--species").json()
    assert member["versions"] == ["1.0.0"]


def test_the_outsiders_answer_names_the_deployment_and_revision_not_the_model(world, deployment):
    outsider = api_client_for(world.user("outsider"))
    job = predict_deployment(outsider)
    answer = outsider.get(f"/api/v1/predictions/{job.uuid}/").json()
    assert answer["model"] is None and answer["version"] is None
    assert answer["deployment"] == "acme/species" and answer["revision"] == 1
    assert MODEL not in str(outsider.get(f"/api/v1/predictions/{job.uuid}/").content)
    assert MODEL not in str(outsider.get("/api/v1/predictions/").content)
    insider = api_client_for(world.user("admin")).get(f"/api/v1/predictions/{job.uuid}/").json()
    assert insider["model"] == f"acme/{MODEL}" and insider["version"] == "1.0.0" and insider["revision"] == 1


def test_the_outsiders_pages_of_their_prediction_name_neither_the_model_nor_acme(world, deployment):
    world.org.name = "Acme Hidden Works"
    world.org.save(update_fields=["name"])
    job = predict_deployment(api_client_for(world.user("outsider")))
    page = Client()
    page.force_login(world.user("outsider"))
    for url in (f"/inference/jobs/{job.uuid}/", "/inference/jobs/", f"/jobs/{job.uuid}/"):
        response = page.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert MODEL not in html and "Acme Hidden Works" not in html, url
    admin = Client()
    admin.force_login(world.user("admin"))
    assert MODEL in admin.get(f"/inference/jobs/{job.uuid}/").content.decode()


def test_a_token_bound_to_the_personal_organization_does_not_read_a_private_models_batch_job(world, deployment):
    from tests.inference.batch_support import batch_url, iris_csv, job_url, results_url, upload

    member = world.user("member")
    response = api_client_for(member).post(
        batch_url(deployment.version), {"file": upload("rows.csv", iris_csv()[:400])}, format="multipart"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    assert job.organization == personal(member)  # a direct run: the member's acting (personal) organization
    bound = api_client_for(member, organization=personal(member))
    for url in (job_url(job.uuid), results_url(job.uuid), f"/api/v1/jobs/{job.uuid}/"):
        answer = bound.get(url)
        assert answer.status_code == 404, (url, answer.content)
    assert bound.get("/api/v1/batch-jobs/").json()["results"] == []
    assert api_client_for(member).get(job_url(job.uuid)).status_code == 200
