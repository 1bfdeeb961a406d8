"""Dotted layer names on the PyTorch backend.

blockbuilder names every Keras layer by its place in the network (``stage3.bottleneck2.conv1.bn``):
weights load by these names, ``freeze:`` and ``embed --block`` select by them. Keras's PyTorch
backend registers each layer's variables with ``torch.nn.ParameterDict`` under the variable's path
(``stage3.bottleneck2.conv1/kernel``), and PyTorch refuses a parameter name with a dot in it
(``KeyError: parameter name can't contain "."``), so any nested block failed to build on PyTorch.

:func:`allow_dotted_names` makes Keras key those parameters by the path with each dot written as
``:`` (a character no block path holds). Only the torch-side parameter *keys* change: layer names,
variable paths, ``.keras`` files and checkpoints stay the same on every backend. It is applied once,
when :mod:`blockbuilder.compiler.layers` is imported on the PyTorch backend; the three methods
replaced are those of ``keras.src.backend.torch.layer.TorchLayer`` (Keras 3.5 to 3.15).
"""

from __future__ import annotations

from typing import Any

__all__ = ["allow_dotted_names", "parameter_key"]


def parameter_key(path: str) -> str:
    """The ``torch.nn.ParameterDict`` key of a Keras variable path."""
    return path.replace(".", ":")


def allow_dotted_names() -> None:
    """Key Keras's torch parameters by :func:`parameter_key` (idempotent; PyTorch backend only)."""
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
