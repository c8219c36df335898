"""A model card (and a changelog) with script or event-handler HTML is rendered without it: the Markdown goes
through the catalog's nh3 sanitizer before it reaches the page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility

HOSTILE = """# Hello

<script>alert('card-script')</script>
<img src="https://example.com/x.png" onerror="alert('card-onerror')" alt="diagram">
<a href="javascript:alert('card-link')">click</a>
<p onclick="alert('card-onclick')" style="color:red">styled</p>

| a | b |
| --- | --- |
| 1 | 2 |
"""


def section(html: str, element_id: str) -> str:
    """The HTML of the element with ``element_id`` up to the end of the page (enough to search in)."""
    start = html.index(f'id="{element_id}"')
    return html[start:]


@pytest.mark.django_db
def test_script_and_event_handlers_in_a_card_never_reach_the_page(catalog):
    model = catalog.model("hostile", visibility=Visibility.PUBLIC, card=HOSTILE)
    response = Client().get(reverse("catalog-model", args=[model.organization.slug, model.name]))
    assert response.status_code == 200
    html = response.content.decode()
    card = section(html, "model-card")
    for payload in ("card-script", "card-onerror", "card-link", "card-onclick", "onerror=", "onclick=", "javascript:"):
        assert payload not in html, payload
    assert "<script" not in card.split("</article>")[0]
    assert 'style="color:red"' not in html
    # what is harmless stays: the heading, the image without its handler, the table
    assert re.search(r"<h1[^>]*>Hello</h1>", card)
    assert '<img src="https://example.com/x.png" alt="diagram">' in card
    assert "<table>" in card


@pytest.mark.django_db
def test_a_changelog_is_sanitized_on_the_version_page(catalog, world):
    model = catalog.model("hostile", visibility=Visibility.PRIVATE)
    from apps.marketplace import services

    services.create_version(model=model, actor=world.user("member"), label="1.0.0", changelog=HOSTILE)
    client = Client()
    client.force_login(world.user("member"))  # a draft: read by those who may change the model
    response = client.get(reverse("catalog-version", args=[model.organization.slug, model.name, "1.0.0"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "card-script" not in html and "onerror=" not in html and "javascript:" not in html
    assert re.search(r"<h1[^>]*>Hello</h1>", section(html, "changelog"))
