"""BatchNorm statistics that can be trusted on small data sets.

A BatchNorm layer keeps moving averages of its inputs' mean and variance for inference, updated by
``momentum`` (Keras' default 0.99: an average over about 100 steps). When an epoch has fewer steps
than that, the averages still hold much of their initial values (0 and 1) and of weights many
epochs old: training accuracy climbs while inference (validation, test) stays at chance.

:func:`recalibrate` re-estimates them after each epoch from the training images (unaugmented, in a
fixed order): the exact average of the batch statistics, as "precise BN" (Wu & Johnson, 2021) does.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, cast

import keras

__all__ = ["batchnorm_layers", "needs_recalibration", "recalibrate"]


def batchnorm_layers(layer: Any) -> Iterator[Any]:
    """Every BatchNormalization layer of a model, nested models included."""
    if isinstance(layer, keras.layers.BatchNormalization):
        yield layer
    for child in getattr(layer, "layers", []):
        yield from batchnorm_layers(child)


def needs_recalibration(model: Any, steps_per_epoch: int, setting: str) -> bool:
    """Whether to re-estimate the statistics after each epoch.

    ``auto``: when some BatchNorm layer averages over more steps (``1 / (1 - momentum)``) than an
    epoch has; ``always``; ``never``.
    """
    layers = list(batchnorm_layers(model))
    if setting == "never" or not layers:
        return False
    if setting == "always":
        return True
    return any(1.0 / max(1.0 - float(layer.momentum), 1e-9) > steps_per_epoch for layer in layers)


def recalibrate(model: Any, batches: Any, max_batches: int) -> int:
    """Set every BatchNorm layer's moving statistics to the mean of its statistics over ``batches``.

    Each batch is run through the model in training mode with the momentum at 0, so that each layer's
    moving statistics are that batch's; their mean over the batches is then set. Only the BatchNorm
    statistics (and random generators) change. On TensorFlow the forward pass is one traced function,
    kept with the model and traced again only when the set of trainable BatchNorm layers changes (a
    phase froze one); elsewhere it runs eagerly. Returns the number of batches used.
    """
    layers = [layer for layer in batchnorm_layers(model) if layer.trainable]
    saved = [layer.momentum for layer in layers]
    sums: list[list[Any]] = [[0.0, 0.0] for _ in layers]
    used = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        forward = _forward(model, layers)
        for _, (images, _labels) in zip(range(max_batches), batches):
            forward(images)
            for total, layer in zip(sums, layers):
                total[0] = total[0] + layer.moving_mean.numpy().astype("float64")
                total[1] = total[1] + layer.moving_variance.numpy().astype("float64")
            used += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    if used:
        for (mean, variance), layer in zip(sums, layers):
            layer.moving_mean.assign(mean / used)
            layer.moving_variance.assign(variance / used)
    return used


#: The traced forward pass of each model (TensorFlow), with the trainable BatchNorm layers it was traced for.
_FORWARD: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], Callable[[Any], Any]]] = weakref.WeakKeyDictionary()


def _forward(model: Any, layers: list[Any]) -> Callable[[Any], Any]:
    """``model(images, training=True)``, traced once per model and set of trainable layers on TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return lambda images: model(images, training=True)
    import tensorflow as tf

    key = tuple(id(layer) for layer in layers)
    kept = _FORWARD.get(model)
    if kept is None or kept[0] != key:
        held = weakref.ref(model)  # the function must not keep its model alive (its key in _FORWARD)

        def forward(images: Any) -> Any:
            return cast(Any, held())(images, training=True)

        kept = key, tf.function(forward, reduce_retracing=True)
        _FORWARD[model] = kept
    return kept[1]


CHANCE_EPOCHS = 3


def chance_warning(history: list[dict[str, Any]], classes: int) -> str | None:
    """A warning when validation accuracy has stayed near chance while training accuracy climbed.

    Near chance: at most a quarter of the way from chance (``1 / classes``) to 1, for the last
    :data:`CHANCE_EPOCHS` epochs; climbed: training accuracy at least halfway from chance to 1.
    """
    rows = history[-CHANCE_EPOCHS:]
    if classes < 2 or len(rows) < CHANCE_EPOCHS or any(row.get("val_accuracy") is None for row in rows):
        return None
    chance = 1.0 / classes
    near_chance = all(float(row["val_accuracy"]) <= chance + 0.25 * (1 - chance) for row in rows)
    accuracy = float(rows[-1].get("accuracy") or 0.0)
    if not near_chance or accuracy < chance + 0.5 * (1 - chance):
        return None
    return (f"warning: validation accuracy has stayed near chance ({chance:.2f}) for {CHANCE_EPOCHS} epochs while "
            f"training accuracy reached {accuracy:.2f}: the model does not generalise. With BatchNorm on a small "
            f"data set, set train.recalibrate_batchnorm: always (or a lower norm momentum); also check that "
            f"the validation images are labelled like the training images")
