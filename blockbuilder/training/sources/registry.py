"""The registry of data source kinds (a leaf module): each kind registers its prefix and how it is read.

A source string names its kind by its prefix (``folder:photos``, ``npz:data.npz``; a bare name like
``digits``). A kind is one module of :mod:`blockbuilder.training.sources` that calls
:func:`register_kind`; the ``train:`` section, its schema, ``classes: auto`` and the error messages
are derived from what is registered here, so a new kind is that one file (docs/contributing.md).
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from blockbuilder.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "Kind", "Part", "Source", "class_names_of", "dataset_kind", "error", "forms",
           "get_kind", "images_array", "kinds", "locate", "read_source", "register_kind"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")  # what serving reads


def error(message: str, key: str = "dataset") -> DataError:
    """A data error naming the ``train:`` key whose source it is about."""
    return DataError(f"train.{key}: {message}")


@dataclass(frozen=True)
class Part:
    """One split of a data source before it becomes a dataset: image files or arrays, and labels.

    Attributes:
        labels: One integer label per image.
        files: Image file paths (``folder:``, ``csv:``), or ``None``.
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
        named: Its labels are class names (folders, CSV rows), mapped by name onto a run's classes.
    """

    name: str
    class_names: list[str]
    parts: dict[str, Part] = field(default_factory=dict)
    channels: Optional[int] = None
    named: bool = False


@dataclass(frozen=True)
class Kind:
    """A kind of data source, as its module registers it.

    Attributes:
        prefix: ``folder`` for ``folder:PATH``; a kind with ``bare`` is the word alone (``digits``).
        form: How it is written, for messages (``folder:PATH``).
        read: ``(argument, key, model input shape) -> Source``; raises :class:`DataError`.
        class_names: ``(argument, key) -> class names``, cheaply (no image decoded), for ``classes: auto``
            and the check before training; ``None`` when they are known only once read (``tfds:``).
        path: ``"folder"`` or ``"file"`` when the argument is a path (relative to the file that wrote it).
        bare: Written without an argument.
        role: May name ``train.validation`` and ``train.test`` images.
        check: ``(argument, key, model classes)``: a thorough check before training (every image decodes).
        splits: ``(source, validation_split) -> {train, validation, test}`` when the kind splits its
            own way (default: :func:`blockbuilder.training.sources.splits.complete`).
    """

    prefix: str
    form: str
    read: Callable[[str, str, Any], Source]
    class_names: Optional[Callable[[str, str], list[str]]] = None
    path: str = ""
    bare: bool = False
    role: bool = True
    check: Optional[Callable[[str, str, int], None]] = None
    splits: Optional[Callable[[Source, float], dict[str, Part]]] = None

    def exists(self, path: Path) -> bool:
        """Whether ``path`` is there as this kind's argument needs it (a folder, or a file)."""
        return path.is_dir() if self.path == "folder" else path.is_file()


_KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Register a data source kind (once per prefix)."""
    if kind.prefix in _KINDS and _KINDS[kind.prefix] != kind:
        raise ValueError(f"data source kind {kind.prefix!r} is registered already")
    _KINDS[kind.prefix] = kind
    return kind


def kinds() -> list[Kind]:
    """The registered kinds, in registration order."""
    return list(_KINDS.values())


def get_kind(prefix: str) -> Optional[Kind]:
    return _KINDS.get(prefix)


def forms(role: bool = False) -> str:
    """``digits, tfds:NAME[:SPLIT], folder:PATH or npz:PATH``: the kinds (those for a ``role`` only)."""
    written = [kind.form for kind in kinds() if kind.role or not role]
    return ", ".join(written[:-1]) + f" or {written[-1]}" if len(written) > 1 else "".join(written)


def parse(source: str) -> tuple[Optional[Kind], str]:
    """The kind of a source string and its argument (``~`` expanded in a path); ``None`` when unknown."""
    prefix, colon, rest = source.partition(":")
    kind = _KINDS.get(prefix)
    if kind is None or kind.bare != (not colon) or (not kind.bare and not rest):
        return None, rest
    return kind, os.path.expanduser(rest) if kind.path else rest


def dataset_kind(source: str, key: str = "dataset") -> tuple[str, str]:
    """``(prefix, argument)`` of a data source string (the path ``~`` expanded).

    Raises:
        DataError: Not the form of a registered kind.
    """
    kind, where = parse(source)
    if kind is None:
        raise error(f"unknown data set '{source}' (use {forms()})", key)
    return kind.prefix, where


def locate(source: str, where: Any) -> tuple[str, Path]:
    """A path source with its path made relative to the file that wrote it (``where``, a location), and
    that path. A path from the command line (``--set``) stays relative to the working directory."""
    prefix, _, rest = source.partition(":")
    path = Path(os.path.expanduser(rest))
    written_in_file = where is not None and where.line and Path(where.file).is_file()
    if not path.is_absolute() and written_in_file:
        path = Path(where.file).parent / path
    return f"{prefix}:{path}", path


def read_source(source: str, key: str = "dataset", shape: Any = None) -> Source:
    """Read a source: its class names and its own splits.

    ``shape``, the model's input, is named in the error for arrays that are not images.

    Raises:
        DataError: The source cannot be read (naming the ``train:`` key and the path).
    """
    prefix, where = dataset_kind(source, key)
    return _KINDS[prefix].read(where, key, shape)


def class_names_of(source: str, key: str = "dataset") -> list[str] | None:
    """The class names of a source, cheaply (no image decoded); ``None`` when known only once read (``tfds:``)."""
    prefix, where = dataset_kind(source, key)
    names = _KINDS[prefix].class_names
    return names(where, key) if names is not None else None


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
    integers = np.issubdtype(x.dtype, np.integer)
    scale = 65535.0 if x.dtype == np.uint16 else 255.0 if integers or x.max(initial=0) > 1.0 else 1.0
    return x.astype(np.float32) / np.float32(scale)
