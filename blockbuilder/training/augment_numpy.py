"""The ``augmentation:`` steps in NumPy, for every backend's pipeline (no TensorFlow).

The geometry follows Keras' preprocessing layers of the same names: bilinear maps with reflected
borders, whole-pixel shifts with zero fill for ``random_crop``, each image drawn on its own. Rotation
and zoom map every pixel of the batch at once (:func:`_warp`); shifts slice each image's window out of
the batch padded once, and flips assign the flipped images (:func:`_translate`, :func:`_flip`): the same
values in half the time for crop, flip and translation together. Each step draws from a generator
seeded by ``(seed, epoch, batch, step)``, so a batch's augmentation depends on nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter"]

Step = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Indices mirrored into ``[0, size)`` about the edges (``d c b a | a b c d | d c b a``)."""
    folded = np.mod(index, 2 * size)
    mirrored: np.ndarray = np.where(folded >= size, 2 * size - 1 - folded, folded)
    return mirrored


def _fold(shift: np.ndarray, size: int) -> np.ndarray:
    """Whole-pixel ``shift`` moved by a multiple of ``2 * size`` into ``[-size, size)``: the same reads, since
    reflected borders repeat every ``2 * size`` pixels."""
    folded: np.ndarray = np.mod(shift + size, 2 * size) - size
    return folded


def _windows(padded: np.ndarray, top: np.ndarray, left: np.ndarray, height: int, width: int) -> np.ndarray:
    """Image ``b``'s ``height x width`` window of ``padded`` at ``(top[b], left[b])``: one slice (a copy of
    whole rows) per image, the fastest gather NumPy has for a shift that is constant over the image."""
    out = np.empty((len(padded), height, width, padded.shape[3]), padded.dtype)
    for index, (row, col) in enumerate(zip(top.tolist(), left.tolist())):
        out[index] = padded[index, row:row + height, col:col + width]
    return out


def _translate(images: np.ndarray, dx: np.ndarray, dy: np.ndarray, order: int) -> np.ndarray:
    """:func:`_warp` of pure shifts (output ``(x, y)`` reads input ``(x + dx, y + dy)``), the same values:
    the batch is padded once (zeros, or mirrored as :func:`_reflect`) and each image's window sliced out;
    bilinear weights blend neighbouring rows, then columns, of the whole batch."""
    batch, height, width, _ = images.shape
    if order == 0:
        ys = np.clip(np.rint(dy).astype(np.int64), -height, height)  # a shift past the image reads zeros only
        xs = np.clip(np.rint(dx).astype(np.int64), -width, width)
        my, mx = int(np.abs(ys).max(initial=0)), int(np.abs(xs).max(initial=0))
        padded = np.zeros((batch, height + 2 * my, width + 2 * mx, images.shape[3]), images.dtype)
        padded[:, my:my + height, mx:mx + width] = images
        return _windows(padded, ys + my, xs + mx, height, width)
    top, left = np.floor(dy), np.floor(dx)
    fy = (dy - top).astype(np.float32)[:, None, None, None]
    fx = (dx - left).astype(np.float32)[:, None, None, None]
    rows, cols = _fold(top.astype(np.int64), height), _fold(left.astype(np.int64), width)
    my, mx = int(max(-rows.min(), rows.max() + 1, 0)), int(max(-cols.min(), cols.max() + 1, 0))
    padded = np.pad(images, ((0, 0), (my, my), (mx, mx), (0, 0)), mode="symmetric")
    window = _windows(padded, rows + my, cols + mx, height + 1, width + 1)
    mixed = window[:, :-1] + (window[:, 1:] - window[:, :-1]) * fy
    shifted: np.ndarray = (mixed[:, :, :-1] + (mixed[:, :, 1:] - mixed[:, :, :-1]) * fx).astype(images.dtype)
    return shifted


def _transform(images: np.ndarray, matrices: np.ndarray, order: int = 1) -> np.ndarray:
    """Apply one 2x3 ``[[a0, a1, a2], [b0, b1, b2]]`` map (output ``(x, y)`` -> input point) per image.

    The whole batch at once: bilinear (``order`` 1) with reflected borders, or nearest with zeros
    outside (``order`` 0, for ``random_crop``).
    """
    if np.all(matrices[:, :, :2] == np.eye(2)):
        return _translate(images, matrices[:, 0, 2], matrices[:, 1, 2], order)
    return _warp(images, matrices, order)


def _warp(images: np.ndarray, matrices: np.ndarray, order: int) -> np.ndarray:
    """:func:`_transform` of any maps: every output pixel's source points gathered at once."""
    batch, height, width, channels = images.shape
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    m = matrices.astype(np.float64)[:, :, :, None, None]
    x = m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2]
    y = m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2]
    pixels = images.reshape(-1, channels)
    first = (np.arange(batch) * (height * width))[:, None, None]

    def pick(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        picked: np.ndarray = np.take(pixels, first + rows * width + cols, axis=0)
        return picked

    if order == 0:
        xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        picked = pick(np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1))
        out: np.ndarray = (picked * inside[..., None]).astype(images.dtype)
        return out
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None].astype(np.float32), (y - y0)[..., None].astype(np.float32)
    left, top = x0.astype(np.int64), y0.astype(np.int64)
    cols = _reflect(left, width), _reflect(left + 1, width)
    rows = _reflect(top, height), _reflect(top + 1, height)
    upper = pick(rows[0], cols[0]) * (1 - fx) + pick(rows[0], cols[1]) * fx
    lower = pick(rows[1], cols[0]) * (1 - fx) + pick(rows[1], cols[1]) * fx
    mixed: np.ndarray = (upper * (1 - fy) + lower * fy).astype(images.dtype)
    return mixed


def _shifts(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    one, zero = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([np.stack([one, zero, -dx], 1), np.stack([zero, one, -dy], 1)], 1)


def _random_crop(padding: int) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dx, dy = (rng.integers(-padding, padding + 1, len(images)).astype(np.float64) for _ in range(2))
        return _transform(images, _shifts(dx, dy), order=0)

    return step


def _flip(mode: str) -> Step:
    def step(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for name, axis in (("horizontal", 2), ("vertical", 1)):
            if name in mode:
                flipped = np.flatnonzero(rng.random(len(images)) < 0.5)
                images = images.copy()  # the caller's batch is left as it was
                images[flipped] = np.flip(images[flipped], axis)
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
