"""The NumPy augmentation's fast paths compute what its general map computes.

Shifts (``random_crop``, ``translation``) and flips are sliced rather than gathered pixel by pixel
(:mod:`blockbuilder.training.augment_numpy`); each is checked here against the general bilinear or
nearest map of every output pixel, on any batch shape and any shift, also shifts past the image.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from blockbuilder.training import augment_numpy
from blockbuilder.training.pipeline import Augmenter
from blockbuilder.training.spec import AugmentationSpec


def _batch(shape: tuple[int, int, int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _shifts(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The maps under which output ``(x, y)`` reads input ``(x + dx, y + dy)`` (the module's own maker moves
    the image by ``(dx, dy)``)."""
    return augment_numpy._shifts(-dx, -dy)


shapes = st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), reach=st.floats(0.0, 3.0))
def test_a_bilinear_shift_reads_what_the_general_map_reads(shape, seed, reach) -> None:
    images = _batch(shape, seed)
    rng = np.random.default_rng(seed + 1)
    dx = rng.uniform(-reach, reach, shape[0]) * shape[2]  # up to three image widths: mirrored again and again
    dy = rng.uniform(-reach, reach, shape[0]) * shape[1]
    fast = augment_numpy._translate(images, dx, dy, order=1)
    general = augment_numpy._warp(images, _shifts(dx, dy), order=1)
    assert fast.shape == images.shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast, general, atol=2e-6)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), padding=st.integers(0, 20))
def test_a_whole_pixel_shift_reads_what_the_general_map_reads_with_zeros_outside(shape, seed, padding) -> None:
    images = _batch(shape, seed)
    rng = np.random.default_rng(seed + 1)
    dx, dy = (rng.integers(-padding, padding + 1, shape[0]).astype(np.float64) for _ in range(2))
    fast = augment_numpy._translate(images, dx, dy, order=0)
    np.testing.assert_array_equal(fast, augment_numpy._warp(images, _shifts(dx, dy), order=0))


def test_a_shift_of_three_pixels_moves_the_image_and_fills_zeros() -> None:
    images = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    shifted = augment_numpy._translate(images, np.array([3.0]), np.array([-1.0]), order=0)[0, ..., 0]
    # output (x, y) reads input (x + 3, y - 1): the first row is zeros, the last three columns too
    assert shifted.tolist() == [[0, 0, 0, 0, 0], [4, 5, 0, 0, 0], [9, 10, 0, 0, 0], [14, 15, 0, 0, 0],
                                [19, 20, 0, 0, 0]]


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), mode=st.sampled_from(["horizontal", "vertical",
                                                                         "horizontal_and_vertical"]))
def test_flip_flips_a_random_half_and_leaves_the_callers_batch_alone(shape, seed, mode) -> None:
    images = _batch(shape, seed)
    before = images.copy()
    out = augment_numpy._flip(mode)(images, np.random.default_rng(seed))
    np.testing.assert_array_equal(images, before)
    rng = np.random.default_rng(seed)
    expected = before
    for name, axis in (("horizontal", 2), ("vertical", 1)):
        if name in mode:
            flip = rng.random(shape[0]) < 0.5
            expected = np.where(flip[:, None, None, None], np.flip(expected, axis), expected)
    np.testing.assert_array_equal(out, expected)


def test_the_documented_steps_together_keep_shape_range_and_dtype() -> None:
    steps = [AugmentationSpec.model_validate(step) for step in
             ({"random_crop": {"padding": 4}}, "flip", {"translation": {"factor": 0.1}}, {"rotation": {"factor": 0.1}},
              {"zoom": {"factor": 0.2}}, {"contrast": {"factor": 0.2}})]
    images = _batch((8, 32, 32, 3), 0)
    out = Augmenter(steps)(images, (0, 0, 0))
    assert out.shape == images.shape and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    assert not np.array_equal(out, images)
    np.testing.assert_array_equal(out, Augmenter(steps)(images, (0, 0, 0)))  # a batch's draws are its seed's
