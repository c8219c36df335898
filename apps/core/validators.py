"""Validators that fields of owned objects in every app share."""

from __future__ import annotations

from django.core.validators import RegexValidator

# The slug of an object inside its organization (a deployment, a pipeline, a registry, a team). Organization slugs and
# user handles are another namespace with rules of their own (apps.organizations.validators).
SLUG_RULES = "1 to 50 characters: lowercase letters, digits and single hyphens between them"
SLUG_VALIDATOR = RegexValidator(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,49}$", f"{SLUG_RULES}.", code="invalid_slug")
