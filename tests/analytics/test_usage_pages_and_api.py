"""Usage analytics pages, exports and API: what they show comes from the rollups, CI and service traffic can be told
apart, and wrong periods, granularities, filters or formats answer 400 naming the parameter."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from apps.accounts.services import create_api_token
from apps.analytics import usage
from apps.analytics.rollups import roll_up_pending
from apps.marketplace import services as catalog
from tests.conftest import api_client_for
from tests.factories import OrganizationFactory, UserFactory
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def used(world):
    """Usage of acme over the last days: runs by a CI token and a service token, downloads by people, one error."""
    now = datetime.now(UTC)
    model = catalog.create_model(organization=world.org, actor=world.user("member"), name="iris", visibility="public")
    ci, _ = create_api_token(user=world.user("member"), name="ci", scope="read", organization=world.org, kind="ci")
    service, _ = create_api_token(
        user=world.user("admin"), name="svc", scope="read", organization=world.org, kind="service"
    )
    when = (now - timedelta(days=2)).timestamp()
    for _ in range(3):
        usage.record("prediction", organization_id=world.org.pk, user_id=world.user("member").pk, token_id=ci.pk,
                     token_kind="ci", model_id=model.pk, latency_ms=10, occurred_at=when)  # fmt: skip
    usage.record("job", organization_id=world.org.pk, user_id=world.user("admin").pk, token_id=service.pk,
                 token_kind="service", model_id=model.pk, latency_ms=30, outcome="error", occurred_at=when)  # fmt: skip
    for persona in ("viewer", "member"):
        usage.record("download", organization_id=world.org.pk, user_id=world.user(persona).pk, model_id=model.pk,
                     occurred_at=when)  # fmt: skip
    other = OrganizationFactory()  # someone else runs acme's public model: it counts against them, and for the model
    usage.record("prediction", organization_id=other.pk, model_id=model.pk, occurred_at=when)
    drain_now()
    roll_up_pending(now=now + timedelta(days=1))
    return {"model": model, "ci": ci, "service": service}


def _admin_page(world) -> Client:
    client = Client()
    client.force_login(world.user("admin"))
    return client


def test_the_organizations_api_report_counts_runs_downloads_errors_and_traffic_by_token_kind(world, used):
    answer = api_client_for(world.user("admin"), organization=world.org).get("/api/v1/orgs/acme/usage/?period=7d")
    assert answer.status_code == 200
    report = answer.json()
    assert report["period"]["granularity"] == "hour"
    assert (report["totals"]["runs"], report["totals"]["downloads"], report["totals"]["errors"]) == (4, 2, 1)
    assert report["by_token_kind"] == {"ci": 3, "none": 2, "service": 1}
    assert report["totals"]["latency_avg_ms"] == 15.0
    ci_only = api_client_for(world.user("admin"), organization=world.org).get(
        "/api/v1/orgs/acme/usage/?period=30d&token_kind=ci"
    )
    assert ci_only.json()["totals"]["events"] == 3
    assert ci_only.json()["period"]["granularity"] == "day"


def test_a_models_report_counts_its_use_by_anyone(world, used):
    report = api_client_for(world.user("admin"), organization=world.org).get("/api/v1/orgs/acme/usage/models/iris/")
    assert report.json()["totals"]["runs"] == 5  # acme's four and the other organization's one


def test_a_tokens_report_counts_what_it_did(world, used):
    url = f"/api/v1/orgs/acme/usage/tokens/{used['ci'].uuid}/?period=7d&granularity=day"
    report = api_client_for(world.user("admin"), organization=world.org).get(url).json()
    assert report["totals"]["events"] == 3
    assert sum(report["series"]["runs"]) == 3


def test_the_api_answers_csv_with_one_row_per_bucket(world, used):
    answer = api_client_for(world.user("admin"), organization=world.org).get("/api/v1/orgs/acme/usage/?format=csv")
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert len(rows) in (30, 31)
    assert sum(int(row["runs"]) for row in rows) == 4


def test_the_page_shows_totals_charts_quotas_models_and_tokens(world, used):
    response = _admin_page(world).get("/orgs/acme/analytics/?period=7d")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="total-runs">4<' in html and 'id="total-downloads">2<' in html
    assert 'id="usage-data"' in html and "portal/analytics.js" in html
    assert 'data-token-kind="ci"' in html and 'data-quota="storage_bytes"' in html
    assert "/orgs/acme/analytics/models/iris/" in html
    assert f"/orgs/acme/analytics/tokens/{used['ci'].uuid}/" in html


def test_the_page_exports_csv_and_json(world, used):
    client = _admin_page(world)
    as_csv = client.get("/orgs/acme/analytics/export/?period=7d&format=csv")
    assert as_csv.status_code == 200 and "attachment" in as_csv["Content-Disposition"]
    assert sum(int(row["downloads"]) for row in csv.DictReader(io.StringIO(as_csv.content.decode()))) == 2
    as_json = client.get("/orgs/acme/analytics/models/iris/export/?period=7d&format=json")
    assert as_json.json()["totals"]["runs"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=5y", "period"),
        ("granularity=week", "granularity"),
        ("start=yesterday", "start"),
        ("start=2026-01-10&end=2026-01-01", "end"),
        ("end=2026-01-01", "start"),
        ("start=2020-01-01&end=2026-01-01", "start"),
        ("period=365d&granularity=hour", "granularity"),
        ("period=7d&start=2026-01-01", "period"),
        ("kind=teleport", "kind"),
        ("token_kind=robot", "token_kind"),
        ("format=xml", "format"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(world, query, field):
    api = api_client_for(world.user("admin"), organization=world.org).get(f"/api/v1/orgs/acme/usage/?{query}")
    assert api.status_code == 400
    assert field in api.json(), api.json()
    export = _admin_page(world).get(f"/orgs/acme/analytics/export/?{query}")
    assert export.status_code == 400 and field in export.json()
    if field != "format":
        page = _admin_page(world).get(f"/orgs/acme/analytics/?{query}")
        assert page.status_code == 400
        assert f"<strong>{field}</strong>" in page.content.decode()


def test_an_admin_of_another_organization_sees_nothing_of_acmes(world, used):
    stranger = UserFactory()
    from tests.factories import MembershipFactory

    MembershipFactory(organization=OrganizationFactory(), user=stranger, role=40)
    client = Client()
    client.force_login(stranger)
    assert client.get("/orgs/acme/analytics/").status_code == 404
    assert api_client_for(stranger).get("/api/v1/orgs/acme/usage/").status_code == 404
