"""What a data source holds, read without TensorFlow or Keras: class names and images per split.

One reader for both input pipelines: the ``tf.data`` one of the TensorFlow backend
(:mod:`blockbuilder.training.data`) and the NumPy one of JAX and PyTorch
(:mod:`blockbuilder.training.pipeline`) each turn the :class:`Part` objects made here into their own
datasets. ``tfds:`` sources need TensorFlow and are read by :mod:`blockbuilder.training.data` alone.

A ``folder:`` is either class sub-folders (``photos/cat/*.jpg``, ``photos/dog/*.jpg``), or split
sub-folders each holding the class sub-folders: ``train/`` and any of ``val/`` (or ``validation/``,
``valid/``) and ``test/``, the layout of ImageNet, of Keras' ``image_dataset_from_directory``
examples and of Ultralytics classification. A split the data set does not have is held out of the
training images, stratified, with a split that never depends on the training seed.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np

from blockbuilder.errors import DataError
from blockbuilder.text import plural

__all__ = ["IMAGE_EXTENSIONS", "SPLIT_FOLDERS", "Part", "Source", "check_npz_labels", "class_names_of", "complete",
           "dataset_kind", "folder_layout", "assemble", "locate", "split_parts", "read_source", "role_part"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")  # what serving reads
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the train/validation/test split never depends on the training seed
#: Sub-folder names of a ``folder:`` laid out in splits, and the split each one is.
SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation", "valid": "validation",
                 "test": "test"}
FORMS = "digits, tfds:NAME[:SPLIT], folder:PATH or npz:PATH"


def error(message: str, key: str = "dataset") -> DataError:
    """A data error naming the ``train:`` key whose source it is about."""
    return DataError(f"train.{key}: {message}")


def dataset_kind(source: str, key: str = "dataset") -> tuple[str, str]:
    """``(kind, where)`` of a data source string: ``digits``, ``tfds`` (``NAME[:SPLIT]``), ``folder``
    or ``npz`` (the path, ``~`` expanded); every loader dispatches on it.

    Raises:
        DataError: Not one of those forms.
    """
    kind, _, rest = source.partition(":")
    if source == "digits":
        return "digits", ""
    if kind not in ("tfds", "folder", "npz") or not rest:
        raise error(f"unknown data set '{source}' (use {FORMS})", key)
    return kind, rest if kind == "tfds" else os.path.expanduser(rest)


def locate(source: str, where: Any) -> tuple[str, Path]:
    """A ``folder:``/``npz:`` source with its path made relative to the file that wrote it (``where``, a
    location), and that path. A path from the command line (``--set``) stays relative to the working directory."""
    kind, _, rest = source.partition(":")
    path = Path(os.path.expanduser(rest))
    written_in_file = where is not None and where.line and Path(where.file).is_file()
    if not path.is_absolute() and written_in_file:
        path = Path(where.file).parent / path
    return f"{kind}:{path}", path


@dataclass(frozen=True)
class Part:
    """One split of a data source before it becomes a dataset: image files or arrays, and labels.

    Attributes:
        labels: One integer label per image.
        files: Image file paths (``folder:``), or ``None``.
        images: Images as float32 in ``[0, 1]``, ``(n, h, w, c)`` as stored (arrays), or ``None``.
    """

    labels: np.ndarray
    files: Optional[np.ndarray] = None
    images: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Part:
        """The images at ``index``."""
        return Part(self.labels[index], None if self.files is None else self.files[index],
                    None if self.images is None else self.images[index])


@dataclass(frozen=True)
class Source:
    """A data source's class names and the splits it has of its own (``train``, ``validation``, ``test``).

    Attributes:
        name: The source as written (``folder:photos``), for messages.
        class_names: The class names; label ``i`` is ``class_names[i]``.
        parts: The splits the source has; ``train`` always.
        channels: Channels of its images when known without decoding them.
    """

    name: str
    class_names: list[str]
    parts: dict[str, Part] = field(default_factory=dict)
    channels: Optional[int] = None


# --------------------------------------------------------------------------- folders


def _subfolders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(root: Path, names: list[str]) -> tuple[list[str], list[int]]:
    files, labels = [], []
    for label, name in enumerate(names):
        if not (root / name).is_dir():  # a validation or test folder may lack a class
            continue
        for file in sorted((root / name).rglob("*")):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(file))
                labels.append(label)
    return files, labels


def folder_layout(path: str, key: str = "dataset") -> tuple[list[str], dict[str, Path]]:
    """The class names of a ``folder:`` and the folder of each split it has (``{"train": root}`` when flat).

    Raises:
        DataError: The folder does not exist, or mixes split folders with class folders.
    """
    root = Path(path)
    if not root.is_dir():
        raise error(f"folder '{path}' does not exist", key)
    names = _subfolders(root)
    splits = {name: SPLIT_FOLDERS[name.lower()] for name in names if name.lower() in SPLIT_FOLDERS}
    if "train" not in splits.values():
        return names, {"train": root}
    others = [name for name in names if name not in splits]
    if others:
        raise error(f"folder '{path}' mixes split folders ({', '.join(splits)}) with class folders "
                    f"({', '.join(others[:5])}): put the classes inside {', '.join(splits)}", key)
    seen = [split for split in splits.values()]
    if len(seen) != len(set(seen)):
        raise error(f"folder '{path}' has more than one validation folder ({', '.join(splits)})", key)
    folders = {split: root / name for name, split in splits.items()}
    return _subfolders(folders["train"]), folders


def _read_folder(path: str, key: str) -> Source:
    names, folders = folder_layout(path, key)
    parts: dict[str, Part] = {}
    for split, folder in folders.items():
        extra = [name for name in _subfolders(folder) if name not in names]
        if extra:
            raise error(f"folder '{folder}' has classes that train/ has not: {', '.join(extra[:5])}", key)
        files, labels = _images_under(folder, names)
        if split != "train" or files:
            parts[split] = Part(np.asarray(labels, np.int64), files=np.asarray(files, dtype=str))
    if "train" not in parts:
        where = "train/" if len(folders) > 1 else "class sub-folders (one per class)"
        raise error(f"folder '{path}' has no images in {where}", key)
    return Source(f"folder:{path}", names, parts)


# --------------------------------------------------------------------------- arrays


def images_array(x: np.ndarray, source: str, key: str = "dataset", shape: Any = None) -> np.ndarray:
    """Stored images as float32 in ``[0, 1]`` ``(n, h, w, c)`` (``uint16`` as 0..65535, as a 16-bit PNG
    is read; other integers as 0..255)."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        model = f"; the model's input is {tuple(shape)}" if shape is not None else ""
        raise error(f"data set '{source}' has arrays of shape {x.shape[1:]}, not images (H, W[, C]){model}", key)
    if x.dtype.kind not in "uif":
        raise error(f"data set '{source}' has images of type {x.dtype}, not numbers", key)
    scale = 65535.0 if x.dtype == np.uint16 else 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1.0 else 1.0
    return x.astype(np.float32) / np.float32(scale)


