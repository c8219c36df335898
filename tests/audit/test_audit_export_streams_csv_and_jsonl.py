"""The export streams the (filtered) trail as CSV or JSON lines, as a download; the export itself is audited."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from apps.audit.context import RequestContext, current_request
from apps.audit.exports import EXPORT_FIELDS, iter_csv_lines, iter_jsonl_lines
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.audit.verification import verify_chain
from tests.audit.conftest import chain_key, record_many
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

URL = reverse("api:org-audit-export", kwargs={"org_slug": "acme"})


def download(world, params: dict, persona: str = "admin") -> tuple[StreamingHttpResponse, str]:
    response = api_client_for(world.user(persona)).get(URL, params)
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content).decode()


@pytest.fixture
def trail(world):
    org, owner = world.org, world.user("owner")
    token = current_request.set(RequestContext(ip="2001:db8::1", user_agent="curl/8"))
    try:
        record_event(
            action="organization.updated", organization=org, actor=owner, target=org, diff={"name": ["A", "B"]}
        )
        record_event(
            action="team.created",
            organization=org,
            actor_label='=HYPERLINK("http://evil.example")',
            metadata={"note": "=1+1"},
        )
    finally:
        current_request.reset(token)
    record_many(world.user("owner").personal_organization, 2)  # another chain: never exported here
    return world


def test_csv_has_a_header_and_one_row_per_event_with_every_field(trail):
    response, body = download(trail, {"format": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="acme-audit-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(body)))
    assert tuple(rows[0]) == EXPORT_FIELDS
    assert [r["action"] for r in rows] == ["organization.updated", "team.created", "audit.exported"]
    first = rows[0]
    stored = AuditEvent.objects.get(uuid=first["uuid"])
    assert first["seq"] == "1"
    assert first["actor"] == "owner-user"
    assert first["actor_label"] == "owner@acme.example"
    assert first["ip"] == "2001:db8::1"
    assert first["user_agent"] == "curl/8"
    assert json.loads(first["diff"]) == {"name": ["A", "B"]}
    assert first["hash"] == stored.hash
    assert first["prev_hash"] == stored.prev_hash


def test_csv_defuses_cells_a_spreadsheet_would_run_as_formulas(trail):
    _, body = download(trail, {"format": "csv", "action": "team.created"})

    row = next(csv.DictReader(io.StringIO(body)))
    assert row["actor_label"] == "'" + '=HYPERLINK("http://evil.example")'
    assert row["metadata"] == '{"note":"=1+1"}', "JSON text starts with {: left as is"
    assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())


def test_jsonl_has_one_object_per_line_verbatim(trail):
    response, body = download(trail, {"format": "jsonl"})

    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = body.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["action"] for e in events] == ["organization.updated", "team.created", "audit.exported"]
    assert tuple(events[0]) == EXPORT_FIELDS
    assert events[0]["diff"] == {"name": ["A", "B"]}
    assert events[1]["actor_label"] == '=HYPERLINK("http://evil.example")', "verbatim in JSON lines"
    assert events[0]["actor"] == "owner-user"
    assert [e["seq"] for e in events] == [1, 2, 3]


def test_the_export_takes_the_lists_filters_and_ordering(trail):
    _, body = download(trail, {"format": "jsonl", "action": "team.*", "ordering": "-seq"})
    assert [json.loads(line)["action"] for line in body.splitlines()] == ["team.created"]

    _, body = download(trail, {"format": "jsonl", "ordering": "-seq"})
    assert [json.loads(line)["seq"] for line in body.splitlines()] == [4, 3, 2, 1]


def test_the_format_defaults_to_csv(trail):
    response, body = download(trail, {})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert body.startswith(",".join(EXPORT_FIELDS))


def test_the_export_is_recorded_with_who_asked_and_how(trail):
    download(trail, {"format": "jsonl", "actor": "owner-user"})

    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_id == trail.user("admin").pk
    assert event.metadata == {"format": "jsonl", "filters": {"actor": "owner-user"}}
    assert verify_chain(chain_key(trail.org)).ok


@pytest.mark.parametrize("value", ["xml", "CSVX", "json"])
def test_an_unknown_format_is_a_400_naming_format(trail, value):
    response = api_client_for(trail.user("admin")).get(URL, {"format": value})

    assert response.status_code == 400
    assert "format" in response.json()
    assert "csv, jsonl" in response.json()["format"][0]
    assert not AuditEvent.objects.filter(action="audit.exported").exists(), "nothing recorded for a refused export"


def test_a_bad_filter_on_the_export_is_a_400_naming_it(trail):
    response = api_client_for(trail.user("admin")).get(URL, {"format": "csv", "since": "last tuesday"})

    assert response.status_code == 400
    assert "since" in response.json()


def test_a_member_cannot_export(trail):
    response = api_client_for(trail.user("member")).get(URL, {"format": "csv"})

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_line_producers_stream_in_chunks_and_match_each_other(trail):
    record_many(trail.org, 7)
    events = AuditEvent.objects.filter(organization_id=trail.org.pk).order_by("seq")

    csv_lines = list(iter_csv_lines(events, chunk_size=3))
    jsonl_lines = list(iter_jsonl_lines(events, chunk_size=3))

    assert len(csv_lines) == 1 + events.count()
    assert len(jsonl_lines) == events.count()
    from_csv = [row["uuid"] for row in csv.DictReader(io.StringIO("".join(csv_lines)))]
    from_jsonl = [json.loads(line)["uuid"] for line in jsonl_lines]
    assert from_csv == from_jsonl == [str(u) for u in events.values_list("uuid", flat=True)]


def test_an_event_whose_actor_was_deleted_exports_with_no_handle_but_its_label(trail):
    leaver = trail.user("viewer")
    record_event(action="member.left", organization=trail.org, actor=leaver)
    leaver.delete()

    _, body = download(trail, {"format": "jsonl", "action": "member.left"})

    event = json.loads(body.splitlines()[0])
    assert event["actor"] is None
    assert event["actor_label"] == "viewer@acme.example"
