"""The input pipeline of every backend (TensorFlow, JAX, PyTorch): NumPy and ``keras.utils.PyDataset``.

* :func:`load_splits`: a data source (any kind registered in :mod:`blockbuilder.training.sources`)
  as train/validation/test :class:`Examples`, images as float32 in ``[0, 1]`` shaped for the model.
  Image files stay files until a batch needs them and are decoded by
  :func:`blockbuilder.images.read_image`, the reader of ``predict``.
* :func:`train_batches`: one epoch as a :class:`keras.utils.PyDataset` whose batches are decoded and
  augmented by a pool of worker threads (``workers``), so the accelerator is fed while they work.
* Every random choice is a pure function of ``(seed, epoch, batch)``: the epoch's order is a
  permutation seeded by ``(seed, epoch)`` and each batch's augmentation draws from a generator seeded
  by ``(seed, epoch, batch, step)``. Workers may finish in any order and a resumed run still sees
  exactly the batches an uninterrupted one would.
* :class:`Augmenter` (:mod:`blockbuilder.training.augment_numpy`): the ``augmentation:`` steps in
  NumPy, a whole batch at a time.

Nothing here imports TensorFlow (a ``tfds:`` source needs it to be read).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, cast

import keras
import numpy as np

from blockbuilder.training import sources
from blockbuilder.training.augment_numpy import Augmenter
from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter", "Examples", "Splits", "eval_batches", "feed", "load_splits", "to_model_input",
           "train_batches"]

WORKERS = max(1, min(8, (os.cpu_count() or 1)))
GREY = np.array([0.2989, 0.5870, 0.1140], np.float32)  # tf.image.rgb_to_grayscale's weights


# --------------------------------------------------------------------------- data in memory


class Examples:
    """An unbatched data set of ``(image, label)``: arrays in memory, or image files decoded on demand.

    It offers the few ``tf.data.Dataset`` methods the trainer uses (``cache``, ``take``, ``shard``).
    """

    def __init__(self, labels: np.ndarray, images: Optional[np.ndarray] = None,
                 files: Optional[np.ndarray] = None, shape: Sequence[int] = ()) -> None:
        self.labels = labels.astype(np.int32)
        self.images, self.files, self.shape = images, files, tuple(shape)

    def __len__(self) -> int:
        return len(self.labels)

    def _subset(self, index: np.ndarray | slice) -> Examples:
        return Examples(self.labels[index], None if self.images is None else self.images[index],
                        None if self.files is None else self.files[index], self.shape)

    def cache(self) -> Examples:
        """Decode every ``folder:`` file once (arrays are already in memory)."""
        if self.files is None:
            return self
        return Examples(self.labels, self.gather(np.arange(len(self))), None, self.shape)

    def take(self, count: int) -> Examples:
        return self._subset(slice(0, count))

    def shard(self, count: int, index: int) -> Examples:
        return self._subset(slice(index, None, count))

    def gather(self, index: np.ndarray) -> np.ndarray:
        """The images at ``index`` as one float32 batch."""
        if self.images is not None:
            return cast(np.ndarray, self.images[index])
        from blockbuilder.images import Preprocessing, read_image

        assert self.files is not None
        preprocessing = Preprocessing.for_input(self.shape)
        return np.stack([read_image(str(file), preprocessing) for file in self.files[index]])


@dataclass
class Splits:
    """The train/validation/test :class:`Examples` and what they hold."""

    train: Examples
    validation: Examples
    test: Examples
    class_names: list[str]
    sizes: dict[str, int]


def to_model_input(images: np.ndarray, shape: Sequence[int], batch: int = 512) -> np.ndarray:
    """Images in ``[0, 1]`` ``(n, h, w, c)`` to ``shape`` (H, W, C): channels, then size (antialiased)."""
    height, width, channels = shape
    if images.shape[-1] == 4:
        images = images[..., :3]
    if images.shape[-1] == 1 and channels == 3:
        images = np.repeat(images, 3, axis=-1)
    elif images.shape[-1] == 3 and channels == 1:
        images = (images @ GREY)[..., None]
    if tuple(images.shape[1:3]) != (height, width):
        parts = [keras.ops.convert_to_numpy(keras.ops.image.resize(
            images[start:start + batch], (height, width), antialias=True, data_format="channels_last"))
            for start in range(0, len(images), batch)]
        images = np.concatenate(parts) if parts else np.zeros((0, height, width, images.shape[-1]), np.float32)
    return np.clip(images.astype(np.float32), 0.0, 1.0)


def part_examples(part: sources.Part, shape: Sequence[int]) -> Examples:
    """A part of a source as :class:`Examples`: arrays shaped for the model now, files when a batch needs them."""
    if part.images is not None:
        return Examples(part.labels, to_model_input(part.images, shape), shape=shape)
    return Examples(part.labels, files=part.files, shape=shape)


def load_splits(source: str, input_shape: Sequence[int], classes: int, validation_split: float = 0.1, *,
                validation: Optional[str] = None, test: Optional[str] = None) -> Splits:
    """Load a data set as train/validation/test :class:`Examples` shaped for a model.

    Args:
        source: A data source (``digits``, ``folder:PATH`` ...; a path as it is to be opened:
            :func:`blockbuilder.training.api.resolve_dataset` makes it relative to the file that wrote it).
        input_shape: The model's input ``(H, W, C)``.
        classes: The model's number of outputs.
        validation_split: Fraction of the training data held out when there is no validation split.
        validation, test: Sources of the validation and test images (``train.validation``,
            ``train.test``), instead of the source's own or held-out ones.

    Raises:
        DataError: The data cannot be read, or does not fit the model (naming both).
    """
    names, parts = sources.source_parts(source, input_shape, classes, validation_split, validation=validation,
                                        test=test)
    made = {split: part_examples(part, input_shape) for split, part in parts.items()}
    return Splits(made["train"], made["validation"], made["test"], names,
                  {split: len(part) for split, part in parts.items()})


# --------------------------------------------------------------------------- batches


class Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of :class:`Examples` in a given order, decoded (and augmented) by ``workers`` threads.

    ``batch`` ``i`` is a pure function of ``(order, i, seed)``, so the order in which the workers
    finish does not matter.
    """

    def __init__(self, examples: Examples, order: np.ndarray, batch_size: int, *, drop_remainder: bool = False,
                 augmenter: Optional[Augmenter] = None, seed: Sequence[int] = (), workers: int = WORKERS) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=2 * workers)
        self.examples, self.order, self.size = examples, order, batch_size
        self.augmenter, self.seed = augmenter, tuple(seed)
        whole, rest = divmod(len(order), batch_size)
        self.count = whole if drop_remainder or rest == 0 else whole + 1

    def __len__(self) -> int:
        return self.count

    @property
    def num_batches(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(f"batch {index} of {self.count}")
        chosen = self.order[index * self.size:(index + 1) * self.size]
        images = self.examples.gather(chosen)
        if self.augmenter is not None:
            images = self.augmenter(images, (*self.seed, index))
        return images, self.examples.labels[chosen]

    def take(self, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The first ``count`` batches (as ``tf.data.Dataset.take`` of batches)."""
        return (self[i] for i in range(min(count, self.count)))


#: Arrays already handed to TensorFlow, per :class:`Examples` (made once, used every epoch).
_ON_TENSORFLOW: weakref.WeakKeyDictionary[Examples, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def feed(batches: Batches) -> Any:
    """``batches`` as ``fit`` takes them fastest on this backend: as they are on JAX and PyTorch.

    On TensorFlow, a ``tf.data`` map over the batch indices, prefetched: the very batches of
    ``batches`` (same order, same augmentation), but examples in memory are gathered by TensorFlow,
    out of Python (Keras' generator adapter for a ``PyDataset`` costs a fifth of a small model's
    speed there: bench/bench_pipeline.py). Files are decoded and batches augmented by the NumPy code.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    examples, size = batches.examples, batches.size
    shape = examples.images.shape[1:] if examples.images is not None else examples.shape
    # every batch whole (the training batches are): the batch dimension is static, as the former
    # pipeline's ``batch(drop_remainder=True)`` made it, and the train step is traced for that shape
    rows = size if len(batches.order) >= len(batches) * size else None

    def numpy_batch(index: Any) -> tuple[Any, Any]:
        images, labels = tf.numpy_function(lambda i: batches[int(i)], [index], (tf.float32, tf.int32),
                                           stateful=False)
        return tf.ensure_shape(images, (rows, *shape)), tf.ensure_shape(labels, (rows,))

    def augmented(images: Any, index: Any) -> Any:
        augmenter = cast(Augmenter, batches.augmenter)
        done = tf.numpy_function(lambda x, i: augmenter(x, (*batches.seed, int(i))), [images, index], tf.float32,
                                 stateful=False)
        return tf.ensure_shape(done, (rows, *shape))

    if examples.images is None:
        make = numpy_batch
    else:
        if examples not in _ON_TENSORFLOW:
            _ON_TENSORFLOW[examples] = (tf.constant(examples.images), tf.constant(examples.labels))
        images, labels = _ON_TENSORFLOW[examples]
        order = tf.constant(batches.order, tf.int64)

        def make(index: Any) -> tuple[Any, Any]:
            chosen = order[index * size:(index + 1) * size]
            picked = tf.ensure_shape(tf.gather(images, chosen), (rows, *shape))
            return (augmented(picked, index) if batches.augmenter is not None else picked), \
                tf.ensure_shape(tf.gather(labels, chosen), (rows,))

    dataset = tf.data.Dataset.range(len(batches))
    if examples.images is not None and batches.augmenter is None:
        # a gather is quick: one tf.data thread stays ahead, and the cores are left to the train step
        # (LeNet-5 on 2 cores, against the former pipeline: 0.94-0.95x mapped in parallel, 0.92-1.02x so)
        return dataset.map(make).prefetch(tf.data.AUTOTUNE)
    # tf.data tunes the parallelism and the prefetch, as the former tf.data pipeline let it
    return dataset.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the training examples in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(size)


def train_batches(
    dataset: Examples,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    augmentation: Sequence[AugmentationSpec] = (),
    input_shape: Sequence[int] = (),
    shuffle_buffer: int = 10000,
    drop_remainder: bool = False,
    shard: tuple[int, int] = (1, 0),
    augmenter: Optional[Augmenter] = None,
    workers: int = WORKERS,
) -> Batches:
    """One epoch of shuffled, batched, augmented training data, a pure function of ``(seed, epoch)``.

    Args:
        dataset: The (cached) training examples.
        batch_size: The batch size of this process (the global one over the process count).
        seed: The run's seed.
        epoch: The 0-based epoch: each epoch has its own order and augmentation.
        augmentation: The ``augmentation:`` steps.
        input_shape: The images' shape.
        shuffle_buffer: Unused: the shuffle is a full permutation of indices (``train.shuffle_buffer``
            bounded the memory of the former ``tf.data`` pipeline).
        drop_remainder: Drop the last partial batch (needed when batches are split over devices).
        shard: ``(process count, process index)``: every process permutes alike, then keeps its share.
        augmenter: The :class:`Augmenter` of ``augmentation``, made once for all epochs.
        workers: Threads that decode and augment batches.
    """
    del shuffle_buffer
    order = epoch_order(len(dataset), seed, epoch)
    count, index = shard
    if count > 1:
        order = order[index::count]
    if augmentation and augmenter is None:
        augmenter = Augmenter(augmentation, input_shape)
    return Batches(dataset, order, batch_size, drop_remainder=drop_remainder,
                   augmenter=augmenter if augmentation else None, seed=(seed * count + index, epoch),
                   workers=workers)


def eval_batches(dataset: Examples, batch_size: int, workers: int = WORKERS) -> Batches:
    """Batched evaluation data in a fixed order."""
    return Batches(dataset, np.arange(len(dataset)), batch_size, workers=workers)
