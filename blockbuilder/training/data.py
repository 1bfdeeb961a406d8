"""Data sources for training as ``tf.data``: ``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH``, ``npz:PATH``.

A source becomes three unbatched ``tf.data`` datasets of ``(image, label)`` (:class:`Splits`), images
already float32 in ``[0, 1]``, converted (grey <-> RGB) and resized to the model's input. What a
source holds (class names, files or arrays per split, the fixed train/validation/test split) is read
by :mod:`blockbuilder.training.sources`, without TensorFlow, for both pipelines; shuffling,
batching and augmentation are the pipeline's job (:mod:`blockbuilder.training.tfdata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from blockbuilder.errors import DataError
from blockbuilder.text import plural
from blockbuilder.training import sources
from blockbuilder.training.sources import IMAGE_EXTENSIONS, Part, dataset_kind

if TYPE_CHECKING:
    import tensorflow as tf
else:
    class _LazyTensorFlow:
        """TensorFlow, imported on first use: the sources' NumPy helpers serve the JAX and PyTorch
        pipeline (:mod:`blockbuilder.training.pipeline`) where TensorFlow is not installed."""

        def __getattr__(self, name: str) -> Any:
            import tensorflow

            return getattr(tensorflow, name)

    tf = _LazyTensorFlow()

__all__ = ["IMAGE_EXTENSIONS", "DataError", "Splits", "check_folder", "dataset_kind", "decode_image_file",
           "folder_files", "load_splits", "to_model_input"]

AUTOTUNE = -1  # tf.data.AUTOTUNE, without importing TensorFlow
_error = sources.error


@dataclass
class Splits:
    """Three unbatched datasets of ``(float32 image in [0, 1], int32 label)`` and what they hold."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list[str]
    sizes: dict[str, int]


# --------------------------------------------------------------------------- conversion


def to_model_input(images: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
    """Convert images already scaled to ``[0, 1]`` to ``shape`` (H, W, C): channels, then size.

    Args:
        images: A float tensor ``(..., h, w, c)`` with ``c`` of 1, 3 or 4.
        shape: The model's input shape ``(H, W, C)`` with ``C`` of 1 or 3.
    """
    height, width, channels = shape
    if images.shape[-1] == 4:
        images = images[..., :3]
    if images.shape[-1] == 1 and channels == 3:
        images = tf.image.grayscale_to_rgb(images)
    elif images.shape[-1] == 3 and channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    if tuple(images.shape[-3:-1]) != (height, width):
        images = tf.image.resize(images, (height, width), antialias=True)
    return tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)


def decode_image_file(file: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
    """The one place a ``folder:`` image file becomes a model input (inside the ``tf.data`` graph).

    The files were checked before training (:func:`blockbuilder.images.check_image`), so decoding
    here does not fail on a corrupt file in the middle of an epoch.
    """
    from blockbuilder.images import read_image_in_graph  # the reader of predict, explore and embed

    return read_image_in_graph(file, shape)


def _from_arrays(x: np.ndarray, y: np.ndarray, shape: Sequence[int], batch: int = 256) -> tf.data.Dataset:
    images = tf.data.Dataset.from_tensor_slices(x).batch(batch)
    images = images.map(lambda b: to_model_input(b, shape)).unbatch()
    converted = np.concatenate([b for b in images.batch(4096).as_numpy_iterator()] or [x[:0]])
    return tf.data.Dataset.from_tensor_slices((converted, y.astype(np.int32)))


def part_dataset(part: Part, shape: Sequence[int]) -> tf.data.Dataset:
    """A part of a source as ``(image, label)`` shaped for the model: files decoded in the graph."""
    if part.images is not None:
        return _from_arrays(part.images, part.labels, shape)
    assert part.files is not None
    ds = tf.data.Dataset.from_tensor_slices((part.files, part.labels.astype(np.int32)))
    return ds.map(lambda file, label: (decode_image_file(file, shape), label), num_parallel_calls=AUTOTUNE)


def folder_files(path: str) -> list[str]:
    """Every image file of a ``folder:`` data set, in all its splits."""
    source = sources.read_source(f"folder:{path}")
    return [str(file) for part in source.parts.values() if part.files is not None for file in part.files]


def check_folder(path: str, workers: int = 8) -> int:
    """Decode every image of a ``folder:`` data set once (in threads) before training starts.

    Returns the number of images. Raises:
        DataError: naming the files that cannot be read (at most five, then a count).
    """
    from concurrent.futures import ThreadPoolExecutor

    from blockbuilder.errors import ImageError
    from blockbuilder.images import check_image

    def problem(file: str) -> str | None:
        try:
            check_image(file)
        except ImageError as error:
            return str(error)
        return None

    files = folder_files(path)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bad = [message for message in pool.map(problem, files) if message is not None]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise _error(f"{len(bad)} of {plural(len(files), 'image')} in folder '{path}' cannot be read: "
                     f"{'; '.join(bad[:5])}{more}")
    return len(files)


def _tfds(spec: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    import tensorflow_datasets as tfds

    name, _, split = spec.partition(":")
    try:
        builder = tfds.builder(name)
        builder.download_and_prepare()
    except Exception as error:  # tfds raises many types: offline, unknown name, bad config
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _error(f"tfds:{name}: {message}") from None
    info = builder.info
    available = set(info.splits.keys())
    train_split = split or "train"
    if "validation" in available and not split:
        validation = "validation"
    else:
        keep = round(100 * (1 - validation_split))
        train_split, validation = f"{train_split}[:{keep}%]", f"{train_split}[{keep}%:]"
    test = "test" if "test" in available else validation
    label = info.features["label"]
    names = list(label.names)
    channels = info.features["image"].shape[-1]
    sources.check_model_fits(f"tfds:{spec}", label.num_classes, channels, shape, classes)

    def load(split_name: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_name, as_supervised=True, shuffle_files=False)
        return ds.map(
            lambda image, y: (to_model_input(tf.cast(image, tf.float32) / 255.0, shape), tf.cast(y, tf.int32)),
            num_parallel_calls=AUTOTUNE,
        )

    datasets = {"train": load(train_split), "validation": load(validation), "test": load(test)}
    sizes = {key: _count(ds) for key, ds in datasets.items()}
    return Splits(datasets["train"], datasets["validation"], datasets["test"], names, sizes)


def _count(dataset: tf.data.Dataset) -> int:
    known = int(dataset.cardinality())
    return known if known >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def load_splits(source: str, input_shape: Sequence[int], classes: int, validation_split: float = 0.1, *,
                validation: str | None = None, test: str | None = None) -> Splits:
    """Load a data set as train/validation/test datasets shaped for a model.

    Args:
        source: ``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH`` or ``npz:PATH`` (a path as it is
            to be opened: :func:`blockbuilder.training.api.resolve_dataset` makes it relative to
            the file that wrote it).
        input_shape: The model's input ``(H, W, C)``.
        classes: The model's number of outputs.
        validation_split: Fraction of the training data held out when there is no validation split.
        validation, test: Sources of the validation and test images (``train.validation``,
            ``train.test``), instead of the source's own or held-out ones.

    Raises:
        DataError: The data cannot be read, or does not fit the model (naming both).
    """
    def tfds(where: str) -> sources.Made[tf.data.Dataset]:
        found = _tfds(where, input_shape, classes, validation_split)
        return found.class_names, {"train": found.train, "validation": found.validation, "test": found.test}, \
            found.sizes

    names, made, sizes = sources.assemble(source, input_shape, classes, validation_split,
                                          lambda part: part_dataset(part, input_shape), tfds, validation, test)
    return Splits(made["train"], made["validation"], made["test"], names, sizes)
