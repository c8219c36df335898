"""The "how to use it" snippets of a model's page work as written: the curl commands and the Python script,
copied from the page served by a live server and run with a real API token, download every file of the version
and check its SHA-256 (the script also opens the model in ONNX Runtime); the page's gpux.yml names the file."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys
import urllib.request

import pytest
import yaml

from apps.accounts.models import TokenScope
from apps.core.access import Visibility
from tests.factories import make_token
from tests.marketplace.conftest import iris_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def snippet(page: str, name: str) -> str:
    found = re.search(rf'<pre class="snippet mb-0" id="snippet-{name}">(.*?)</pre>', page, re.S)
    assert found, f"no {name} snippet on the page"
    return html.unescape(found.group(1))


@pytest.fixture
def page_and_token(live_server, catalog, world):
    model = catalog.model("iris", visibility=Visibility.PUBLIC)
    catalog.published(model, "1.0.0", files={"model.onnx": iris_bytes(), "labels/classes.txt": b"setosa\nversicolor\n"})
    # the gpux.yml tab needs a signature: the one validation would record for iris
    from apps.marketplace.models import ModelVersion

    ModelVersion.objects.filter(model=model).update(
        signature={
            "inputs": [{"name": "float_input", "elem_type": "float32", "shape": [3, 2]}],
            "outputs": [{"name": "label", "elem_type": "int64", "shape": [3]}],
        }
    )
    with urllib.request.urlopen(f"{live_server.url}/models/acme/iris/") as response:
        page = response.read().decode()
    return page, make_token(world.user("viewer"), scope=TokenScope.READ)


def test_the_curl_snippet_downloads_every_file(page_and_token, tmp_path):
    page, token = page_and_token
    script = snippet(page, "curl")
    assert "sha256sum labels/classes.txt model.onnx" in script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "GPUX_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.onnx").read_bytes() == iris_bytes()
    assert (tmp_path / "labels" / "classes.txt").read_bytes() == b"setosa\nversicolor\n"
    assert f"{hashlib.sha256(iris_bytes()).hexdigest()}  model.onnx" in result.stdout


def test_the_python_snippet_downloads_checks_and_opens_the_model(page_and_token, tmp_path):
    page, token = page_and_token
    script = snippet(page, "python")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "GPUX_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.onnx").read_bytes() == iris_bytes()
    assert "float_input" in result.stdout  # ONNX Runtime opened the downloaded model


def test_the_gpux_yml_names_the_downloaded_model(page_and_token):
    page, _token = page_and_token
    manifest = yaml.safe_load(snippet(page, "gpux"))
    assert manifest["name"] == "iris" and manifest["version"] == "1.0.0"
    assert manifest["model"]["source"].endswith("model.onnx")
    assert set(manifest["inputs"]) == {"float_input"}
