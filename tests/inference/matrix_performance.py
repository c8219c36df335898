"""Performance cards in the permission matrix (joined by tests/inference/permission_matrix.py), from DESIGN.md's role
table and docs/user/performance-card.md:

    read a card     whoever may view the model: acme's viewers for a private model (an outsider 404), anyone for
                    a public one
    measure again   members of the model's organization (the ``change`` right on the model): a viewer 403, an
                    outsider 404 on a private model and 403 on a public one, anonymous 401

A private and a public model are each tried (``?model=`` keeps their test ids apart; the API ignores it); the
model's own visibility decides, whatever acme's. Measuring again starts a job, which writes ``job.created``.
"""

from __future__ import annotations

from apps.core.access import Visibility
from tests.inference.matrix_api import runnable_version, version_kwargs
from tests.permissions.matrix import (
    HIDDEN_FROM_ANONYMOUS,
    MEMBER_WRITE,
    OK,
    Access,
    Route,
    Scene,
    table,
)

#                       owner admin member viewer outsider anonymous
CARD_OF_PRIVATE = Access(
    private=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS), public=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS)
)
CARD_OF_PUBLIC = Access(private=table(*[OK] * 6), public=table(*[OK] * 6))
MEASURE_PRIVATE = Access(private=MEMBER_WRITE.private, public=MEMBER_WRITE.private)
MEASURE_PUBLIC = Access(private=MEMBER_WRITE.public, public=MEMBER_WRITE.public)


def measured_version_kwargs(visibility: str):
    """The runnable version of ``visibility``, with a performance card already measured."""
    plain = version_kwargs(visibility)

    def kwargs(scene: Scene, persona: str) -> dict:
        from apps.inference.models import PerformanceCard

        def build(s: Scene):
            return PerformanceCard.objects.create(
                version=runnable_version(s, visibility),
                provider="CPUExecutionProvider",
                device="CPU",
                latency_p50_ms=0.01,
                latency_p95_ms=0.02,
                throughput=100_000.0,
                memory_mb=1.0,
            )

        scene.once(f"performance-card-{visibility}", build)
        return plain(scene, persona)

    return kwargs


API_ROUTES = [
    Route("api:model-version-performance", "GET", CARD_OF_PRIVATE, measured_version_kwargs(Visibility.PRIVATE),
          query={"model": "private"}, under_org=False, of_acme=True),
    Route("api:model-version-performance", "GET", CARD_OF_PUBLIC, measured_version_kwargs(Visibility.PUBLIC),
          query={"model": "public"}, under_org=False, of_acme=True,
          note="a public model's card is public, as the model is"),
    Route("api:model-version-performance", "POST", MEASURE_PRIVATE, version_kwargs(Visibility.PRIVATE),
          query={"model": "private"}, under_org=False, of_acme=True, note="audited as job.created"),
    Route("api:model-version-performance", "POST", MEASURE_PUBLIC, version_kwargs(Visibility.PUBLIC),
          query={"model": "public"}, under_org=False, of_acme=True,
          note="anyone may read a public model's card; only acme's members measure it again"),
]  # fmt: skip
