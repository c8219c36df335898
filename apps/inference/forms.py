"""Forms of the inference pages: the "try it" form, generated from a version's signature and gpux.yml, and the
deployment forms.

The "try it" form is described without loading any of the version's files (the web process never opens a
tokenizer or a model): the manifest says whether the model reads text (``preprocessing.tokenizer``) or images
(``preprocessing.resize``), the signature names its tensors. What the form collects becomes the same JSON
request the API takes (``{"inputs": {...}}``), read by ``predictions.read_json_request``; a refusal names
``inputs.<field>``, which ``add_input_errors`` shows on the matching form field.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.access import Visibility
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.core.validators import SLUG_VALIDATOR
from apps.inference.models import Deployment, Device, Provider
from apps.inference.predictions import sync_timeout_maximum
from apps.inference.processing.errors import ProcessingError
from apps.inference.processing.image import ACCEPT, MAX_IMAGE_BYTES, image_input, image_input_problem
from apps.inference.processing.outputs import OutputDecoder
from apps.inference.processing.text import TOKENIZER_INPUTS
from apps.inference.runtime.signature import shape_text

# What the page waits for an answer before it links to the job instead (the API's own default is longer: a
# page is a person watching a spinner).
PAGE_WAIT_SECONDS = 10.0
TENSOR_PREFIX = "tensor_"
EXAMPLE_DIMENSION = 1  # a dynamic dimension in the example placeholder
# What a text model's form starts with when its gpux.yml gives no example.
DEFAULT_TEXT_EXAMPLE = "A man is playing the guitar."
# A tensor input up to this many values starts filled in with zeros of its shape when the gpux.yml gives no example;
# past it (an image-sized tensor) only the placeholder shows the nesting.
MAX_EXAMPLE_VALUES = 4096


def page_wait_seconds() -> float:
    """The seconds a "try it" submission waits by default (``INFERENCE_PAGE_WAIT_SECONDS``)."""
    return float(getattr(settings, "INFERENCE_PAGE_WAIT_SECONDS", PAGE_WAIT_SECONDS))


def example_tensor(entry: dict[str, Any]) -> str:
    """A JSON placeholder of the input's shape, zeros of its type: ``[[0.0, 0.0, 0.0, 0.0]]`` for float [?, 4]."""
    shape = entry.get("shape")
    kind = entry.get("elem_type") or ""
    zero: Any = 0.0 if kind.startswith(("float", "bfloat")) else ('""' if kind == "string" else 0)
    if kind == "bool":
        zero = "false"
    if not isinstance(shape, list):
        return "[" + str(zero) + "]"
    dims = [dim if isinstance(dim, int) and dim > 0 else EXAMPLE_DIMENSION for dim in shape]
    if not dims:
        return str(zero)
    if _count(dims) > 64:  # an image-sized tensor: the placeholder says the nesting, not every value
        return "[" * len(dims) + f"{zero}, …" + "]" * len(dims)

    def build(level: int) -> str:
        if level == len(dims):
            return str(zero)
        return "[" + ", ".join(build(level + 1) for _ in range(dims[level])) + "]"

    return build(0)


def zeros_example(entry: dict[str, Any]) -> str | None:
    """Valid JSON zeros of the input's shape and type (a dynamic dimension as 1), or None past MAX_EXAMPLE_VALUES."""
    shape = entry.get("shape")
    dims = [dim if isinstance(dim, int) and dim > 0 else EXAMPLE_DIMENSION for dim in shape or []]
    if isinstance(shape, list) and _count(dims) > MAX_EXAMPLE_VALUES:
        return None
    kind = entry.get("elem_type") or ""
    zero: Any = 0.0 if kind.startswith(("float", "bfloat")) else ("" if kind == "string" else 0)
    if kind == "bool":
        zero = False
    value: Any = zero
    for dim in reversed(dims):
        value = [value] * dim
    if not isinstance(shape, list):
        value = [zero]
    return json.dumps(value)


