"""A model's and its optimizer's variables as NumPy arrays: for checkpoints, the best model, checksums."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from keras import ops

from blockbuilder.training.spec import TrainError

__all__ = ["assign_values", "variable_values", "weights_sha256"]


def variable_values(variables: Any) -> list[np.ndarray]:
    """Every variable's value as a NumPy array.

    ``convert_to_numpy`` of a TensorFlow variable warns under NumPy 2 (the variable's ``__array__``
    lacks ``copy``); its own ``numpy()`` does not. JAX arrays have no ``numpy()``.
    """
    values = [variable.value for variable in variables]
    return [np.array(value.numpy() if hasattr(value, "numpy") else ops.convert_to_numpy(value)) for value in values]


def weights_sha256(model: Any) -> str:
    """A checksum of every weight's value, in order: equal models, equal checksums."""
    digest = hashlib.sha256()
    for value in variable_values(model.weights):
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def assign_values(variables: Any, values: list[np.ndarray], what: str) -> None:
    """Set ``variables`` to ``values`` (from a checkpoint).

    Raises:
        TrainError: the counts or shapes differ (the architecture changed since the checkpoint).
    """
    if len(variables) != len(values):
        raise TrainError(f"cannot resume: the checkpoint holds {len(values)} {what} variables, the model "
                         f"{len(variables)} (the architecture changed?)")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise TrainError(f"cannot resume: {what} variable {variable.path} has shape {tuple(variable.shape)}, "
                             f"the checkpoint {tuple(value.shape)} (the architecture changed?)")
        variable.assign(value)
