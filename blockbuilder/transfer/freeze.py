"""Freeze blocks of a built model: their layers stop training.

A frozen layer is ``trainable = False``. Keras runs a frozen ``BatchNormalization`` in inference
mode (its moving mean and variance, never the batch's, and never updated): the fine-tuning
convention, so a frozen backbone computes exactly what it computed when it was trained.
"""

from __future__ import annotations

from typing import Any

from blockbuilder.transfer.settings import Freeze

__all__ = ["apply_freeze", "frozen_layers"]


def apply_freeze(model: Any, freeze: Freeze) -> list[str]:
    """Set every layer's ``trainable`` by ``freeze`` (also un-freezing what it does not cover).

    A model must be compiled again after this for training to see the change.

    Returns:
        The names of the frozen layers that have weights.
    """
    for layer in model.layers:
        layer.trainable = not freeze.frozen(layer.name)
    return frozen_layers(model)


def frozen_layers(model: Any) -> list[str]:
    """Names of the layers with weights that do not train."""
    return [layer.name for layer in model.layers if layer.weights and not layer.trainable]