def manifest_example(manifest: dict[str, Any]) -> dict[str, Any]:
    """The first of the gpux.yml's ``examples`` (inputs as the API takes them), or ``{}``."""
    examples = manifest.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return examples[0]
    return {}


def _example_text(value: Any) -> str | None:
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) and value.strip() else None


def _count(dims: list[int]) -> int:
    total = 1
    for dim in dims:
        total *= dim
    return total


def describe_version(version: Any) -> dict[str, Any]:
    """What the "try it" form of ``version`` asks for, from its manifest and signature alone (no file is read).

    ``{"kind": "text"|"image"|"tensors", "fields": [...], "answer": "classification"|"embeddings"|...|"tensors"}``,
    the same shape as ``Processor.describe()``, which needs the tokenizer file loaded. Each field's ``example`` is
    what the form starts with: the gpux.yml's first example, else a sentence for text and zeros for a tensor.
    """
    manifest = (version.onnx_info or {}).get("manifest") or {}
    signature = version.signature or {}
    inputs = [entry for entry in signature.get("inputs") or [] if entry.get("name")]
    names = [entry["name"] for entry in inputs]
    preprocessing = manifest.get("preprocessing") or {}
    example = manifest_example(manifest)
    described = {entry.get("name"): entry for entry in manifest.get("inputs") or [] if isinstance(entry, dict)}
    kind = "tensors"
    fields: list[dict[str, Any]] = []
    if preprocessing.get("tokenizer") and "input_ids" in names and all(name in TOKENIZER_INPUTS for name in names):
        kind = "text"
        input_ids = next((e for e in manifest.get("inputs") or [] if e.get("name") == "input_ids"), {})
        max_tokens = preprocessing.get("max_length") or input_ids.get("max_length")
        past = f"a text past {max_tokens} tokens is cut there" if max_tokens else "a long text is cut at its limit"
        fields = [
            {
                "name": "text",
                "type": "textarea",
                "label": "Text",
                "max_tokens": max_tokens,
                "help": f"Tokenized with the version's {preprocessing['tokenizer']}; {past}.",
                "example": _example_text(example.get("text")) or DEFAULT_TEXT_EXAMPLE,
            }
        ]
    elif preprocessing.get("resize") and len(inputs) == 1:
        size = (int(preprocessing["resize"][0]), int(preprocessing["resize"][1]))
        entry = image_input(inputs)
        if image_input_problem(entry, size=size, normalize=preprocessing.get("normalize")) is None:
            kind = "image"
            fields = [
                {
                    "name": "image",
                    "type": "file",
                    "label": "Image",
                    "accept": ACCEPT,
                    "size": list(size),
                    "help": f"A PNG or JPEG file (at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB); "
                    f"it is resized to {size[0]} × {size[1]}.",
                }
            ]
    if kind == "tensors":
        fields = []
        for entry in inputs:
            given = example.get(entry["name"])
            fields.append(
                {
                    "name": entry["name"],
                    "type": entry.get("elem_type"),
                    "shape": entry.get("shape"),
                    "entry": entry,
                    "description": (described.get(entry["name"]) or {}).get("description", ""),
                    "example": json.dumps(given) if given is not None else zeros_example(entry),
                }
            )
    try:
        answer = OutputDecoder(manifest=manifest, signature=signature, has_tokenizer=kind == "text").answer
    except ProcessingError:
        answer = None  # the worker will say what is wrong with the manifest, naming its field
    answer = answer or "tensors"
    return {"kind": kind, "fields": fields, "answer": answer, "answer_label": answer.replace("+", " and ")}


