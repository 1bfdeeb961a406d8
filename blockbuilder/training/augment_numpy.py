"""The ``augmentation:`` steps in NumPy/SciPy for the JAX and PyTorch pipeline (no TensorFlow).

The geometry is that of the TensorFlow steps (:mod:`blockbuilder.training.augment`): bilinear maps with
reflected borders, whole-pixel shifts with zero fill for ``random_crop``. Each step draws from a
generator seeded by ``(seed, epoch, batch, step)``, so a batch's augmentation depends on nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter"]

Step = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _transform(images: np.ndarray, matrices: np.ndarray, order: int = 1, mode: str = "reflect") -> np.ndarray:
    """Apply one 2x3 ``[[a0, a1, a2], [b0, b1, b2]]`` map (output ``(x, y)`` -> input point) per image."""
    from scipy import ndimage  # type: ignore[import-untyped]

    out = np.empty_like(images)
    for i, ((a0, a1, a2), (b0, b1, b2)) in enumerate(matrices):
        matrix = np.array([[b1, b0, 0.0], [a1, a0, 0.0], [0.0, 0.0, 1.0]])
        ndimage.affine_transform(images[i], matrix, offset=(b2, a2, 0.0), output=out[i], order=order,
                                 mode=mode, cval=0.0)
    return out


def _shifts(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    one, zero = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([np.stack([one, zero, -dx], 1), np.stack([zero, one, -dy], 1)], 1)


def _random_crop(padding: int) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dx, dy = (rng.integers(-padding, padding + 1, len(images)).astype(np.float64) for _ in range(2))
        return _transform(images, _shifts(dx, dy), order=0, mode="constant")

    return step


def _flip(mode: str) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for name, axis in (("horizontal", 2), ("vertical", 1)):
            if name in mode:
                flip = rng.random(len(images)) < 0.5
                images = np.where(flip[:, None, None, None], np.flip(images, axis), images)
        return images

    return step


def _translation(factor: float) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = images.shape[1:3]
        dx = rng.uniform(-factor, factor, len(images)) * width
        dy = rng.uniform(-factor, factor, len(images)) * height
        return _transform(images, _shifts(dx, dy))

    return step


def _rotation(factor: float) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        angle = rng.uniform(-factor, factor, len(images)) * 2.0 * math.pi
        height, width = images.shape[1] - 1.0, images.shape[2] - 1.0
        cos, sin = np.cos(angle), np.sin(angle)
        x_offset = (width - (cos * width - sin * height)) / 2.0
        y_offset = (height - (sin * width + cos * height)) / 2.0
        return _transform(images, np.stack([np.stack([cos, -sin, x_offset], 1), np.stack([sin, cos, y_offset], 1)], 1))

    return step


def _zoom(factor: float) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scale = 1.0 + rng.uniform(-factor, factor, len(images))
        cy, cx = (images.shape[1] - 1.0) / 2.0, (images.shape[2] - 1.0) / 2.0
        zero = np.zeros_like(scale)
        return _transform(images, np.stack([np.stack([scale, zero, cx * (1.0 - scale)], 1),
                                            np.stack([zero, scale, cy * (1.0 - scale)], 1)], 1))

    return step


def _contrast(factor: float) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        contrast = rng.uniform(1.0 - factor, 1.0 + factor, len(images)).astype(np.float32)[:, None, None, None]
        mean = images.mean(axis=(1, 2), keepdims=True)
        changed: np.ndarray = (images - mean) * contrast + mean
        return changed

    return step


def _step(spec: AugmentationSpec) -> Step:
    options = cast(Any, spec.options)
    makers: dict[str, Callable[[], Step]] = {
        "random_crop": lambda: _random_crop(options.padding),
        "flip": lambda: _flip(options.mode),
        "translation": lambda: _translation(options.factor),
        "rotation": lambda: _rotation(options.factor),
        "zoom": lambda: _zoom(options.factor),
        "contrast": lambda: _contrast(options.factor),
    }
    return makers[spec.kind]()


class Augmenter:
    """The ``augmentation:`` steps in NumPy; each batch's draws depend only on its seed.

    Args:
        steps: The ``augmentation:`` steps.
        shape: The images' shape ``(H, W, C)`` (kept for the same signature as the TensorFlow one).
    """

    def __init__(self, steps: Sequence[AugmentationSpec], shape: Sequence[int] = ()) -> None:
        self._steps = [_step(spec) for spec in steps]
        self.shape = tuple(shape)

    def __call__(self, images: np.ndarray, seed: Sequence[int]) -> np.ndarray:
        """Augment a batch; ``seed`` is e.g. ``(seed, epoch, batch)``."""
        images = np.asarray(images, np.float32)
        for position, function in enumerate(self._steps):
            images = function(images, np.random.default_rng([*map(int, seed), position + 1]))
        clipped: np.ndarray = np.clip(images, 0.0, 1.0).astype(np.float32)
        return clipped
