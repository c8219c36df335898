"""Template helpers shared by every page: the organization switcher and Bootstrap form fields."""

from __future__ import annotations

from typing import Any

from django import forms, template

from apps.core.access import organization_model

register = template.Library()

_CHECK_WIDGETS = (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)


@register.inclusion_tag("includes/org_switcher.html", takes_context=True)
def org_switcher(context: template.Context) -> dict[str, Any]:
    """The organizations the signed-in user belongs to, listed through restrict(), and the page's organization as
    the current one only when it is one of them: on another organization's page (a public model of theirs, their
    public overview) the switcher names none as current, so nobody reads it as their own, nor reads the display name
    of an organization they may not view."""
    Organization = organization_model()
    request = context.get("request")
    user = getattr(request, "user", None)
    organizations: list[Any] = []
    if user is not None and user.is_authenticated:
        organizations = list(
            Organization.objects.restrict(user, "view").filter(memberships__user=user).order_by("-is_personal", "slug")
        )
    page = context.get("organization")
    page_pk = page.pk if isinstance(page, Organization) else None
    current = next((org for org in organizations if org.pk == page_pk), None)
    return {"organizations": organizations, "current": current}


@register.filter
def bootstrap(field: forms.BoundField) -> str:
    """Render a bound field's widget with Bootstrap's classes (and ``is-invalid`` when it has errors)."""
    widget = field.field.widget
    if isinstance(widget, _CHECK_WIDGETS):
        css = "form-check-input"
    elif isinstance(widget, forms.Select | forms.SelectMultiple):
        css = "form-select"
    else:
        css = "form-control"
    if field.errors:
        css += " is-invalid"
    existing = widget.attrs.get("class", "")
    return field.as_widget(attrs={"class": f"{existing} {css}".strip()})


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)


@register.filter
def percent_number(fraction: Any) -> int:
    """0.437 -> 44 (for progress bars)."""
    try:
        return max(0, min(100, round(float(fraction) * 100)))
    except (TypeError, ValueError):
        return 0


@register.filter
def percent(fraction: Any) -> str:
    return f"{percent_number(fraction)} %"


@register.filter
def version_label(label: Any) -> str:
    """A version label as the catalog shows it: one that starts with a digit gets a ``v`` (``1.0.0`` -> ``v1.0.0``);
    any other (``v1.0``, ``beta``) stays as it is, so that ``v1.0`` never reads ``v v1.0``."""
    text = str(label or "")
    return f"v{text}" if text[:1].isdigit() else text


def human_duration(seconds: Any) -> str:
    """A duration as people read it: ``8.4 ms``, ``350 ms``, ``2.4 s``, ``4 min 27 s``, ``74 h 4 min``; ``—`` when
    unknown. Below a second in milliseconds, below a minute in seconds, then minutes and hours."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if value != value or value < 0:  # NaN or negative: not a duration
        return "—"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def duration(seconds: Any) -> str:
    """``{{ job.duration_seconds|duration }}``: see ``human_duration``."""
    return human_duration(seconds)


@register.filter
def duration_ms(milliseconds: Any) -> str:
    """``{{ row.total_ms|duration_ms }}``: milliseconds, shown as ``human_duration`` shows seconds."""
    try:
        return human_duration(float(milliseconds) / 1000)
    except (TypeError, ValueError):
        return "—"


@register.filter
def job_kind(kind: Any) -> str:
    """``{{ job.kind|job_kind }}``: what people call a job of that kind ("Validation", "Prediction")."""
    from apps.core.job_services import kind_label

    return kind_label(str(kind or ""))
