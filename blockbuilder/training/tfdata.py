"""The ``tf.data`` pipeline: shuffle, shard, batch, augment and prefetch the data of a source.

Every random choice is a pure function of ``(seed, epoch)``: shuffling uses a per-epoch seed and
augmentation per-batch stateless seeds, so a resumed run sees the same batches as an uninterrupted
one, even with parallel augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from blockbuilder.training.augment import Augmenter
from blockbuilder.training.spec import AugmentationSpec

__all__ = ["eval_batches", "train_batches"]

AUTOTUNE = tf.data.AUTOTUNE


def train_batches(
    dataset: tf.data.Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    augmentation: Sequence[AugmentationSpec] = (),
    input_shape: Sequence[int] = (),
    shuffle_buffer: int = 10000,
    drop_remainder: bool = False,
    shard: tuple[int, int] = (1, 0),
    augmenter: Augmenter | None = None,
) -> tf.data.Dataset:
    """One epoch of shuffled, batched, augmented training data, a pure function of ``(seed, epoch)``.

    Args:
        dataset: The (cached) unbatched training data.
        batch_size: The batch size of this process (the global one over the process count).
        seed: The run's seed.
        epoch: The 0-based epoch: each epoch has its own order and augmentation.
        augmentation: The ``augmentation:`` steps.
        input_shape: The images' shape (default: the dataset's).
        shuffle_buffer: Shuffle buffer size in examples.
        drop_remainder: Drop the last partial batch (needed when batches are split over devices).
        shard: ``(process count, process index)``: every process shuffles alike, then keeps its
            share, so that the processes' batches together make one global batch.
        augmenter: The :class:`Augmenter` of ``augmentation``, made once for all epochs
            (made here when not given).
    """
    ds = dataset.shuffle(shuffle_buffer, seed=seed * 1000 + epoch, reshuffle_each_iteration=False)
    if shard[0] > 1:
        ds = ds.shard(*shard)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augmentation:
        shape = tuple(input_shape) or tuple(dataset.element_spec[0].shape)
        augmenter = augmenter or Augmenter(augmentation, shape)
        ds = ds.enumerate().map(augmenter.mapper(seed * shard[0] + shard[1], epoch), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def eval_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batched, prefetched evaluation data in a fixed order."""
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
