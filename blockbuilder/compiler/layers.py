"""The few Keras layers ``keras.layers`` lacks, written with ``keras.ops`` only (any backend).

Each is registered as serializable, so a saved ``model.keras`` loads in a fresh process once
``blockbuilder`` is imported (``keras.saving.load_model`` finds them by their registered name).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blockbuilder")
class ChannelPad(keras.layers.Layer):  # type: ignore[misc]
    """Appends ``extra`` zero channels (the parameter-free shortcut of ResNet option A)."""

    def __init__(self, extra: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra = int(extra)

    def call(self, inputs: Any) -> Any:
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[0, self.extra]]
        return ops.pad(inputs, pad)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], input_shape[-1] + self.extra)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "extra": self.extra}


@keras.saving.register_keras_serializable(package="blockbuilder")
class ScaledTanh(keras.layers.Layer):  # type: ignore[misc]
    """LeCun's activation ``1.7159 * tanh(2x / 3)``."""

    def call(self, inputs: Any) -> Any:
        return 1.7159 * ops.tanh(inputs * (2.0 / 3.0))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


# FractalNet's drop-path layers live beside them; block modules may bring their own (Block.keras_layers).
from blockbuilder.compiler import drop_path  # noqa: E402,F401


def register_block_layers() -> None:
    """Register the custom layers of every block type (so a saved ``.keras`` file finds them)."""
    from blockbuilder.blocks import block_names, get_block

    for name in block_names():
        block = get_block(name)
        if block is not None:
            block.keras_layers()


register_block_layers()

if keras.backend.backend() == "torch":
    from blockbuilder.compiler.torch_names import allow_dotted_names

    allow_dotted_names()
