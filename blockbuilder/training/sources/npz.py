"""``npz:PATH``: a NumPy ``.npz`` archive of images ``x`` and labels ``y`` (and ``x_test``/``y_test``,
``class_names``), as ``numpy.savez(path, x=images, y=labels)`` writes it."""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

import numpy as np

from blockbuilder.text import plural
from blockbuilder.training.sources.registry import Kind, Part, Source, error, images_array, register_kind

__all__ = ["MAX_CLASSES", "NPZ_SPLITS", "check_npz_labels"]

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


def read(path: str, key: str, shape: Any) -> Source:
    source = f"npz:{path}"
    data, lengths = _npz_arrays(path, key)
    names, labels = _npz_names(data, lengths, path, key)
    x = images_array(data["x"], source, key, shape)
    parts = {"train": Part(labels["y"], images=x)}
    if "y_test" in labels:
        parts["test"] = Part(labels["y_test"], images=images_array(data["x_test"], source, key, shape))
    return Source(source, names, parts, channels=x.shape[-1])


def check_npz_labels(path: str, key: str, classes: int) -> None:
    """The labels of the ``npz:`` file of ``train.validation`` or ``train.test`` (``key``), read before
    training: class indices, one per image, each below the model's ``classes``.

    Raises:
        DataError: naming the file and the array.
    """
    where = path
    data, lengths = _npz_arrays(where, key, ("y", "y_test", "class_names"))
    for name, labels in _npz_names(data, lengths, where, key)[1].items():
        top = int(labels.max(initial=-1))
        if top >= classes:
            raise error(f"'{where}': array '{name}' holds label {top}, outside the model's "
                        f"{plural(classes, 'class')}", key)


def class_names(path: str, key: str) -> list[str]:
    data, lengths = _npz_arrays(path, key, ("y", "y_test", "class_names"))
    return _npz_names(data, lengths, path, key)[0]


def _check(path: str, key: str, classes: int) -> None:
    if key != "dataset":  # the training set's labels are checked against the model when it is split
        check_npz_labels(path, key, classes)


NPZ = register_kind(Kind("npz", "npz:PATH", read, class_names=class_names, path="file", check=_check))
