"""Deployments: create, change (each change a new revision), roll back, pause; which version serves a request.

A deployment serves a version of one model of its organization, or whatever one of that model's aliases points
at when the request comes (so moving ``production`` moves the deployment). ``canary_version`` takes
``canary_percent`` of the requests. Every change writes a ``DeploymentRevision`` holding the whole serving
configuration, and records one audit event; ``rollback_deployment`` makes a new revision from an earlier one's
configuration. A request records the revision and the version that served it, so "which version answered this
request" and "what did the deployment serve at 14:03" have answers (``revision_at``).
"""

from __future__ import annotations

import random
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record_event
from apps.core.errors import field_error
from apps.inference.models import Deployment, DeploymentRevision, DeploymentStatus, Device, Provider
from apps.inference.runtime.validation import batch_axis
from apps.marketplace.models import Alias, Model, ModelVersion, ValidationStatus, VersionStatus

CONFIG_FIELDS = (
    "version",
    "alias",
    "canary_version",
    "canary_percent",
    "device",
    "provider",
    "max_batch_size",
    "max_delay_ms",
    "concurrency",
    "timeout_seconds",
    "status",
    "description",
    "visibility",
)
SERVABLE = (VersionStatus.PUBLISHED, VersionStatus.DEPRECATED)


def _version_config(version: ModelVersion | None) -> dict[str, str] | None:
    return None if version is None else {"uuid": str(version.uuid), "label": version.label}


def config_of(deployment: Deployment) -> dict[str, Any]:
    """The serving configuration a revision keeps."""
    return {
        "model": str(deployment.model),
        "version": _version_config(deployment.version),
        "alias": deployment.alias,
        "canary_version": _version_config(deployment.canary_version),
        "canary_percent": deployment.canary_percent,
        "device": deployment.device,
        "provider": deployment.provider,
        "max_batch_size": deployment.max_batch_size,
        "max_delay_ms": deployment.max_delay_ms,
        "concurrency": deployment.concurrency,
        "timeout_seconds": deployment.timeout_seconds,
        "status": deployment.status,
        "visibility": deployment.visibility,
        "description": deployment.description,
    }


def _servable(version: ModelVersion, field: str, model: Model) -> ModelVersion:
    if version.model_id != model.pk:
        raise field_error(field, f"Version “{version.label}” is not a version of {model}.", code="wrong_model")
    if version.status not in SERVABLE:
        raise field_error(
            field,
            f"Version “{version.label}” is {version.status}: only published versions are served.",
            code="not_servable",
        )
    if version.validation_status != ValidationStatus.PASSED:
        raise field_error(field, f"Version “{version.label}” has not passed validation.", code="not_validated")
    return version


