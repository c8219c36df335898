"""The ONNX Model Zoo backend: the Hugging Face backend preset to the ``onnxmodelzoo`` organization.

Its repositories are served by olah on loopback (tests/peers/olah.py) under ``onnxmodelzoo/``.
"""

from __future__ import annotations

import pytest

from apps.registries.backends.huggingface import HuggingFaceBackend, OnnxModelZooBackend
from apps.registries.sdk import BackendContext, ConfigurationError, NetworkPolicy, backend_class
from apps.registries.sdk.testing import assert_conforms
from tests.peers.olah import OlahServer, olah_server  # noqa: F401  (the session fixture)

LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))
HUB = BackendContext(policy=NetworkPolicy(allowed=("huggingface.co",)))


def test_preset_is_registered_under_its_own_name():
    assert backend_class("onnx-model-zoo") is OnnxModelZooBackend
    assert backend_class("huggingface") is HuggingFaceBackend


def test_preset_sets_the_author_and_hides_it_from_the_form():
    config = OnnxModelZooBackend.clean_config({}, context=HUB)
    form = [parameter["name"] for parameter in OnnxModelZooBackend.describe()["parameters"]]

    assert config["author"] == "onnxmodelzoo"
    assert config["endpoint"] == "https://huggingface.co"
    assert "author" not in form
    assert "endpoint" in form and "token" in form


def test_preset_takes_bare_repository_names_under_onnxmodelzoo():
    config = OnnxModelZooBackend.clean_config({"repositories": ["logreg-iris"]}, context=HUB)

    assert config["repositories"] == ["onnxmodelzoo/logreg-iris"]


def test_bad_repository_name_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError) as raised:
        OnnxModelZooBackend.clean_config({"repositories": ["no spaces please"]}, context=HUB)

    assert raised.value.field == "repositories"


@pytest.mark.slow
def test_preset_conforms_against_olah(olah_server: OlahServer):  # noqa: F811
    config = OnnxModelZooBackend.clean_config(
        {"endpoint": olah_server.endpoint, "repositories": ["logreg-iris"]}, context=LOOPBACK
    )
    backend = OnnxModelZooBackend(config, context=LOOPBACK)

    assert_conforms(backend, missing_model_id="onnxmodelzoo/there-is-no-such-model")
    model = backend.get_model("onnxmodelzoo/logreg-iris")
    assert [remote.path for remote in model.versions[0].files] == ["README.md", "logreg_iris.onnx"]
    assert model.summary == "From the ONNX Model Zoo."
