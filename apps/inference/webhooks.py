"""Webhooks of asynchronous predictions: a signed POST of the job's answer when it finishes, retried with
backoff, every attempt kept in ``WebhookDelivery`` (the delivery log).

Signing: ``X-GPUX-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the organization's
webhook secret (``WebhookSecret``, encrypted at rest like registry credentials; admins read and rotate it through
the API). A receiver recomputes the HMAC over the raw body and refuses a timestamp older than a few minutes.
URLs are checked against SSRF when the request is made and again as each delivery connects, to the address that
was vetted (``apps.core.outbound``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from apps.core.errors import field_error
from apps.core.jobs import Job
from apps.core.outbound import AddressPolicy, UnsafeAddress, pinned_client
from apps.inference.models import WebhookDelivery, WebhookSecret
from apps.registries.crypto import decrypt_credentials, encrypt_credentials

SIGNATURE_HEADER = "X-GPUX-Signature"


def webhook_policy() -> AddressPolicy:
    return AddressPolicy(
        allowed=tuple(settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS),
        setting="GPUX_WEBHOOK_ALLOWED_NETWORKS",
        purpose="webhooks",
    )


def check_webhook_url(url: Any) -> str:
    """The URL if webhooks may call it; a 400 naming ``webhook_url`` otherwise."""
    if url in (None, ""):
        return ""
    if not isinstance(url, str) or len(url) > 2000:
        raise field_error("webhook_url", "Expected an http(s) URL of at most 2000 characters.", code="invalid")
    try:
        webhook_policy().check_url(url, field="webhook_url")
    except UnsafeAddress as exc:
        raise field_error("webhook_url", exc.message, code="unsafe_url") from exc
    return url


def secret_of(organization_id: int, *, create: bool = True) -> str | None:
    """The organization's webhook secret (made on first use)."""
    row = WebhookSecret.objects.filter(organization_id=organization_id).first()
    if row is None:
        if not create:
            return None
        with transaction.atomic():
            row, _ = WebhookSecret.objects.get_or_create(
                organization_id=organization_id,
                defaults={"secret": encrypt_credentials({"secret": "whsec_" + secrets.token_urlsafe(32)})},
            )
    return decrypt_credentials(row.secret)["secret"]


def rotate_secret(organization_id: int, *, actor: Any = None) -> str:
    """A new secret for the organization; the old one stops working at once. Audited (not the secret)."""
    from django.utils import timezone

    from apps.audit.services import record_event

    value = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        row, _ = WebhookSecret.objects.update_or_create(
            organization_id=organization_id,
            defaults={"secret": encrypt_credentials({"secret": value}), "rotated_at": timezone.now()},
        )
        record_event(action="webhook_secret.rotated", organization=organization_id, actor=actor, target=row)
    return value


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds (what a receiver does)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def queue_webhook(job: Job) -> None:
    """Queue the first delivery attempt of a finished job's webhook (after the outcome committed)."""
    from apps.inference.tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.apply_async((job.pk, 1), queue="default"))


def deliver(job_id: int, attempt: int) -> str:
    """POST the job's answer to its webhook, log the attempt; schedule the next one when it failed."""
    from apps.inference.predictions import answer_of

    job = Job.objects.filter(pk=job_id).select_related("inference").first()
    if job is None or not getattr(job, "inference", None) or not job.inference.webhook_url:
        return "nothing"
    if (
        WebhookDelivery.objects.filter(job=job, attempt=attempt).exists()
        or WebhookDelivery.objects.filter(job=job, succeeded=True).exists()
    ):
        return "done"  # a redelivered message: this attempt already ran
    url = job.inference.webhook_url
    body = json.dumps({"event": "job.finished", **answer_of(job)}, cls=DjangoJSONEncoder).encode()
    delivery = WebhookDelivery(job=job, url=url, attempt=attempt)
    started = time.perf_counter()
    try:
        # The client vets the URL as it connects and sends the POST to the vetted address (no second lookup).
        with pinned_client(
            webhook_policy(), field="webhook_url", timeout=settings.INFERENCE_WEBHOOK_TIMEOUT_SECONDS
        ) as client:
            response = client.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(secret_of(job.organization_id), body),
                    "X-GPUX-Job": str(job.uuid),
                    "X-GPUX-Delivery-Attempt": str(attempt),
                },
            )
        delivery.status_code = response.status_code
        delivery.response_excerpt = response.text[:1000]
        delivery.succeeded = 200 <= response.status_code < 300
        if not delivery.succeeded:
            delivery.error = f"The receiver answered HTTP {response.status_code}."
    except UnsafeAddress as exc:
        delivery.error = exc.message[:1000]
    except httpx.HTTPError as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"[:1000]
    delivery.duration_ms = (time.perf_counter() - started) * 1000
    delivery.save()
    if delivery.succeeded:
        return "delivered"
    if attempt < settings.INFERENCE_WEBHOOK_ATTEMPTS:
        from apps.inference.tasks import deliver_webhook

        delay = settings.INFERENCE_WEBHOOK_RETRY_SECONDS * (2 ** (attempt - 1))
        deliver_webhook.apply_async((job.pk, attempt + 1), countdown=delay, queue="default")
        return "retrying"
    return "gave up"
