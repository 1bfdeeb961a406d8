"""The few Keras layers ``keras.layers`` lacks, written with ``keras.ops`` only (any backend).

Each is registered as serializable, so a saved ``model.keras`` loads in a fresh process once
``blockbuilder`` is imported (``keras.saving.load_model`` finds them by their registered name).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blockbuilder")
class ChannelPad(keras.layers.Layer):
    """Appends ``extra`` zero channels (the parameter-free shortcut of ResNet option A)."""

    def __init__(self, extra: int, **kwargs):
        super().__init__(**kwargs)
        self.extra = int(extra)

    def call(self, inputs):
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[0, self.extra]]
        return ops.pad(inputs, pad)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.extra)

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}


@keras.saving.register_keras_serializable(package="blockbuilder")
class ScaledTanh(keras.layers.Layer):
    """LeCun's activation ``1.7159 * tanh(2x / 3)``."""

    def call(self, inputs):
        return 1.7159 * ops.tanh(inputs * (2.0 / 3.0))

    def compute_output_shape(self, input_shape):
        return input_shape


# The layers of blockbuilder.blocks.fractal (FractalNet drop-path, squeeze-and-excitation) register too.
from blockbuilder.compiler import drop_path as layers_extra  # noqa: E402,F401
