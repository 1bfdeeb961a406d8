"""BatchNorm re-estimation (the trainer's step after each short epoch) gives the exact mean of the batch
statistics however it runs (eagerly, or as one traced function kept across epochs), leaves frozen
layers and the momentum alone, and gives the same values when repeated."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockbuilder.training.batchnorm import recalibrate


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    normed = keras.layers.BatchNormalization(name="bn")(conv)
    second = keras.layers.BatchNormalization(name="frozen")(keras.layers.ReLU()(normed))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(second))
    return keras.Model(inputs, outputs)


def _value(variable: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable))


def _batches(count: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(count * 100 + size)
    return [(rng.normal(2.0, 3.0, (size, 6, 6, 3)).astype("float32"), np.zeros(size)) for _ in range(count)]


@settings(max_examples=4, deadline=None)
@given(count=st.integers(1, 4), size=st.integers(2, 5))
def test_recalibration_is_the_mean_of_the_batch_statistics(count: int, size: int) -> None:
    model = _model()
    frozen = model.get_layer("frozen")
    frozen.trainable = False
    before = [_value(v) for v in (frozen.moving_mean, frozen.moving_variance)]
    batches = _batches(count, size)
    assert recalibrate(model, batches, max_batches=10) == count
    conv = keras.Model(model.input, model.get_layer("conv").output)
    outputs = [np.asarray(conv(images), np.float64) for images, _ in batches]
    bn = model.get_layer("bn")
    np.testing.assert_allclose(_value(bn.moving_mean), np.mean([o.mean((0, 1, 2)) for o in outputs], 0),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_value(bn.moving_variance), np.mean([o.var((0, 1, 2)) for o in outputs], 0),
                               rtol=1e-4, atol=1e-4)
    assert bn.momentum == pytest.approx(0.99) and frozen.momentum == pytest.approx(0.99)
    for value, old in zip((frozen.moving_mean, frozen.moving_variance), before):
        np.testing.assert_array_equal(_value(value), old)


def test_recalibration_repeated_gives_the_same_statistics() -> None:
    model = _model()
    batches = _batches(3, 4)
    recalibrate(model, batches, max_batches=2)  # only the first two batches count
    first = [_value(v) for v in model.get_layer("bn").variables]
    recalibrate(model, batches[:2], max_batches=5)  # again (a traced step is reused): the same values
    for value, old in zip(model.get_layer("bn").variables, first):
        np.testing.assert_allclose(_value(value), old, rtol=1e-6, atol=1e-6)


def test_a_layer_frozen_between_recalibrations_is_left_alone() -> None:
    model = _model()
    batches = _batches(2, 4)
    recalibrate(model, batches, max_batches=2)
    bn = model.get_layer("bn")
    bn.trainable = False  # a phase froze it: a step traced before must not update it
    kept = [_value(v) for v in (bn.moving_mean, bn.moving_variance)]
    recalibrate(model, _batches(3, 4), max_batches=3)  # the same shape: no new trace for that reason
    for value, old in zip((bn.moving_mean, bn.moving_variance), kept):
        np.testing.assert_array_equal(_value(value), old)


def test_a_recalibrated_model_is_freed_when_its_user_lets_go() -> None:
    """The traced step is kept with the model, not the model with the step: a search that trains many
    trials in one process frees each trial's model."""
    import gc
    import weakref

    model = _model()
    recalibrate(model, _batches(2, 4), max_batches=2)
    held = weakref.ref(model)
    del model
    gc.collect()
    assert held() is None
