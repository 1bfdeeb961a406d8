"""BatchNorm statistics that can be trusted on small data sets.

A BatchNorm layer keeps moving averages of its inputs' mean and variance for inference, updated by
``momentum`` (Keras' default 0.99: an average over about 100 steps). When an epoch has fewer steps
than that, the averages still hold much of their initial values (0 and 1) and of weights many
epochs old: training accuracy climbs while inference (validation, test) stays at chance.

:func:`recalibrate` re-estimates them after each epoch from the training images (unaugmented, in a
fixed order): the exact average of the batch statistics, as "precise BN" (Wu & Johnson, 2021) does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

    Each batch is run through the model in training mode with the momentum set so that the moving
    average becomes the running mean (``k / (k + 1)`` for the ``k``-th batch); only the BatchNorm
    statistics (and random generators) change. Returns the number of batches used.
    """
    layers = [layer for layer in batchnorm_layers(model) if layer.trainable]
    saved = [layer.momentum for layer in layers]
    used = 0
    try:
        for _, (images, _labels) in zip(range(max_batches), batches):
            for layer in layers:
                layer.momentum = used / (used + 1)
            model(images, training=True)
            used += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return used


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
