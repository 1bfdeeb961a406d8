"""A model's and its optimizer's variables as NumPy arrays: for checkpoints, the best model, checksums."""

from __future__ import annotations

import hashlib
from typing import Any

import keras
import numpy as np
from keras import ops

from blockbuilder.text import plural
from blockbuilder.training.spec import TrainError

__all__ = ["assign_values", "to_numpy", "variable_values", "weights_sha256"]


def to_numpy(value: Any) -> np.ndarray:
    """A tensor of any backend (or an array) as a NumPy array of its own.

    ``convert_to_numpy`` of a TensorFlow variable warns under NumPy 2 (the variable's ``__array__``
    lacks ``copy``); its own ``numpy()`` does not. A PyTorch tensor's ``numpy()`` refuses a tensor that
    requires grad, and JAX arrays have none: both go through ``convert_to_numpy``.
    """
    if isinstance(value, np.ndarray):
        return value
    if keras.backend.backend() == "tensorflow" and hasattr(value, "numpy"):
        return np.array(value.numpy())
    return np.array(ops.convert_to_numpy(value))


def variable_values(variables: Any) -> list[np.ndarray]:
    """Every variable's value as a NumPy array."""
    return [to_numpy(variable.value) for variable in variables]


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
        raise TrainError(f"cannot resume: the checkpoint holds {plural(len(values), what + ' variable')}, the model "
                         f"{len(variables)} (the architecture changed?)")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise TrainError(f"cannot resume: {what} variable {variable.path} has shape {tuple(variable.shape)}, "
                             f"the checkpoint {tuple(value.shape)} (the architecture changed?)")
        variable.assign(value)
