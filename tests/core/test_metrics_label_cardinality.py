"""Labels stay bounded: after real requests (a detail URL with a UUID, a path no route matches, a page, the API),
every exported family carries only the label names of the allow-list, requests are labelled by route name (the
URL pattern's name), never by path, and no label value is a UUID, a user's id or a path."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core import metrics
from apps.core.job_services import start_job
from tests.metrics_support import scrape_web

pytestmark = pytest.mark.django_db

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, f"{namespace}{entry.namespace}:" if entry.namespace else namespace)
            elif isinstance(entry, URLPattern):
                if entry.name:
                    names.add(f"{namespace}{entry.name}")
                else:  # an unnamed pattern: django-prometheus names it by the view's dotted path
                    callback = entry.callback
                    names.add(f"{callback.__module__}.{getattr(callback, '__name__', type(callback).__name__)}")

    walk(get_resolver().url_patterns, "")
    return names


@pytest.fixture
def traffic(world):
    return _make_traffic(world)


def _make_traffic(world):
    """Requests of every sort, as the personas make them."""
    admin = Client()
    admin.force_login(world.user("admin"))
    job = start_job(kind="audit.export", organization=world.org, creator=world.user("admin"), params={})
    answers = [
        admin.get(f"/jobs/{job.uuid}/"),  # a page whose path holds a UUID
        admin.get(f"/jobs/{uuid.uuid4()}/"),  # the same route, 404
        admin.get(f"/orgs/{world.org.slug}/jobs/"),
        admin.get("/no/such/path/for/anyone/"),  # no route at all
        Client().get(f"/api/v1/jobs/{job.uuid}/"),  # the API, anonymous
        Client().get("/healthz"),
    ]
    return job, [answer.status_code for answer in answers]


def test_requests_are_counted_by_route_name_and_status_never_by_path(traffic):
    job, statuses = traffic
    assert statuses[:4] == [200, 404, 200, 404]
    scraped = scrape_web(Client())
    responses = "django_http_responses_total_by_status_view_method_total"
    assert scraped.value(responses, view="job-detail", status="200", method="GET") >= 1
    assert scraped.value(responses, view="job-detail", status="404", method="GET") >= 1
    assert scraped.value(responses, view="org-jobs", status="200", method="GET") >= 1
    assert scraped.value(responses, view="api:job-detail", method="GET") >= 1
    assert scraped.value(responses, view="<unnamed view>", status="404") >= 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert scraped.value(latency, view="job-detail", method="GET") >= 2
    assert str(job.uuid) not in scraped.text
    assert "/no/such/path" not in scraped.text


def test_every_exported_label_is_on_the_allow_list_and_route_labels_are_route_names(world):
    before = scrape_web(Client())
    _make_traffic(world)
    scraped = scrape_web(Client())
    names = route_names() | {"<unnamed view>"}
    grew = [s for s in scraped.samples if s.value > before.value(s.name, **s.labels)]
    assert any(s.name == "django_http_responses_total_by_status_view_method_total" for s in grew), "nothing counted"
    for sample in grew:  # what this test's requests counted: route names of this project's URLconf
        if "view" in sample.labels:
            assert sample.labels["view"] in names, f"{sample.name}: view={sample.labels['view']!r} is not a route name"
    for sample in scraped.samples:  # everything this process exported (other tests' URLconfs included)
        unexpected = set(sample.labels) - metrics.ALLOWED_LABELS
        assert not unexpected, f"{sample.name} has labels outside the allow-list: {unexpected}"
        for label, value in sample.labels.items():
            assert not UUID.search(value), f"{sample.name}: {label}={value!r} holds a UUID"
            if label not in {"model", "deployment", "organization", "view", "templatename"}:
                assert "/" not in value, f"{sample.name}: {label}={value!r} looks like a path"


def test_the_declared_families_only_use_allowed_labels():
    for metric in metrics.DECLARED:
        assert set(metric._labelnames) <= metrics.ALLOWED_LABELS, metric._name
    for name, (_kind, labels, _help) in metrics.SCRAPE_TIME_FAMILIES.items():
        assert set(labels) <= metrics.ALLOWED_LABELS, name


def test_model_series_past_the_bound_are_counted_as_other(settings):
    bounded = metrics.BoundedLabels(2)
    assert bounded("acme/a", "1", "") == ("acme/a", "1", "")
    assert bounded("acme/b", "1", "") == ("acme/b", "1", "")
    assert bounded("acme/c", "1", "") == (metrics.OTHER, metrics.OTHER, metrics.OTHER)
    assert bounded("acme/a", "1", "") == ("acme/a", "1", "")


def test_batch_sizes_are_grouped_by_powers_of_two():
    assert [metrics.batch_size_label(n) for n in (1, 2, 3, 4, 5, 64, 65, 256, 257)] == [
        "1", "2", "4", "4", "8", "64", "128", "256", "more",
    ]  # fmt: skip
