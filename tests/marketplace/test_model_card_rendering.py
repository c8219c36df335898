"""Model cards are Markdown rendered to HTML and sanitized: script and event-handler HTML never come through."""

from __future__ import annotations

import pytest

from apps.marketplace.markdown import render_markdown

pytestmark = pytest.mark.django_db

HOSTILE_CARD = """# Iris classifier

A **logistic regression** over four measurements.

<script>alert("card")</script>
<img src="https://example.com/x.png" onerror="alert('img')">
<a href="javascript:alert('link')">click</a>
<div onclick="steal()" style="position:fixed">overlay</div>

| feature | unit |
| --- | --- |
| sepal length | cm |
"""


def test_script_and_event_handlers_are_removed_on_render(catalog):
    catalog.model("iris", card=HOSTILE_CARD)
    data = catalog.client("viewer").get("/api/v1/models/acme/iris/").json()
    html = data["card_html"]
    assert data["card"] == HOSTILE_CARD  # the author's text is kept as written
    assert "<script" not in html
    assert "alert(" not in html.replace("alert(&quot;card&quot;)", "")
    assert "onerror" not in html
    assert "onclick" not in html
    assert "javascript:" not in html
    assert "style=" not in html
    assert "<h1>Iris classifier</h1>" in html
    assert "<strong>logistic regression</strong>" in html
    assert "<table>" in html
    assert '<img src="https://example.com/x.png">' in html


def test_links_get_a_safe_rel():
    html = render_markdown("[docs](https://example.com/docs)")
    assert 'href="https://example.com/docs"' in html
    assert "noopener" in html and "nofollow" in html


def test_an_empty_card_renders_empty():
    assert render_markdown("") == ""
