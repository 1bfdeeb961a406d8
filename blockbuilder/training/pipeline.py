"""The backend-neutral input pipeline of the JAX and PyTorch backends: NumPy, no TensorFlow.

It mirrors the ``tf.data`` pipeline of the TensorFlow backend (:mod:`blockbuilder.training.data`,
:mod:`blockbuilder.training.tfdata`, :mod:`blockbuilder.training.augment`) with the same names and
signatures, so the trainer picks one or the other by backend:

* :func:`load_splits`: the same sources (``digits``, ``folder:``, ``npz:``; ``tfds:`` when TensorFlow
  is installed), the same fixed train/validation/test split, images as float32 in ``[0, 1]`` shaped
  for the model. ``folder:`` images stay files until a batch needs them and are decoded by
  :func:`blockbuilder.images.read_image`.
* :func:`train_batches`: one epoch as a :class:`keras.utils.PyDataset` whose batches are decoded and
  augmented by a pool of worker threads (``workers``), so the accelerator is fed while they work.
* Every random choice is a pure function of ``(seed, epoch, batch)``: the epoch's order is a
  permutation seeded by ``(seed, epoch)`` and each batch's augmentation draws from a generator seeded
  by ``(seed, epoch, batch, step)``. Workers may finish in any order and a resumed run still sees
  exactly the batches an uninterrupted one would.
* :class:`Augmenter` (:mod:`blockbuilder.training.augment_numpy`): the ``augmentation:`` steps in
  NumPy/SciPy with the geometry of the TensorFlow ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, cast

import keras
import numpy as np

from blockbuilder.training import data, sources
from blockbuilder.training.augment_numpy import Augmenter
from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter", "Examples", "Splits", "eval_batches", "load_splits", "to_model_input", "train_batches"]

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
    """The train/validation/test :class:`Examples` and what they hold (as :class:`data.Splits`)."""

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


def _tfds(spec: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise sources.error(f"tfds:{spec} needs TensorFlow and tensorflow-datasets "
                             "(pip install tensorflow tensorflow-datasets), or use folder: or npz:") from None
    splits = data.load_splits(f"tfds:{spec}", shape, classes, validation_split)

    def materialise(dataset: Any) -> Examples:
        pairs = list(dataset.batch(1024).as_numpy_iterator())
        images = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros((0, *shape), np.float32)
        labels = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros((0,), np.int32)
        return Examples(labels, images, shape=shape)

    return Splits(materialise(splits.train), materialise(splits.validation), materialise(splits.test),
                  splits.class_names, splits.sizes)


def load_splits(source: str, input_shape: Sequence[int], classes: int, validation_split: float = 0.1, *,
                validation: Optional[str] = None, test: Optional[str] = None) -> Splits:
    """Load a data set as train/validation/test :class:`Examples` (as :func:`data.load_splits`).

    Raises:
        DataError: The data cannot be read, or does not fit the model (naming both).
    """
    def tfds(where: str) -> sources.Made[Examples]:
        found = _tfds(where, input_shape, classes, validation_split)
        return found.class_names, {"train": found.train, "validation": found.validation, "test": found.test}, \
            found.sizes

    names, made, sizes = sources.assemble(source, input_shape, classes, validation_split,
                                          lambda part: part_examples(part, input_shape), tfds, validation, test)
    return Splits(made["train"], made["validation"], made["test"], names, sizes)


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

    The arguments are those of :func:`blockbuilder.training.tfdata.train_batches`; the shuffle is
    a full permutation (``shuffle_buffer`` is the TensorFlow pipeline's memory bound; here the
    examples are indices). Every process permutes alike and keeps its share.
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
