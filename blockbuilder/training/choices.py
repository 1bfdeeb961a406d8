"""The lists of choices of training, in one place, with the standard library only.

``blockbuilder train --help`` lists them without importing pydantic or TensorFlow; the ``train:``
section (:mod:`blockbuilder.training.spec`) validates against the same ``Literal`` types.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["DEVICES", "PRECISIONS", "BatchnormRecalibration", "Device", "Precision"]

Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16", "bfloat16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

Device = Literal["auto", "cpu", "gpu", "tpu"]
DEVICES: tuple[str, ...] = get_args(Device)

BatchnormRecalibration = Literal["auto", "always", "never"]
