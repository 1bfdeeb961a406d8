"""Data sets for training, as ``tf.data`` pipelines shaped for the model.

A source (``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH``, ``npz:PATH``) becomes three unbatched
datasets of ``(image, label)`` with images already float32 in ``[0, 1]``, converted (grey <-> RGB) and
resized to the model's input. :func:`train_batches` and :func:`eval_batches` then shuffle, batch,
augment and prefetch them.

Every random choice of the training pipeline is a pure function of ``(seed, epoch)``: shuffling uses a
per-epoch seed and augmentation draws per-batch stateless seeds, so a resumed run sees the same batches
as an uninterrupted one, even with parallel augmentation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from blockbuilder.errors import SpecError
from blockbuilder.training.spec import AugmentationSpec

__all__ = ["Augmenter", "DataError", "Splits", "eval_batches", "load_splits", "train_batches"]

AUTOTUNE = tf.data.AUTOTUNE
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the train/validation/test split never depends on the training seed


class DataError(SpecError):
    """The data set cannot feed the model (missing files, wrong classes or shape): one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, path="train.dataset")


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


def _check_model_fits(
    source: str, class_count: int, channels: int | None, shape: Sequence[int], classes: int
) -> None:
    if class_count > classes:
        raise DataError(
            f"data set '{source}' has {class_count} classes but the model has {classes} "
            f"(set classes: {class_count})"
        )
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise DataError(
            f"data set '{source}' holds images, but the model's input {tuple(shape)} is not "
            f"(height, width, 1 or 3 channels)"
        )
    if channels is not None and channels not in (1, 3, 4):
        raise DataError(
            f"data set '{source}' has {channels}-channel images; the model's input "
            f"{tuple(shape)} needs 1 or 3"
        )


def _images_array(x: np.ndarray, source: str, shape: Sequence[int]) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(
            f"data set '{source}' has arrays of shape {x.shape[1:]}, not images (H, W[, C]); "
            f"the model's input is {tuple(shape)}"
        )
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1.0 else 1.0
    return x.astype(np.float32) / np.float32(scale)


