"""``folder:PATH``: image files in class sub-folders, or in split sub-folders each holding them.

A ``folder:`` is either class sub-folders (``photos/cat/*.jpg``, ``photos/dog/*.jpg``), or split
sub-folders each holding the class sub-folders: ``train/`` and any of ``val/`` (or ``validation/``,
``valid/``) and ``test/``, the layout of ImageNet, of Keras' ``image_dataset_from_directory``
examples and of Ultralytics classification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.text import plural
from blockbuilder.training.sources.registry import (
    IMAGE_EXTENSIONS,
    Kind,
    Part,
    Source,
    error,
    read_source,
    register_kind,
)

__all__ = ["SPLIT_FOLDERS", "check_files", "check_folder", "folder_layout"]

#: Sub-folder names of a ``folder:`` laid out in splits, and the split each one is.
SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation", "valid": "validation",
                 "test": "test"}


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


def read(path: str, key: str, shape: Any) -> Source:
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
    return Source(f"folder:{path}", names, parts, named=True)


def check_files(source: Source, what: str, key: str = "dataset", workers: int = 8) -> int:
    """Decode every image file of a source (``what`` in messages) once, in threads, before training starts.

    Returns the number of images. Raises:
        DataError: naming the files that cannot be read (at most five, then a count).
    """
    from concurrent.futures import ThreadPoolExecutor

    from blockbuilder.errors import ImageError
    from blockbuilder.images import check_image

    def problem(file: str) -> str | None:
        try:
            check_image(file)
        except ImageError as problem:
            return str(problem)
        return None

    files = [str(file) for part in source.parts.values() if part.files is not None for file in part.files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bad = [message for message in pool.map(problem, files) if message is not None]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise error(f"{len(bad)} of {plural(len(files), 'image')} in {what} cannot be read: "
                    f"{'; '.join(bad[:5])}{more}", key)
    return len(files)


def check_folder(path: str, key: str = "dataset", workers: int = 8) -> int:
    """Decode every image of a ``folder:`` data set once (:func:`check_files`)."""
    return check_files(read_source(f"folder:{path}", key), f"folder '{path}'", key, workers)


def _check(path: str, key: str, classes: int) -> None:
    check_folder(path, key)


FOLDER = register_kind(Kind("folder", "folder:PATH", read, class_names=lambda path, key: folder_layout(path, key)[0],
                            path="folder", check=_check))
