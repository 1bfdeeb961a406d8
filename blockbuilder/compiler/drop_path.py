"""Drop-path Keras layers, written with ``keras.ops`` only.

:class:`StochasticDepth` drops a residual branch per sample (a ``residual``'s ``drop_path``, ConvNeXt's
and EfficientNet's units). FractalNet's drop-path (Larsson et al. 2017) needs one random decision shared by the whole network
per batch (global drop-path: a single column) and one per join (local drop-path). The decision is
a small tensor made by :class:`DropPathSampler` and fed to every :class:`FractalJoin`, so the model
stays an ordinary functional model that saves and loads as ``.keras`` on any backend.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blockbuilder")
class DropPathSampler(keras.layers.Layer):  # type: ignore[misc]
    """Draws, once per batch, ``[is_global, u]``: whether this batch uses global drop-path, and a
    uniform number that picks the column (``floor(u * columns)`` in every fractal block).

    At inference it returns ``[0, 0]``: no global drop-path.

    Args:
        global_ratio: Fraction of batches trained with global drop-path (the paper mixes 50/50).
        seed: Seed of the random draws.
    """

    def __init__(self, global_ratio: float = 0.5, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.global_ratio = float(global_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return ops.zeros((2,), dtype="float32")
        draw = keras.random.uniform((2,), seed=self.seed_generator)
        is_global = ops.cast(ops.less(draw[0], self.global_ratio), "float32")
        return ops.stack([is_global, draw[1]])

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (2,)

    def compute_output_spec(self, inputs: Any, training: bool | None = None) -> Any:
        return keras.KerasTensor((2,), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "global_ratio": self.global_ratio, "seed": self.seed}


@keras.saving.register_keras_serializable(package="blockbuilder")
class FractalJoin(keras.layers.Layer):  # type: ignore[misc]
    """The mean of the inputs that drop-path keeps; at inference, the mean of all inputs.

    Called on ``[x_1, ..., x_n, control]`` where ``control`` comes from :class:`DropPathSampler`.
    In training, on a local batch each input is dropped with probability ``drop_rate`` but at least
    one is kept; on a global batch only the input of the chosen column is kept (all of them when
    that column does not reach this join).

    Args:
        columns: The fractal block's number of columns C.
        column_ids: The column (0 = deepest) each input comes from.
        drop_rate: Local drop-path probability.
        seed: Seed of the local draws.
    """

    def __init__(self, columns: int, column_ids: list[int], drop_rate: float = 0.15,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = int(columns)
        self.column_ids = [int(c) for c in column_ids]
        self.drop_rate = float(drop_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        *xs, control = inputs
        if not training:
            return self._weighted(xs, ops.ones((len(xs),), dtype="float32"))
        return self._weighted(xs, self.keep_mask(control))

    def keep_mask(self, control: Any) -> Any:
        """A 0/1 vector over the inputs (at least one 1) for one training batch."""
        n = len(self.column_ids)
        draw = keras.random.uniform((n,), seed=self.seed_generator)
        local = ops.cast(ops.greater_equal(draw, self.drop_rate), "float32")
        forced = ops.one_hot(ops.argmax(draw), n, dtype="float32")
        local = ops.where(ops.sum(local) > 0, local, forced)
        chosen = ops.floor(control[1] * self.columns)
        ids = ops.convert_to_tensor(self.column_ids, dtype="float32")
        single = ops.cast(ops.equal(ids, chosen), "float32")
        single = ops.where(ops.sum(single) > 0, single, ops.ones((n,), dtype="float32"))
        return ops.where(control[0] > 0.5, single, local)

    @staticmethod
    def _weighted(xs: list[Any], mask: Any) -> Any:
        dtype = xs[0].dtype
        mask = ops.cast(mask, dtype)
        total = xs[0] * mask[0]
        for index in range(1, len(xs)):
            total = total + xs[index] * mask[index]
        return total / ops.sum(mask)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "columns": self.columns, "column_ids": self.column_ids,
                "drop_rate": self.drop_rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="blockbuilder")
class StochasticDepth(keras.layers.Layer):  # type: ignore[misc]
    """Drops a residual branch for a whole sample with probability ``rate`` while training.

    Kept branches are scaled by ``1 / (1 - rate)``, so inference (which keeps every branch as it
    is) sees the same expected value (Huang et al. 2016; timm's ``DropPath``).

    Args:
        rate: Probability of dropping the branch for a sample.
        seed: Seed of the draws.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype))
        return inputs / keep * mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