def _stratified_split(
    labels: np.ndarray, validation_split: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a fixed stratified train/validation/test split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    train, validation = train_test_split(
        rest, test_size=validation_split, stratify=labels[rest], random_state=SPLIT_SEED
    )
    return np.sort(train), np.sort(validation), np.sort(test)


def _from_arrays(
    x: np.ndarray, y: np.ndarray, shape: Sequence[int], batch: int = 256
) -> tf.data.Dataset:
    images = tf.data.Dataset.from_tensor_slices(x).batch(batch)
    images = images.map(lambda b: to_model_input(b, shape)).unbatch()
    converted = np.concatenate([b for b in images.batch(4096).as_numpy_iterator()] or [x[:0]])
    return tf.data.Dataset.from_tensor_slices((converted, y.astype(np.int32)))


def _array_splits(
    x: np.ndarray,
    y: np.ndarray,
    shape: Sequence[int],
    validation_split: float,
    class_names: list[str],
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> Splits:
    if test is None:
        train, validation, test_index = _stratified_split(y, validation_split)
        test = (x[test_index], y[test_index])
    else:
        from sklearn.model_selection import train_test_split

        train, validation = train_test_split(
            np.arange(len(y)), test_size=validation_split, stratify=y, random_state=SPLIT_SEED
        )
    return Splits(
        train=_from_arrays(x[train], y[train], shape),
        validation=_from_arrays(x[validation], y[validation], shape),
        test=_from_arrays(test[0], test[1], shape),
        class_names=class_names,
        sizes={"train": len(train), "validation": len(validation), "test": len(test[1])},
    )


# --------------------------------------------------------------------------- sources


def _digits(shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    _check_model_fits("digits", 10, 1, shape, classes)
    names = [str(n) for n in digits.target_names]
    return _array_splits(x, digits.target, shape, validation_split, names)


def _npz(path: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    source = f"npz:{path}"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    missing = [key for key in ("x", "y") if key not in data]
    if missing:
        raise DataError(f"'{path}' has no array {missing[0]!r} (it has: {', '.join(data)})")
    x = _images_array(data["x"], source, shape)
    y = data["y"].astype(np.int64).reshape(-1)
    class_count = int(y.max(initial=-1)) + 1
    names = [str(n) for n in data.get("class_names", np.arange(class_count))]
    _check_model_fits(source, max(class_count, len(names)), x.shape[-1], shape, classes)
    test = None
    if "x_test" in data and "y_test" in data:
        test = (_images_array(data["x_test"], source, shape), data["y_test"].astype(np.int64))
    return _array_splits(x, y, shape, validation_split, names, test)


def _folder(path: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"folder '{path}' does not exist")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(names):
        for file in sorted((root / name).rglob("*")):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(file))
                labels.append(label)
    if not files:
        raise DataError(f"folder '{path}' has no images in class sub-folders (one per class)")
    _check_model_fits(f"folder:{path}", len(names), None, shape, classes)
    y = np.asarray(labels)
    train, validation, test = _stratified_split(y, validation_split)
    files_array = np.asarray(files)

    def load(index: np.ndarray) -> tf.data.Dataset:
        def decode(file: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image = tf.io.decode_image(
                tf.io.read_file(file), channels=shape[-1], expand_animations=False
            )
            image = tf.image.convert_image_dtype(image, tf.float32)
            return to_model_input(tf.ensure_shape(image, [None, None, shape[-1]]), shape), label

        ds = tf.data.Dataset.from_tensor_slices((files_array[index], y[index].astype(np.int32)))
        return ds.map(decode, num_parallel_calls=AUTOTUNE)

    return Splits(
        load(train), load(validation), load(test), names,
        {"train": len(train), "validation": len(validation), "test": len(test)},
    )


def _tfds(spec: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    import tensorflow_datasets as tfds

    name, _, split = spec.partition(":")
    try:
        builder = tfds.builder(name)
        builder.download_and_prepare()
    except Exception as error:  # tfds raises many types: offline, unknown name, bad config
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"tfds:{name}: {message}") from None
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
    _check_model_fits(f"tfds:{spec}", label.num_classes, channels, shape, classes)

    def load(split_name: str) -> tf.data.Dataset:
        ds = builder.as_dataset(split=split_name, as_supervised=True, shuffle_files=False)
        return ds.map(
            lambda image, y: (to_model_input(tf.cast(image, tf.float32) / 255.0, shape),
                              tf.cast(y, tf.int32)),
            num_parallel_calls=AUTOTUNE,
        )

    datasets = {"train": load(train_split), "validation": load(validation), "test": load(test)}
    sizes = {key: _count(ds) for key, ds in datasets.items()}
    return Splits(datasets["train"], datasets["validation"], datasets["test"], names, sizes)


def _count(dataset: tf.data.Dataset) -> int:
    known = int(dataset.cardinality())
    return known if known >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def load_splits(
    source: str, input_shape: Sequence[int], classes: int, validation_split: float = 0.1
) -> Splits:
    """Load a data set as train/validation/test datasets shaped for a model.

    Args:
        source: ``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH`` or ``npz:PATH``.
        input_shape: The model's input ``(H, W, C)``.
        classes: The model's number of outputs.
        validation_split: Fraction of the training data held out when there is no validation split.

    Raises:
        DataError: The data cannot be read, or does not fit the model (naming both).
    """
    kind, _, rest = source.partition(":")
    loaders: dict[str, Callable[..., Splits]] = {"tfds": _tfds, "folder": _folder, "npz": _npz}
    if source == "digits":
        return _digits(input_shape, classes, validation_split)
    if kind not in loaders or not rest:
        raise DataError(
            f"unknown data set '{source}' (use digits, tfds:NAME[:SPLIT], folder:PATH or npz:PATH)"
        )
    return loaders[kind](os.path.expanduser(rest) if kind != "tfds" else rest,
                         input_shape, classes, validation_split)


# --------------------------------------------------------------------------- augmentation


def _seed_stream_class() -> type:
    import keras

    class SeedStream(keras.random.SeedGenerator):
        """Stateless seeds: each draw is ``base + (0, draw number)``, with ``base`` a tensor.

        Keras' own generator keeps its state in a variable, which parallel ``map`` calls update in
        a racy order; this one makes every random draw a function of the batch's seed.
        """

        def __init__(self, base: tf.Tensor) -> None:  # no variable: nothing to track
            self._base = base
            self._draws = 0

        def next(self, ordered: bool = True) -> tf.Tensor:
            self._draws += 1
            return self._base + tf.constant([0, 7919 * self._draws], dtype=self._base.dtype)

    return SeedStream


@contextlib.contextmanager
def no_distribution() -> Iterator[None]:
    """Make Keras objects as plain local objects, even under a JAX ``DataParallel`` distribution.

    The augmentation layers live in the ``tf.data`` pipeline of each process; made under the
    distribution, their seed variables would be placed on the global mesh, which is a collective
    across processes on every creation.
    """
    import keras

    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def augmentation_layers(steps: Sequence[AugmentationSpec], shape: Sequence[int]) -> list:
    """Keras preprocessing layers for the ``augmentation:`` steps, in order."""
    import keras

    height, width = shape[0], shape[1]
    layers = []
    with no_distribution():
        for step in steps:
            options = step.options
            if step.kind == "random_crop":  # pad with zeros, crop back: a whole-pixel translation
                layers.append(keras.layers.RandomTranslation(
                    options.padding / height, options.padding / width,
                    fill_mode="constant", interpolation="nearest"))
            elif step.kind == "flip":
                layers.append(keras.layers.RandomFlip(options.mode))
            elif step.kind == "translation":
                layers.append(keras.layers.RandomTranslation(options.factor, options.factor))
            elif step.kind == "rotation":
                layers.append(keras.layers.RandomRotation(options.factor))
            elif step.kind == "zoom":
                layers.append(keras.layers.RandomZoom(options.factor))
            elif step.kind == "contrast":
                layers.append(keras.layers.RandomContrast(options.factor, value_range=(0, 1)))
    return layers


class Augmenter:
    """The ``augmentation:`` steps as one ``tf.function``, traced once and reused every epoch.

    Tracing the Keras layers costs about 0.1 s; a pipeline that calls this function only adds a
    call to its graph. Every random draw is a function of ``(seed, epoch, batch index)``.

    Args:
        steps: The ``augmentation:`` steps.
        shape: The images' shape ``(H, W, C)`` (the model's input).
    """

    def __init__(self, steps: Sequence[AugmentationSpec], shape: Sequence[int]) -> None:
        layers = augmentation_layers(steps, shape)
        stream_class = _seed_stream_class()
        signature = [tf.TensorSpec([None, *shape], tf.float32), tf.TensorSpec([2], tf.int64)]

        @tf.function(input_signature=signature)
        def augment(images: tf.Tensor, base: tf.Tensor) -> tf.Tensor:
            with no_distribution():
                for position, layer in enumerate(layers):
                    stream = stream_class(base + tf.constant([0, 1 << 20], tf.int64) * position)
                    object.__setattr__(layer, "_get_seed_generator",
                                       lambda backend=None, s=stream: s)
                    images = layer(images, training=True)
            return tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)

        self._augment = augment.get_concrete_function()

    def mapper(self, seed: int, epoch: int) -> Callable:
        """The ``map`` function for ``dataset.enumerate()`` of one epoch's batches."""

        def augment(index: tf.Tensor, batch: tuple) -> tuple:
            images, labels = batch
            base = tf.stack([tf.constant(seed * 100003 + epoch, tf.int64), tf.cast(index, tf.int64)])
            return self._augment(images, base), labels

        return augment


# --------------------------------------------------------------------------- pipelines


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
        augment = augmenter.mapper(seed * shard[0] + shard[1], epoch)
        ds = ds.enumerate().map(augment, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def eval_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batched, prefetched evaluation data in a fixed order."""
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
