"""The two Keras layers of built-in blocks that ``keras.layers`` lacks, written with ``keras.ops`` only.

A leaf below the blocks (``channel_pad`` and ``activation`` import it when they build), as
:mod:`~blockbuilder.compiler.drop_path` is for ``fractal``; :mod:`blockbuilder.compiler.layers`, which
registers every block's layers and so imports the blocks, re-exports them.
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
