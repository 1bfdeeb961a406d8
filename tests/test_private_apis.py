"""Other packages' private APIs: each replaced by a public one, or pinned to the versions it was checked against.

* Optuna: none is left. A dead worker's trial is failed with ``study.tell(number, state=FAIL)`` and the
  trial that runs it again says so (``rerun_of``); nothing is written through ``trial._trial_id``.
* Keras: the PyTorch backend's ``TorchLayer`` has no public way to key its torch parameters, so
  ``blockbuilder/compiler/torch_names.py`` replaces three of its methods, for the Keras versions of
  ``KERAS_CHECKED`` only. A test here fails, naming that range, as soon as another Keras is installed;
  at run time another Keras is a one-line error on the PyTorch backend (and nothing is patched).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path

import keras
import pytest

from blockbuilder.compiler import torch_names
from blockbuilder.errors import CommandError
from conftest import REPO

PRIVATE_OPTUNA = re.compile(r"\._(?:trial_id|storage|study_id|backend|cached_frozen_trial)\b")


def test_no_private_optuna_attribute_is_used():
    files = [*sorted((REPO / "blockbuilder" / "search").glob("*.py")),
             *sorted((REPO / "blockbuilder" / "cli").glob("search*.py"))]
    used = {path.name: PRIVATE_OPTUNA.findall(path.read_text(encoding="utf-8")) for path in files}
    assert {name: found for name, found in used.items() if found} == {}


# -- Keras' TorchLayer ----------------------------------------------------------------------------------------


def test_the_installed_keras_is_one_the_torch_patch_was_checked_against():
    assert torch_names.keras_checked(keras.version()), (
        f"blockbuilder/compiler/torch_names.py replaces methods of Keras' private TorchLayer and was checked "
        f"against {torch_names.checked_range()} only; Keras {keras.version()} is installed: check the patch "
        f"against its keras/src/backend/torch/layer.py, then widen KERAS_CHECKED")


def test_the_methods_the_patch_replaces_are_those_of_the_installed_keras():
    """Read from the source (importing it needs PyTorch): each exists, and keys the parameters by path."""
    spec = importlib.util.find_spec("keras")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent / "src" / "backend" / "torch" / "layer.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    layer = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "TorchLayer")
    methods = {node.name: ast.unparse(node) for node in layer.body if isinstance(node, ast.FunctionDef)}
    for name in torch_names.PATCHED:
        assert name in methods and "variable.path" in methods[name], (
            f"Keras {keras.version()}'s TorchLayer.{name} is not what torch_names.py replaces "
            f"(checked against {torch_names.checked_range()})")


@pytest.mark.parametrize("version", ["3.4.1", "3.16.0", "3.16.0.dev2026010101", "4.0.0", "2.15.0", "nightly"])
def test_another_keras_is_a_one_line_error_and_nothing_is_patched(version, monkeypatch):
    monkeypatch.setattr(keras, "version", lambda: version)
    monkeypatch.setitem(sys.modules, "torch", None)  # importing it would fail: the check comes first
    with pytest.raises(CommandError) as error:
        torch_names.allow_dotted_names()
    assert str(error.value) == (
        f"the PyTorch backend needs Keras 3.5 to 3.15 (blockbuilder replaces how those versions name torch "
        f"parameters), but Keras {version} is installed: pip install 'keras>=3.5,<3.16', or use "
        f"KERAS_BACKEND=jax or tensorflow")


class FakeTorchLayer:
    """Stands in for ``keras.src.backend.torch.layer.TorchLayer`` (no PyTorch here)."""

    def __init__(self, *paths: str) -> None:
        self.variables = [types.SimpleNamespace(path=path, value=path.upper()) for path in paths]

    def _track_variables(self) -> None:
        raise AssertionError("not replaced")

    _post_track_variable = _post_untrack_variable = _track_variables


@pytest.mark.parametrize("version", ["3.5.0", "3.10.2", "3.15.1"])
def test_a_checked_keras_gets_the_patch_once(version, monkeypatch):
    torch = types.ModuleType("torch")
    torch.nn = types.SimpleNamespace(ParameterDict=dict)  # type: ignore[attr-defined]
    module = types.ModuleType("keras.src.backend.torch.layer")
    module.TorchLayer = type("TorchLayer", (FakeTorchLayer,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "keras.src.backend.torch.layer", module)
    monkeypatch.setattr(keras, "version", lambda: version)
    torch_names.allow_dotted_names()
    replaced = module.TorchLayer._track_variables
    torch_names.allow_dotted_names()
    assert module.TorchLayer._track_variables is replaced  # once
    layer = module.TorchLayer("stage1.conv1/kernel")
    layer._track_variables()
    assert layer._torch_params == {"stage1:conv1/kernel": "STAGE1.CONV1/KERNEL"}
    layer._post_track_variable(types.SimpleNamespace(path="stage1.bn/gamma", value="G"))
    layer._post_untrack_variable(layer.variables[0])
    assert layer._torch_params == {"stage1:bn/gamma": "G"}
