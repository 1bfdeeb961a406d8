"""The Keras layers of built-in blocks that ``keras.layers`` lacks, written with ``keras.ops`` only.

A leaf below the blocks (``channel_pad``, ``activation``, ``channel_slice``, ``channel_shuffle`` and
``normalization`` import it when they build), as
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


@keras.saving.register_keras_serializable(package="blockbuilder")
class ChannelSlice(keras.layers.Layer):  # type: ignore[misc]
    """Channels ``start`` to ``stop`` (``stop`` excluded) of the last axis (ShuffleNet v2's channel split)."""

    def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, inputs: Any) -> Any:
        return inputs[..., self.start:self.stop]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="blockbuilder")
class ChannelShuffle(keras.layers.Layer):  # type: ignore[misc]
    """ShuffleNet's channel shuffle: channel ``g * (C / groups) + j`` moves to ``j * groups + g``.

    The channels, seen as a ``groups × (C / groups)`` matrix, are transposed (torchvision's
    ``channel_shuffle`` on the channels-last layout).
    """

    def __init__(self, groups: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, inputs: Any) -> Any:
        *spatial, channels = inputs.shape[1:]
        grouped = ops.reshape(inputs, (-1, *spatial, self.groups, channels // self.groups))
        axes = list(range(len(spatial) + 1))
        moved = ops.transpose(grouped, (*axes, len(axes) + 1, len(axes)))
        return ops.reshape(moved, (-1, *spatial, channels))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="blockbuilder")
class StoredNormalization(keras.layers.Layer):  # type: ignore[misc]
    """``(x - mean) / sqrt(variance)`` per channel, with the statistics held as non-trainable weights.

    Keras' ``Normalization`` before it is adapted keeps them the same way (``mean``, ``variance``,
    ``count``: keras.applications' EfficientNet has one, so its weight files hold them), but it reads
    them only when it is built or adapted: weights loaded into it later (``set_weights``, a weight
    file loaded by order) would be ignored. This layer reads them at every call, and computes what
    ``Normalization`` computes: ``(x - mean) / maximum(sqrt(variance), epsilon)``.

    Args:
        mean: The initial mean, one value per channel.
        variance: The initial variance, one value per channel.
    """

    def __init__(self, mean: list[float], variance: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_mean = [float(v) for v in mean]
        self.initial_variance = [float(v) for v in variance]

    def build(self, input_shape: Any) -> None:
        channels = (input_shape[-1],)
        self.mean = self.add_weight(name="mean", shape=channels, trainable=False,
                                    initializer=keras.initializers.Constant(self.initial_mean))
        self.variance = self.add_weight(name="variance", shape=channels, trainable=False,
                                        initializer=keras.initializers.Constant(self.initial_variance))
        self.count = self.add_weight(name="count", shape=(), dtype="int", initializer="zeros", trainable=False)

    def call(self, inputs: Any) -> Any:
        mean = ops.cast(self.mean, inputs.dtype)
        deviation = ops.maximum(ops.sqrt(ops.cast(self.variance, inputs.dtype)), keras.backend.epsilon())
        return (inputs - mean) / deviation

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.initial_mean, "variance": self.initial_variance}