#: The images and labels arrays of an ``npz:`` file: its training split, then its test split (optional).
NPZ_SPLITS = (("x", "y"), ("x_test", "y_test"))
#: Most classes an ``npz:`` file without ``class_names`` may label (its largest label + 1).
MAX_CLASSES = 1_000_000
#: How a labels array that holds no integers is described, by its dtype's kind.
_VALUE_KINDS = {"S": "bytes", "U": "text", "b": "true/false", "f": "fractional", "c": "complex", "O": "object",
                "V": "record", "M": "date", "m": "time"}
_NPZ_PROBLEMS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _first_line(problem: BaseException) -> str:
    lines = str(problem).strip().splitlines()
    return lines[0][:200] if lines else type(problem).__name__


def _length(arrays: Any, name: str) -> int | None:
    """The first dimension of an npz member, read from its header (the array itself is not loaded)."""
    with arrays.zip.open(f"{name}.npy") as file:
        version = np.lib.format.read_magic(file)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape = read(file)[0]
    return int(shape[0]) if shape else None


def _npz_arrays(path: str, key: str, wanted: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray],
                                                                                      dict[str, int | None]]:
    """The arrays of an ``.npz`` file (those ``wanted``, default all) and the length of every one.

    Raises:
        DataError: it is no ``.npz`` archive (a ``.npy`` array, a truncated file ...), naming it.
    """
    try:
        with open(path, "rb") as handle:  # np.load of a damaged archive leaves the file it opened open
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise error(f"cannot read '{path}': a single array (.npy), not an .npz archive of arrays x and y "
                            "(numpy.savez(path, x=images, y=labels))", key)
            with loaded as arrays:
                lengths = {name: _length(arrays, name) for name in arrays.files}
                return {name: arrays[name] for name in arrays.files if wanted is None or name in wanted}, lengths
    except _NPZ_PROBLEMS as problem:
        raise error(f"cannot read '{path}': {_first_line(problem)}", key) from None


