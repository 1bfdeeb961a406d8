"""Dotted layer names on the PyTorch backend.

blockbuilder names every Keras layer by its place in the network (``stage3.bottleneck2.conv1.bn``):
weights load by these names, ``freeze:`` and ``embed --block`` select by them. Keras's PyTorch
backend registers each layer's variables with ``torch.nn.ParameterDict`` under the variable's path
(``stage3.bottleneck2.conv1/kernel``), and PyTorch refuses a parameter name with a dot in it
(``KeyError: parameter name can't contain "."``), so any nested block failed to build on PyTorch.

:func:`allow_dotted_names` makes Keras key those parameters by the path with each dot written as
``:`` (a character no block path holds). Only the torch-side parameter *keys* change: layer names,
variable paths, ``.keras`` files and checkpoints stay the same on every backend. It is applied once,
when :mod:`blockbuilder.compiler.layers` is imported on the PyTorch backend.

Keras has no public way to key those parameters, so the patch replaces three private methods of
``keras.src.backend.torch.layer.TorchLayer`` (:data:`PATCHED`), as they are in the Keras versions of
:data:`KERAS_CHECKED`. Another Keras is refused with one line (what to install, or another backend),
before anything is patched: skipping the patch would leave every nested model failing to build on
PyTorch with PyTorch's own ``KeyError``, and applying it to a ``TorchLayer`` nobody has read could
silently leave variables out of the torch parameters (``model.parameters()``, ``state_dict``,
distributed training). ``tests/test_private_apis.py`` fails, naming the range, once another Keras is
installed: read that version's ``TorchLayer``, then widen the range.
"""

from __future__ import annotations

import re
from typing import Any

from blockbuilder.errors import CommandError

__all__ = ["KERAS_CHECKED", "PATCHED", "allow_dotted_names", "check_keras", "checked_range", "keras_checked",
           "parameter_key"]

KERAS_CHECKED = ((3, 5), (3, 15))  # the first and the last Keras (major, minor) whose TorchLayer this fits
PATCHED = ("_track_variables", "_post_track_variable", "_post_untrack_variable")


def parameter_key(path: str) -> str:
    """The ``torch.nn.ParameterDict`` key of a Keras variable path."""
    return path.replace(".", ":")


def checked_range() -> str:
    """``Keras 3.5 to 3.15``: the versions the patch was checked against."""
    (low_major, low_minor), (high_major, high_minor) = KERAS_CHECKED
    return f"Keras {low_major}.{low_minor} to {high_major}.{high_minor}"


def keras_checked(version: str) -> bool:
    """Whether Keras ``version`` (``3.15.1``, ``3.16.0.dev2026``) is one of :data:`KERAS_CHECKED`."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and KERAS_CHECKED[0] <= (int(match[1]), int(match[2])) <= KERAS_CHECKED[1]


def check_keras(version: str) -> None:
    """Refuse a Keras the patch was not checked against.

    Raises:
        CommandError: ``version`` is outside :data:`KERAS_CHECKED` (one line: what to install instead).
    """
    if keras_checked(version):
        return
    (low_major, low_minor), (high_major, high_minor) = KERAS_CHECKED
    raise CommandError(f"the PyTorch backend needs {checked_range()} (blockbuilder replaces how those versions "
                       f"name torch parameters), but Keras {version} is installed: pip install "
                       f"'keras>={low_major}.{low_minor},<{high_major}.{high_minor + 1}', or use "
                       "KERAS_BACKEND=jax or tensorflow")


def allow_dotted_names() -> None:
    """Key Keras's torch parameters by :func:`parameter_key` (idempotent; PyTorch backend only).

    Raises:
        CommandError: the installed Keras is not one of :data:`KERAS_CHECKED` (nothing is patched).
    """
    import keras

    check_keras(keras.version())
    import torch
    from keras.src.backend.torch.layer import TorchLayer

    if getattr(TorchLayer, "_blockbuilder_keys", False):
        return

    def track_variables(self: Any) -> None:
        self._torch_params = torch.nn.ParameterDict(
            {parameter_key(variable.path): variable.value for variable in self.variables})

    def post_track_variable(self: Any, variable: Any) -> None:
        if hasattr(self, "_torch_params") and parameter_key(variable.path) not in self._torch_params:
            self._torch_params[parameter_key(variable.path)] = variable.value

    def post_untrack_variable(self: Any, variable: Any) -> None:
        if hasattr(self, "_torch_params") and parameter_key(variable.path) in self._torch_params:
            self._torch_params.pop(parameter_key(variable.path))

    TorchLayer._track_variables = track_variables
    TorchLayer._post_track_variable = post_track_variable
    TorchLayer._post_untrack_variable = post_untrack_variable
    TorchLayer._blockbuilder_keys = True
