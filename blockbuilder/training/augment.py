"""Augmentation of training batches inside the ``tf.data`` pipeline, every draw a function of its seed.

The ``augmentation:`` steps are written with TensorFlow's stateless random ops, so each random
choice depends only on ``(seed, epoch, batch index, step)``: parallel ``map`` calls cannot race on
a generator's state, and a resumed run sees exactly the batches an uninterrupted one would. The
geometry follows Keras' preprocessing layers (``RandomTranslation``, ``RandomRotation``,
``RandomZoom``: bilinear, reflected borders; ``RandomContrast``), applied per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, cast

import tensorflow as tf

from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter"]

Images: TypeAlias = Any  # a tf.Tensor of shape (batch, height, width, channels)
Step = Callable[[Images, tf.Tensor], Images]


def _uniform(images: Images, seed: tf.Tensor, low: float, high: float) -> tf.Tensor:
    """One uniform number per image of the batch."""
    return tf.random.stateless_uniform([tf.shape(images)[0]], seed, low, high)


def _projective(images: Images, transforms: tf.Tensor, interpolation: str = "BILINEAR",
                fill_mode: str = "REFLECT") -> Images:
    """Apply one ``[a0, a1, a2, b0, b1, b2, c0, c1]`` transform per image (output -> input point)."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(transforms, tf.float32), output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(0.0), interpolation=interpolation, fill_mode=fill_mode)


def _shift(images: Images, dx: tf.Tensor, dy: tf.Tensor, **kwargs: str) -> Images:
    one, zero = tf.ones_like(dx), tf.zeros_like(dx)
    return _projective(images, tf.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1), **kwargs)


def _random_crop(padding: int) -> Step:
    """Zero-pad by ``padding`` and crop back: a whole-pixel shift of up to ``padding`` each way."""

    def step(images: Images, seed: tf.Tensor) -> Images:
        batch = [tf.shape(images)[0]]
        dx, dy = (tf.cast(tf.random.stateless_uniform(batch, seed + [0, k], -padding, padding + 1, tf.int32),
                          tf.float32) for k in (0, 1))
        return _shift(images, dx, dy, interpolation="NEAREST", fill_mode="CONSTANT")

    return step


def _flip(mode: str) -> Step:
    def step(images: Images, seed: tf.Tensor) -> Images:
        for k, (name, axis) in enumerate((("horizontal", 2), ("vertical", 1))):
            if name in mode:
                flip = _uniform(images, seed + [0, k], 0.0, 1.0) < 0.5
                images = tf.where(flip[:, None, None, None], tf.reverse(images, [axis]), images)
        return images

    return step


def _translation(factor: float) -> Step:
    def step(images: Images, seed: tf.Tensor) -> Images:
        height, width = (tf.cast(tf.shape(images)[i], tf.float32) for i in (1, 2))
        dx = _uniform(images, seed + [0, 0], -factor, factor) * width
        dy = _uniform(images, seed + [0, 1], -factor, factor) * height
        return _shift(images, dx, dy)

    return step


def _rotation(factor: float) -> Step:
    """Rotate by up to ``factor`` of a full turn either way, about the centre."""

    def step(images: Images, seed: tf.Tensor) -> Images:
        angle = _uniform(images, seed, -factor, factor) * 2.0 * math.pi
        height, width = (tf.cast(tf.shape(images)[i], tf.float32) - 1.0 for i in (1, 2))
        cos, sin = tf.cos(angle), tf.sin(angle)
        x_offset = (width - (cos * width - sin * height)) / 2.0
        y_offset = (height - (sin * width + cos * height)) / 2.0
        zero = tf.zeros_like(angle)
        return _projective(images, tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero], axis=1))

    return step


def _zoom(factor: float) -> Step:
    """Zoom out (positive) or in (negative) by up to ``factor`` of the size, about the centre."""

    def step(images: Images, seed: tf.Tensor) -> Images:
        scale = 1.0 + _uniform(images, seed, -factor, factor)
        cy, cx = ((tf.cast(tf.shape(images)[i], tf.float32) - 1.0) / 2.0 for i in (1, 2))
        zero = tf.zeros_like(scale)
        transforms = [scale, zero, cx * (1.0 - scale), zero, scale, cy * (1.0 - scale), zero, zero]
        return _projective(images, tf.stack(transforms, axis=1))

    return step


def _contrast(factor: float) -> Step:
    def step(images: Images, seed: tf.Tensor) -> Images:
        contrast = _uniform(images, seed, 1.0 - factor, 1.0 + factor)[:, None, None, None]
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        return (images - mean) * contrast + mean

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
    """The ``augmentation:`` steps as one ``tf.function``, traced once and reused every epoch.

    Args:
        steps: The ``augmentation:`` steps.
        shape: The images' shape ``(H, W, C)`` (the model's input).
    """

    def __init__(self, steps: Sequence[AugmentationSpec], shape: Sequence[int]) -> None:
        functions = [_step(spec) for spec in steps]
        signature = [tf.TensorSpec([None, *shape], tf.float32), tf.TensorSpec([2], tf.int64)]

        @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
        def augment(images: Images, base: tf.Tensor) -> Images:
            for position, function in enumerate(functions):
                images = function(images, base + tf.constant([0, (position + 1) << 20], tf.int64))
            return tf.clip_by_value(images, 0.0, 1.0)

        self._augment = augment.get_concrete_function()

    def __call__(self, images: Images, base: tf.Tensor) -> Images:
        """Augment a batch; ``base`` is its ``[2]`` int64 seed."""
        return self._augment(images, base)

    def mapper(self, seed: int, epoch: int) -> Callable[[Any, tuple[Images, Any]], tuple[Images, Any]]:
        """The ``map`` function for ``dataset.enumerate()`` of one epoch's batches."""

        def augment(index: Any, batch: tuple[Images, Any]) -> tuple[Images, Any]:
            images, labels = batch
            base = tf.stack([tf.constant(seed * 100003 + epoch, tf.int64), tf.cast(index, tf.int64)])
            return self._augment(images, base), labels

        return augment