def _npz_labels(data: dict[str, np.ndarray], lengths: dict[str, int | None], images: str, name: str, path: str,
                key: str) -> np.ndarray:
    """Array ``name`` of an npz file as int64 class labels, one per image of array ``images``."""
    labels = data[name]
    where = f"'{path}': array '{name}'"
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise error(f"{where} has shape {labels.shape}, not one class label per image (class indices, not "
                    "one-hot rows)", key)
    whole = labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels))) and bool(np.all(labels == np.round(labels)))
    if labels.dtype.kind not in "iu" and not whole:
        held = _VALUE_KINDS.get(labels.dtype.kind, str(labels.dtype))
        raise error(f"{where} holds {held} values, not integer class labels", key)
    if labels.size and (float(labels.min()) < 0 or float(labels.max()) >= MAX_CLASSES):
        bad = labels.min() if float(labels.min()) < 0 else labels.max()
        raise error(f"{where} holds label {int(bad):,}: labels are class indices from 0 to at most "
                    f"{MAX_CLASSES - 1:,}", key)
    if lengths.get(images) != len(labels):
        raise error(f"{where} holds {len(labels):,} labels but array '{images}' holds {lengths.get(images) or 0:,} "
                    "images", key)
    return labels.astype(np.int64)


def _npz_names(data: dict[str, np.ndarray], lengths: dict[str, int | None], path: str,
               key: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The class names of an npz file and its labels per split (``y``, and ``y_test`` when it has one).

    Raises:
        DataError: a labels array or the images it labels is missing, labels are no class indices, not
            one per image, or not below the number of ``class_names``; naming the file and the array.
    """
    labels: dict[str, np.ndarray] = {}
    for images, name in NPZ_SPLITS:
        if name == "y" or images in lengths or name in data:
            for needed in (images, name):
                if needed not in lengths:
                    raise error(f"'{path}' has no array {needed!r} (it has: {', '.join(lengths)})", key)
            labels[name] = _npz_labels(data, lengths, images, name, path, key)
    top = max(int(found.max(initial=-1)) for found in labels.values())
    if "class_names" not in data:
        return [str(n) for n in range(top + 1)], labels
    given = data["class_names"]
    names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in given.reshape(-1).tolist()]
    if given.ndim != 1:
        raise error(f"'{path}': array 'class_names' has shape {given.shape}, not one name per class", key)
    if top >= len(names):
        name = next(name for name, found in labels.items() if int(found.max(initial=-1)) == top)
        raise error(f"'{path}': array '{name}' holds label {top}, but array 'class_names' names "
                    f"{plural(len(names), 'class')}", key)
    return names, labels


def _read_npz(path: str, key: str, shape: Any) -> Source:
    source = f"npz:{path}"
    data, lengths = _npz_arrays(path, key)
    names, labels = _npz_names(data, lengths, path, key)
    x = images_array(data["x"], source, key, shape)
    parts = {"train": Part(labels["y"], images=x)}
    if "y_test" in labels:
        parts["test"] = Part(labels["y_test"], images=images_array(data["x_test"], source, key, shape))
    return Source(source, names, parts, channels=x.shape[-1])


def _read_digits() -> Source:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    whole = Part(digits.target.astype(np.int64), images=x)
    return Source("digits", [str(n) for n in digits.target_names], {"train": whole}, channels=1)


def read_source(source: str, key: str = "dataset", shape: Any = None) -> Source:
    """Read a ``digits``, ``folder:`` or ``npz:`` source (``tfds:`` needs TensorFlow: :mod:`data`).

    ``shape``, the model's input, is named in the error for arrays that are not images.

    Raises:
        DataError: The source cannot be read (naming the ``train:`` key and the path).
    """
    kind, where = dataset_kind(source, key)
    if kind == "digits":
        return _read_digits()
    if kind == "folder":
        return _read_folder(where, key)
    if kind == "npz":
        return _read_npz(where, key, shape)
    raise error(f"'{source}' is read by TensorFlow's loader, not here", key)


def class_names_of(source: str, key: str = "dataset") -> list[str] | None:
    """The class names of a source, cheaply (no image decoded); ``None`` for ``tfds:`` (known after download)."""
    kind, where = dataset_kind(source, key)
    if kind == "digits":
        return [str(n) for n in range(10)]
    if kind == "folder":
        return folder_layout(where, key)[0]
    if kind == "npz":
        data, lengths = _npz_arrays(where, key, ("y", "y_test", "class_names"))
        return _npz_names(data, lengths, where, key)[0]
    return None


def check_npz_labels(source: str, key: str, classes: int) -> None:
    """The labels of the ``npz:`` file of ``train.validation`` or ``train.test`` (``key``), read before
    training: class indices, one per image, each below the model's ``classes``.

    Raises:
        DataError: naming the file and the array.
    """
    kind, where = dataset_kind(source, key)
    if kind != "npz":
        return
    data, lengths = _npz_arrays(where, key, ("y", "y_test", "class_names"))
    for name, labels in _npz_names(data, lengths, where, key)[1].items():
        top = int(labels.max(initial=-1))
        if top >= classes:
            raise error(f"'{where}': array '{name}' holds label {top}, outside the model's "
                        f"{plural(classes, 'class')}", key)


# --------------------------------------------------------------------------- splits


def _held_out(labels: np.ndarray, index: np.ndarray, fraction: float, total: int) -> tuple[np.ndarray, np.ndarray]:
    """``index`` split in two, the second holding ``fraction`` of each class (a fixed split)."""
    from sklearn.model_selection import train_test_split

    try:
        rest, held = train_test_split(index, test_size=fraction, stratify=labels[index], random_state=SPLIT_SEED)
    except ValueError as problem:  # too few images of a class to split
        raise error(f"cannot split {plural(total, 'image')} into train, validation and test: {problem}") from None
    return rest, held


def complete(source: Source, validation_split: float) -> dict[str, Part]:
    """Train, validation and test parts: the source's own, the missing ones held out of ``train``.

    The test images (:data:`TEST_FRACTION` of each class) are held out first, then
    ``validation_split`` of the rest for validation.
    """
    parts = dict(source.parts)
    train = parts["train"]
    rest = np.arange(len(train))
    if "test" not in parts:
        rest, held = _held_out(train.labels, rest, TEST_FRACTION, len(train))
        parts["test"] = train.take(np.sort(held))
    if "validation" not in parts:
        rest, held = _held_out(train.labels, rest, validation_split, len(train))
        parts["validation"] = train.take(np.sort(held))
    parts["train"] = train.take(np.sort(rest))
    return {split: parts[split] for split in ("train", "validation", "test")}


def role_part(source: Source, role: str, class_names: list[str], key: str) -> Part:
    """The images of ``source`` that serve as ``role`` (``validation`` or ``test``) of a run on ``class_names``.

    A source with a split of that name gives it; one without splits of its own gives every image.
    Labels are mapped to ``class_names`` by name (a folder's sub-folders may be a subset).

    Raises:
        DataError: It has other splits but not this one, or classes the run does not know.
    """
    if role in source.parts:
        part = source.parts[role]
    elif set(source.parts) == {"train"}:
        part = source.parts["train"]
    else:
        raise error(f"'{source.name}' has splits ({', '.join(source.parts)}) but no {role} split; "
                    f"name the split's folder itself", key)
    unknown = [name for name in source.class_names if name not in class_names]
    if unknown and source.name.startswith("folder:"):
        raise error(f"'{source.name}' has classes the model was not trained on: {', '.join(unknown[:5])} "
                    f"(it knows {', '.join(class_names[:10])})", key)
    if source.name.startswith("folder:"):
        mapping = np.asarray([class_names.index(name) for name in source.class_names], np.int64)
        return Part(mapping[part.labels] if len(part) else part.labels, part.files, part.images)
    top = int(part.labels.max(initial=-1))
    if top >= len(class_names) or int(part.labels.min(initial=0)) < 0:
        raise error(f"'{source.name}' has label {top}, outside the model's {len(class_names)} classes", key)
    return part


def split_parts(source: str, shape: Any, classes: int, validation_split: float) -> tuple[list[str], dict[str, Part]]:
    """The class names and the train, validation and test parts of a ``digits``, ``folder:`` or ``npz:``
    source for a model of input ``shape`` and ``classes`` outputs (both pipelines make datasets of them).

    Raises:
        DataError: it cannot be read, or does not fit the model.
    """
    read = read_source(source, shape=shape)
    check_model_fits(read.name, len(read.class_names), read.channels, shape, classes)
    return read.class_names, complete(read, validation_split)


T = TypeVar("T")
#: What a pipeline's splits are made of: ``(class names, {split: dataset}, {split: size})``.
Made = tuple[list[str], dict[str, T], dict[str, int]]


def assemble(source: str, shape: Any, classes: int, validation_split: float, make: Callable[[Part], T],
             tfds: Callable[[str], Made[T]], validation: Optional[str] = None, test: Optional[str] = None) -> Made[T]:
    """A data source's three splits as one pipeline's datasets, in the one order both pipelines follow.

    Args:
        source, shape, classes, validation_split: As :func:`blockbuilder.training.data.load_splits`.
        make: Turns a :class:`Part` into the pipeline's dataset.
        tfds: Loads a ``tfds:`` source (``NAME[:SPLIT]``) as the pipeline's datasets.
        validation, test: ``train.validation`` and ``train.test``: they replace those splits.
    """
    kind, where = dataset_kind(source)
    if kind == "tfds":
        names, made, sizes = tfds(where)
    else:
        names, parts = split_parts(source, shape, classes, validation_split)
        made = {split: make(part) for split, part in parts.items()}
        sizes = {split: len(part) for split, part in parts.items()}
    for role, other in (("validation", validation), ("test", test)):
        if other is not None:
            part = role_part(read_source(other, role, shape), role, names, role)
            made[role], sizes[role] = make(part), len(part)
    return names, made, sizes


def check_model_fits(source: str, class_count: int, channels: Any, shape: Any, classes: int,
                     key: str = "dataset") -> None:
    """The model's input takes images and its outputs cover the source's classes."""
    if class_count > classes:
        raise error(f"data set '{source}' has {plural(class_count, 'class')} but the model has {classes} "
                    f"(set classes: {class_count}, or give the last layer {class_count} units)", key)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise error(f"data set '{source}' holds images, but the model's input {tuple(shape)} is not "
                    f"(height, width, 1 or 3 channels)", key)
    if channels is not None and channels not in (1, 3, 4):
        raise error(f"data set '{source}' has {channels}-channel images; the model's input "
                    f"{tuple(shape)} needs 1 or 3", key)
