"""``digits``: scikit-learn's 1,797 8x8 grey images of handwritten digits, embedded (no download)."""

from __future__ import annotations

from typing import Any

import numpy as np

from blockbuilder.training.sources.registry import Kind, Part, Source, register_kind


def read(where: str, key: str, shape: Any) -> Source:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    whole = Part(digits.target.astype(np.int64), images=x)
    return Source("digits", [str(n) for n in digits.target_names], {"train": whole}, channels=1)


DIGITS = register_kind(Kind("digits", "digits", read, class_names=lambda where, key: [str(n) for n in range(10)],
                            bare=True, role=False))