class TryItForm(forms.Form):
    """The inputs of one prediction, one field per thing the model reads, and how long the page waits."""

    timeout = forms.FloatField(
        label="Wait up to (seconds)",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "any", "class": "form-control-sm", "style": "max-width: 7rem"}),
        help_text="Past that, the page links to the job, which goes on running.",
    )

    def __init__(self, *args: Any, description: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.description = description
        longest = sync_timeout_maximum()
        self.fields["timeout"].max_value = longest
        self.fields["timeout"].validators.append(_at_most(longest, "The longest a page may wait is {limit:g} seconds."))
        self.fields["timeout"].initial = page_wait_seconds()
        self.input_fields: dict[str, str] = {}  # model input ("text", "image" or a tensor's name) -> form field
        kind = description["kind"]
        fields: dict[str, forms.Field] = {}
        if kind == "text":
            spec = description["fields"][0]
            fields["text"] = forms.CharField(
                label=spec["label"],
                strip=False,
                max_length=settings.INFERENCE_MAX_REQUEST_BYTES,
                widget=forms.Textarea(attrs={"rows": 3, "placeholder": "I play the guitar."}),
                help_text=spec["help"],
                initial=spec.get("example"),
            )
            self.input_fields["text"] = "text"
        elif kind == "image":
            spec = description["fields"][0]
            fields["image"] = forms.FileField(
                label=spec["label"], widget=forms.FileInput(attrs={"accept": spec["accept"]}), help_text=spec["help"]
            )
            self.input_fields["image"] = "image"
        else:
            for index, spec in enumerate(description["fields"]):
                name = f"{TENSOR_PREFIX}{index}"
                described = f" {spec['description']}." if spec.get("description") else ""
                fields[name] = forms.CharField(
                    label=spec["name"],
                    widget=forms.Textarea(
                        attrs={"rows": 2, "class": "font-monospace", "placeholder": example_tensor(spec["entry"])}
                    ),
                    help_text=f"{spec['type'] or 'a tensor'} {shape_text(spec['shape'])}: a JSON nested list."
                    f"{described}",
                    initial=spec.get("example"),
                )
                self.input_fields[spec["name"]] = name
        # The inputs first, the wait last.
        timeout = self.fields.pop("timeout")
        self.fields.update(fields)
        self.fields["timeout"] = timeout

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for model_input, name in self.input_fields.items():
            if name not in cleaned:
                continue
            if name.startswith(TENSOR_PREFIX):
                try:
                    cleaned[name] = loads_json(cleaned[name])
                except json.JSONDecodeError as exc:
                    self.add_error(
                        name, f"{model_input}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
                    )
                except NestingTooDeep as exc:
                    self.add_error(name, f"{model_input}: {exc}.")
                except InvalidText as exc:
                    self.add_error(name, f"{exc.under(model_input)}: {exc.reason}.")
            elif name == "image":
                upload = cleaned[name]
                if upload.size > MAX_IMAGE_BYTES:
                    self.add_error(
                        name,
                        f"image: {upload.size:,} bytes, past the limit of {MAX_IMAGE_BYTES:,} bytes; "
                        "send a smaller file.",
                    )
        return cleaned

    def request_body(self) -> dict[str, Any]:
        """The API's JSON request for what was typed: ``{"inputs": {...}}`` (an image as base64)."""
        inputs: dict[str, Any] = {}
        for model_input, name in self.input_fields.items():
            value = self.cleaned_data[name]
            if name == "image":
                value.seek(0)
                value = base64.b64encode(value.read()).decode("ascii")
            inputs[model_input] = value
        return {"inputs": inputs}

    def wait_seconds(self) -> float:
        value = self.cleaned_data.get("timeout")
        return page_wait_seconds() if value is None else float(value)


def _at_most(limit: float, message: str):
    def check(value: Any) -> None:
        if value is not None and value > limit:
            raise ValidationError(message.format(limit=limit), code="max_value")

    return check


def add_input_errors(form: TryItForm, errors: dict[str, list[str]]) -> None:
    """Show the service's errors by field (``inputs.float_input``, ``inputs.text[1]``) on the form's fields; the
    rest on top, still naming their field."""
    for field, messages in errors.items():
        target = _form_field_for(form, field)
        for message in messages:
            text = str(message)
            form.add_error(target, text if target else f"{field}: {text}")


def _form_field_for(form: TryItForm, field: str) -> str | None:
    if not field.startswith("inputs."):
        return None
    rest = field.removeprefix("inputs.")
    # The longest model input name first: "ids" must not take the errors of "ids_mask".
    for model_input in sorted(form.input_fields, key=len, reverse=True):
        if rest == model_input or rest.startswith((f"{model_input}[", f"{model_input}.")):
            return form.input_fields[model_input]
    return None


def messages_of(error: ValidationError) -> dict[str, list[str]]:
    """A service's ValidationError as ``{field: [messages]}`` (``non_field_errors`` for one without a field)."""
    if hasattr(error, "error_dict"):
        return error.message_dict
    return {"non_field_errors": list(error.messages)}


# --- deployments --------------------------------------------------------------------------------------------------


class DeploymentForm(forms.Form):
    """A deployment's settings. Versions are named by label, as in the API; the service decides the rest (a
    version that is not servable, an alias that does not exist, a canary without a share) and its errors are
    shown on these fields."""

    slug = forms.CharField(
        max_length=50,
        validators=[SLUG_VALIDATOR],
        help_text="Its stable name in URLs: <code>/orgs/&lt;org&gt;/deployments/&lt;slug&gt;/predict</code>.",
    )
    model = forms.ChoiceField(label="Model", help_text="A model of this organization.")
    description = forms.CharField(max_length=500, required=False)
    version = forms.CharField(
        max_length=64,
        required=False,
        label="Version to serve",
        help_text="A published version's label; or leave empty and name an alias below.",
        widget=forms.TextInput(attrs={"list": "deployment-versions", "autocomplete": "off"}),
    )
    alias = forms.CharField(
        max_length=64,
        required=False,
        label="…or an alias",
        help_text="Serve whatever the alias points at when a request comes (moving the alias moves the deployment).",
        widget=forms.TextInput(attrs={"list": "deployment-aliases", "autocomplete": "off"}),
    )
    canary_version = forms.CharField(
        max_length=64,
        required=False,
        label="Canary version",
        help_text="Optional: a second version that takes a share of the requests.",
        widget=forms.TextInput(attrs={"list": "deployment-versions", "autocomplete": "off"}),
    )
    canary_percent = forms.IntegerField(
        min_value=0, max_value=100, initial=0, label="Canary share (%)", help_text="1 to 99 with a canary version."
    )
    device = forms.ChoiceField(choices=Device.choices, initial=Device.AUTO)
    provider = forms.ChoiceField(choices=Provider.choices, initial=Provider.AUTO)
    max_batch_size = forms.IntegerField(
        min_value=1,
        max_value=1024,
        initial=1,
        label="Max batch size",
        help_text="Concurrent requests merged into one run, up to this many items (1: no batching).",
    )
    max_delay_ms = forms.IntegerField(
        min_value=0, max_value=1000, initial=5, label="Max delay (ms)", help_text="How long a batch waits to fill."
    )
    concurrency = forms.IntegerField(
        min_value=1, max_value=10_000, initial=64, help_text="Synchronous requests in flight; more answer 429."
    )
    timeout_seconds = forms.IntegerField(
        min_value=1, max_value=3600, initial=30, label="Timeout (s)", help_text="A run past it is stopped and failed."
    )
    visibility = forms.ChoiceField(
        choices=Visibility.choices,
        initial=Visibility.PRIVATE,
        help_text="Who may see (and, signed in, run) the endpoint beyond the organization.",
    )
    reason = forms.CharField(max_length=300, required=False, help_text="Why: kept in the revision history.")

    SETTINGS = (
        "description", "version", "alias", "canary_version", "canary_percent", "device", "provider", "max_batch_size",
        "max_delay_ms", "concurrency", "timeout_seconds", "visibility",
    )  # fmt: skip

    def __init__(self, *args: Any, models: list[Any], deployment: Deployment | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deployment = deployment
        self.fields["model"].choices = [("", "—")] + [(model.name, model.name) for model in models]
        if deployment is None:
            del self.fields["reason"]
        else:
            del self.fields["slug"]
            del self.fields["model"]
            if not self.is_bound:
                self.initial.update(
                    {
                        "description": deployment.description,
                        "version": deployment.version.label if deployment.version_id else "",
                        "alias": deployment.alias,
                        "canary_version": deployment.canary_version.label if deployment.canary_version_id else "",
                        "canary_percent": deployment.canary_percent,
                        "device": deployment.device,
                        "provider": deployment.provider,
                        "max_batch_size": deployment.max_batch_size,
                        "max_delay_ms": deployment.max_delay_ms,
                        "concurrency": deployment.concurrency,
                        "timeout_seconds": deployment.timeout_seconds,
                        "visibility": deployment.visibility,
                    }
                )

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug == "new":
            raise ValidationError("“new” is the address of the page that creates deployments; choose another slug.")
        return slug

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        version, alias = cleaned.get("version"), cleaned.get("alias")
        if "version" in cleaned and "alias" in cleaned and bool(version) == bool(alias):
            self.add_error("version", "Give either a version or an alias to serve (not both).")
        return cleaned

    def settings_for(self, model: Any) -> dict[str, Any]:
        """The service's keyword arguments: versions looked up by label among ``model``'s versions (an unknown
        label is an error on its field, raised as the service would)."""
        from apps.marketplace.models import ModelVersion

        data = {name: self.cleaned_data[name] for name in self.SETTINGS if name in self.cleaned_data}
        for field in ("version", "canary_version"):
            label = data.get(field) or ""
            if not label:
                data[field] = None
                continue
            version = ModelVersion.objects.filter(model=model, label=label).first()
            if version is None:
                raise ValidationError({field: [f"{model} has no version “{label}”."]})
            data[field] = version
        return data


# --- "Run on a file" (a batch job from a page) -------------------------------------------------------------------


class RunOnFileForm(forms.Form):
    """The model page's "Run on a file": a CSV, JSON Lines or .npz file of rows, run as one batch job."""

    file = forms.FileField(
        label="File of rows",
        allow_empty_file=True,  # the batch service says why an empty file is refused, naming ``file``
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.jsonl,.ndjson,.npz"}),
    )
    format = forms.ChoiceField(
        label="Format",
        required=False,
        choices=[
            ("", "from the file name (.csv, .jsonl, .npz)"),
            ("csv", "CSV"),
            ("jsonl", "JSON Lines"),
            ("npz", "NumPy .npz"),
        ],
    )


def batch_file_example(version: Any) -> dict[str, str]:
    """How a file of rows for ``version`` looks, from its signature and gpux.yml (no file read): ``{"format",
    "text"}``, two example lines a person can copy."""
    from apps.inference.batch.formats import inputs_of, vector_input

    described = describe_version(version)
    if described["kind"] == "text":
        example = described["fields"][0].get("example") or DEFAULT_TEXT_EXAMPLE
        return {"format": "CSV", "text": f'text\n"{example.replace(chr(34), chr(34) * 2)}"\n'}
    inputs = inputs_of(version)
    vector = vector_input(inputs)
    fields = {field["name"]: field for field in described["fields"]}
    if vector is not None:
        name, width = vector
        values: Any = None
        try:
            values = json.loads(fields.get(name, {}).get("example") or "null")
        except ValueError:
            values = None
        while isinstance(values, list) and values and isinstance(values[0], list):
            values = values[0]
        if not (isinstance(values, list) and len(values) == width):
            values = [0] * width
        header = ",".join(f"{name}_{index}" for index in range(width))
        return {"format": "CSV", "text": f"{header}\n{','.join(str(value) for value in values)}\n"}
    row = {}
    for entry in inputs:
        example = fields.get(entry["name"], {}).get("example")
        try:
            row[entry["name"]] = json.loads(example) if example else None
        except ValueError:
            row[entry["name"]] = None
    return {"format": "JSON Lines", "text": json.dumps(row) + "\n"}