def _clean(deployment: Deployment) -> None:
    """The deployment's invariants, each refusal naming its field."""
    if bool(deployment.version_id) == bool(deployment.alias):
        raise field_error("version", "Give either a version or an alias to serve (not both).", code="required")
    if deployment.version_id:
        _servable(deployment.version, "version", deployment.model)
    if deployment.alias and not Alias.objects.filter(model=deployment.model, name=deployment.alias).exists():
        raise field_error("alias", f"{deployment.model} has no alias “{deployment.alias}”.", code="no_such_alias")
    if deployment.canary_version_id:
        _servable(deployment.canary_version, "canary_version", deployment.model)
        if not 0 < deployment.canary_percent < 100:
            raise field_error(
                "canary_percent", "With a canary version, give the share of traffic it takes: 1 to 99.", code="invalid"
            )
    elif deployment.canary_percent:
        raise field_error("canary_percent", "A share of traffic needs a canary_version to go to.", code="invalid")
    if deployment.device not in Device.values:
        raise field_error("device", f"Use one of {', '.join(Device.values)}.", code="invalid_choice")
    if deployment.provider not in Provider.values:
        raise field_error("provider", f"Use one of {', '.join(Provider.values)}.", code="invalid_choice")
    if deployment.max_batch_size > 1:
        served = deployment.version or _alias_target(deployment)
        if served is not None and not batch_axis(served.signature or {}):
            raise field_error(
                "max_batch_size",
                f"{served} has no dynamic batch dimension on all its inputs and outputs, so requests cannot be merged; "
                "use 1.",
                code="not_batchable",
            )
    try:
        deployment.full_clean(exclude=["organization", "model", "version", "canary_version", "created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict, code="invalid") from exc


def _alias_target(deployment: Deployment) -> ModelVersion | None:
    alias = Alias.objects.filter(model=deployment.model, name=deployment.alias).select_related("version").first()
    return alias.version if alias else None


def _write_revision(deployment: Deployment, *, actor: Any, reason: str) -> DeploymentRevision:
    deployment.revision += 1
    deployment.save(update_fields=["revision", "updated_at"])
    return DeploymentRevision.objects.create(
        deployment=deployment,
        number=deployment.revision,
        config=config_of(deployment),
        reason=reason[:300],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )


def create_deployment(*, organization: Any, model: Model, actor: Any, slug: str, **settings: Any) -> Deployment:
    """A new deployment of one of the organization's models (revision 1)."""
    if model.organization_id != organization.pk:
        raise field_error("model", f"{model} is not a model of {organization.slug}.", code="wrong_organization")
    deployment = Deployment(organization=organization, model=model, slug=slug, created_by=actor)
    for name, value in settings.items():
        if name not in CONFIG_FIELDS:
            raise field_error(name, "Not a deployment setting.", code="unknown_field")
        setattr(deployment, name, value)
    _clean(deployment)
    try:
        with transaction.atomic():
            deployment.save()
            revision = _write_revision(deployment, actor=actor, reason="created")
            record_event(
                action="deployment.created",
                organization=organization,
                actor=actor,
                target=deployment,
                metadata={"revision": revision.number, "config": revision.config},
            )
    except IntegrityError:
        raise field_error("slug", f"{organization.slug} already has a deployment “{slug}”.", code="unique") from None
    return deployment


def update_deployment(*, deployment: Deployment, actor: Any, reason: str = "", **changes: Any) -> Deployment:
    """Change a deployment's settings; a new revision when anything changed."""
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().select_related("model", "organization").get(pk=deployment.pk)
        before = config_of(locked)
        for name, value in changes.items():
            if name not in CONFIG_FIELDS:
                raise field_error(name, "Not a deployment setting.", code="unknown_field")
            setattr(locked, name, value)
        if locked.version_id and "alias" not in changes and "version" in changes:
            locked.alias = ""
        if locked.alias and "version" not in changes and "alias" in changes:
            locked.version = None
        _clean(locked)
        if config_of(locked) == before:
            return locked
        locked.save()
        revision = _write_revision(locked, actor=actor, reason=reason or "changed")
        record_event(
            action="deployment.updated",
            organization=locked.organization,
            actor=actor,
            target=locked,
            metadata={"revision": revision.number, "before": before, "after": revision.config},
        )
    return locked


def rollback_deployment(*, deployment: Deployment, actor: Any, to_revision: int | None = None) -> Deployment:
    """Serve again what revision ``to_revision`` served (default: the one before the current), as a new revision."""
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().select_related("model", "organization").get(pk=deployment.pk)
        target_number = to_revision if to_revision is not None else locked.revision - 1
        target = DeploymentRevision.objects.filter(deployment=locked, number=target_number).first()
        if target is None or target_number >= locked.revision:
            raise field_error(
                "revision",
                f"There is no earlier revision {target_number} of {locked} to roll back to (now at {locked.revision}).",
                code="no_such_revision",
            )
        config = target.config
        locked.version = _version_by_uuid(locked.model, config.get("version"))
        locked.canary_version = _version_by_uuid(locked.model, config.get("canary_version"))
        for name in ("alias", "canary_percent", "device", "provider", "max_batch_size", "max_delay_ms",
                     "concurrency", "timeout_seconds", "status"):  # fmt: skip
            if name in config:
                setattr(locked, name, config[name])
        _clean(locked)
        locked.save()
        revision = _write_revision(locked, actor=actor, reason=f"rollback to revision {target_number}")
        record_event(
            action="deployment.rolled_back",
            organization=locked.organization,
            actor=actor,
            target=locked,
            metadata={"revision": revision.number, "to_revision": target_number, "config": revision.config},
        )
    return locked


def _version_by_uuid(model: Model, entry: dict | None) -> ModelVersion | None:
    if not entry:
        return None
    version = ModelVersion.objects.filter(model=model, uuid=entry["uuid"]).first()
    if version is None:
        raise field_error("revision", f"Version “{entry.get('label')}” of that revision no longer exists.", code="gone")
    return version


def delete_deployment(*, deployment: Deployment, actor: Any) -> None:
    with transaction.atomic():
        record_event(
            action="deployment.deleted",
            organization=deployment.organization,
            actor=actor,
            target=deployment,
            metadata={"config": config_of(deployment)},
        )
        deployment.delete()


class DeploymentPaused(Exception):
    """The deployment is paused: a 409 with the reason."""


def serving_choice(deployment: Deployment, *, rng: random.Random | None = None) -> ModelVersion:
    """The version that serves the next request: the canary for ``canary_percent`` of requests, else the main
    version (or the alias's version now)."""
    if deployment.status == DeploymentStatus.PAUSED:
        raise DeploymentPaused(f"The deployment {deployment} is paused.")
    if deployment.canary_version_id and (rng or random).random() * 100 < deployment.canary_percent:
        return deployment.canary_version
    if deployment.version_id:
        return deployment.version
    target = _alias_target(deployment)
    if target is None:
        raise DeploymentPaused(f"The alias “{deployment.alias}” of {deployment.model} no longer exists.")
    return target


def revision_at(deployment: Deployment, when: Any) -> DeploymentRevision | None:
    """The revision that was current at ``when`` (None before the deployment existed)."""
    return (
        DeploymentRevision.objects.filter(deployment=deployment, created_at__lte=when or timezone.now())
        .order_by("-number")
        .first()
    )


_revision_ids: dict[tuple[int, int], int] = {}


def current_revision(deployment: Deployment) -> DeploymentRevision | None:
    """The deployment's current revision (an unsaved stand-in carrying its id: revisions never change, so each
    process asks the database once per revision)."""
    key = (deployment.pk, deployment.revision)
    revision_id = _revision_ids.get(key)
    if revision_id is None:
        found = DeploymentRevision.objects.filter(deployment=deployment, number=deployment.revision).first()
        if found is None:
            return None
        if len(_revision_ids) > 10_000:
            _revision_ids.clear()
        _revision_ids[key] = found.pk
        return found
    return DeploymentRevision(pk=revision_id, deployment=deployment, number=deployment.revision)
