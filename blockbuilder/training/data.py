"""Data sources for training: ``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH``, ``npz:PATH``.

A source becomes three unbatched ``tf.data`` datasets of ``(image, label)`` (:class:`Splits`), images
already float32 in ``[0, 1]``, converted (grey <-> RGB) and resized to the model's input. Shuffling,
batching and augmentation are the pipeline's job (:mod:`blockbuilder.training.tfdata`).

The train/validation/test split never depends on the training seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blockbuilder.errors import DataError

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
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the train/validation/test split never depends on the training seed


def _error(message: str) -> DataError:
    return DataError(f"train.dataset: {message}")


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
    image = tf.io.decode_image(tf.io.read_file(file), channels=shape[-1], expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    return to_model_input(tf.ensure_shape(image, [None, None, shape[-1]]), shape)


def _check_model_fits(
    source: str, class_count: int, channels: int | None, shape: Sequence[int], classes: int
) -> None:
    if class_count > classes:
        raise _error(f"data set '{source}' has {class_count} classes but the model has {classes} "
                     f"(set classes: {class_count})")
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise _error(f"data set '{source}' holds images, but the model's input {tuple(shape)} is not "
                     f"(height, width, 1 or 3 channels)")
    if channels is not None and channels not in (1, 3, 4):
        raise _error(f"data set '{source}' has {channels}-channel images; the model's input "
                     f"{tuple(shape)} needs 1 or 3")


def _images_array(x: np.ndarray, source: str, shape: Sequence[int]) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise _error(f"data set '{source}' has arrays of shape {x.shape[1:]}, not images (H, W[, C]); "
                     f"the model's input is {tuple(shape)}")
    if x.dtype.kind not in "uif":
        raise _error(f"data set '{source}' has images of type {x.dtype}, not numbers")
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1.0 else 1.0
    return x.astype(np.float32) / np.float32(scale)


def _stratified_split(labels: np.ndarray, validation_split: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a fixed stratified train/validation/test split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        rest, test = train_test_split(index, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
        train, validation = train_test_split(rest, test_size=validation_split, stratify=labels[rest],
                                             random_state=SPLIT_SEED)
    except ValueError as error:  # too few images of a class to split
        raise _error(f"cannot split {len(labels)} images into train, validation and test: {error}") from None
    return np.sort(train), np.sort(validation), np.sort(test)


def _from_arrays(x: np.ndarray, y: np.ndarray, shape: Sequence[int], batch: int = 256) -> tf.data.Dataset:
    images = tf.data.Dataset.from_tensor_slices(x).batch(batch)
    images = images.map(lambda b: to_model_input(b, shape)).unbatch()
    converted = np.concatenate([b for b in images.batch(4096).as_numpy_iterator()] or [x[:0]])
    return tf.data.Dataset.from_tensor_slices((converted, y.astype(np.int32)))


def _array_splits(x: np.ndarray, y: np.ndarray, shape: Sequence[int], validation_split: float,
                  class_names: list[str], test: tuple[np.ndarray, np.ndarray] | None = None) -> Splits:
    if test is None:
        train, validation, test_index = _stratified_split(y, validation_split)
        test = (x[test_index], y[test_index])
    else:
        from sklearn.model_selection import train_test_split

        train, validation = train_test_split(np.arange(len(y)), test_size=validation_split, stratify=y,
                                             random_state=SPLIT_SEED)
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
    except (OSError, ValueError, EOFError) as error:
        raise _error(f"cannot read '{path}': {error}") from None
    missing = [key for key in ("x", "y") if key not in data]
    if missing:
        raise _error(f"'{path}' has no array {missing[0]!r} (it has: {', '.join(data)})")
    x = _images_array(data["x"], source, shape)
    y = data["y"].astype(np.int64).reshape(-1)
    class_count = int(y.max(initial=-1)) + 1
    names = [str(n) for n in data.get("class_names", np.arange(class_count))]
    _check_model_fits(source, max(class_count, len(names)), x.shape[-1], shape, classes)
    test = None
    if "x_test" in data and "y_test" in data:
        test = (_images_array(data["x_test"], source, shape), data["y_test"].astype(np.int64))
    return _array_splits(x, y, shape, validation_split, names, test)


def folder_files(path: str) -> tuple[list[str], list[str], list[int]]:
    """The class names (sub-folders, sorted) and every image file with its label, of a ``folder:`` data set."""
    root = Path(path)
    if not root.is_dir():
        raise _error(f"folder '{path}' does not exist")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(names):
        for file in sorted((root / name).rglob("*")):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(file))
                labels.append(label)
    if not files:
        raise _error(f"folder '{path}' has no images in class sub-folders (one per class)")
    return names, files, labels


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

    _, files, _ = folder_files(path)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bad = [message for message in pool.map(problem, files) if message is not None]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise _error(f"{len(bad)} of {len(files)} images in folder '{path}' cannot be read: "
                     f"{'; '.join(bad[:5])}{more}")
    return len(files)


def _folder(path: str, shape: Sequence[int], classes: int, validation_split: float) -> Splits:
    names, files, labels = folder_files(path)
    _check_model_fits(f"folder:{path}", len(names), None, shape, classes)
    y = np.asarray(labels)
    train, validation, test = _stratified_split(y, validation_split)
    files_array = np.asarray(files)

    def load(index: np.ndarray) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((files_array[index], y[index].astype(np.int32)))
        return ds.map(lambda file, label: (decode_image_file(file, shape), label), num_parallel_calls=AUTOTUNE)

    return Splits(load(train), load(validation), load(test), names,
                  {"train": len(train), "validation": len(validation), "test": len(test)})


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
    _check_model_fits(f"tfds:{spec}", label.num_classes, channels, shape, classes)

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


def load_splits(source: str, input_shape: Sequence[int], classes: int, validation_split: float = 0.1) -> Splits:
    """Load a data set as train/validation/test datasets shaped for a model.

    Args:
        source: ``digits``, ``tfds:NAME[:SPLIT]``, ``folder:PATH`` or ``npz:PATH`` (a path as it is
            to be opened: :func:`blockbuilder.training.sources.resolve_dataset` makes it relative to
            the file that wrote it).
        input_shape: The model's input ``(H, W, C)``.
        classes: The model's number of outputs.
        validation_split: Fraction of the training data held out when there is no validation split.

    Raises:
        DataError: The data cannot be read, or does not fit the model (naming both).
    """
    kind, where = dataset_kind(source)
    if kind == "digits":
        return _digits(input_shape, classes, validation_split)
    loaders: dict[str, Callable[..., Splits]] = {"tfds": _tfds, "folder": _folder, "npz": _npz}
    return loaders[kind](where, input_shape, classes, validation_split)


def dataset_kind(source: str) -> tuple[str, str]:
    """``(kind, where)`` of a ``train.dataset`` string: ``digits``, ``tfds`` (``NAME[:SPLIT]``), ``folder``
    or ``npz`` (the path, ``~`` expanded); both pipelines dispatch on it.

    Raises:
        DataError: Not one of those forms.
    """
    kind, _, rest = source.partition(":")
    if source == "digits":
        return "digits", ""
    if kind not in ("tfds", "folder", "npz") or not rest:
        raise _error(f"unknown data set '{source}' (use digits, tfds:NAME[:SPLIT], folder:PATH or npz:PATH)")
    return kind, rest if kind == "tfds" else os.path.expanduser(rest)
