"""``csv:PATH``: a CSV file of image paths and their labels, the paths relative to the CSV file.

The first row names the columns: ``path`` and ``label``, and optionally ``split`` (``train``,
``val``/``validation``/``valid`` or ``test``; a split no row names is held out of the training
images). Labels are class names; the classes are the labels in sorted order, as a folder's are::

    path,label
    cats/1.jpg,cat
    dogs/7.png,dog

A bad row is a one-line error naming the file and its line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.training.sources.folder import SPLIT_FOLDERS, check_files
from blockbuilder.training.sources.registry import IMAGE_EXTENSIONS, Kind, Part, Source, error, register_kind

__all__ = ["read_rows"]

COLUMNS = ("path", "label", "split")


def _header(row: list[str], file: str, key: str) -> dict[str, int]:
    names = [name.strip().lower() for name in row]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or "path" not in names or "label" not in names or len(set(names)) != len(names):
        raise error(f"{file}:1: the first row names the columns path,label[,split]; it is {','.join(row)!r}", key)
    return {name: names.index(name) for name in names}


def _row(row: list[str], columns: dict[str, int], root: Path, where: str, key: str) -> tuple[str, str, str]:
    if len(row) != len(columns):
        raise error(f"{where}: {len(row)} columns, the first row names {len(columns)} "
                    f"({','.join(columns)})", key)
    path, label = row[columns["path"]].strip(), row[columns["label"]].strip()
    split = row[columns["split"]].strip().lower() if "split" in columns else "train"
    if not path or not label:
        raise error(f"{where}: empty {'path' if not path else 'label'}", key)
    if split not in SPLIT_FOLDERS:
        raise error(f"{where}: split {split!r} is not train, val, validation, valid or test", key)
    file = root / path
    if file.suffix.lower() not in IMAGE_EXTENSIONS:
        raise error(f"{where}: '{path}' is not an image file ({', '.join(IMAGE_EXTENSIONS)})", key)
    if not file.is_file():
        raise error(f"{where}: image '{path}' does not exist" + (f" ({file})" if str(file) != path else ""), key)
    return str(file), label, SPLIT_FOLDERS[split]


def read_rows(path: str, key: str = "dataset") -> list[tuple[str, str, str]]:
    """The rows of a ``csv:`` file as ``(image file, label, split)``, every one checked.

    Raises:
        DataError: the file cannot be read, or a row is bad (``FILE:LINE: what is wrong``).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            rows, columns = [], None
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if columns is None:
                    columns = _header(row, path, key)
                    continue
                rows.append(_row(row, columns, Path(path).parent, f"{path}:{reader.line_num}", key))
    except (OSError, UnicodeDecodeError, csv.Error) as problem:
        raise error(f"cannot read '{path}': {str(problem).splitlines()[0] if str(problem) else problem}", key) from None
    if columns is None:
        raise error(f"{path}:1: empty; the first row names the columns path,label[,split]", key)
    if not any(split == "train" for _, _, split in rows):
        raise error(f"{path}: no rows of training images", key)
    return rows


def read(path: str, key: str, shape: Any) -> Source:
    rows = read_rows(path, key)
    names = sorted({label for _, label, _ in rows})
    parts = {}
    for split in ("train", "validation", "test"):
        chosen = [(file, names.index(label)) for file, label, role in rows if role == split]
        if chosen:
            files, labels = zip(*chosen)
            parts[split] = Part(np.asarray(labels, np.int64), files=np.asarray(files, dtype=str))
    return Source(f"csv:{path}", names, parts, named=True)


def _check(path: str, key: str, classes: int) -> None:
    check_files(read(path, key, None), f"csv '{path}'", key)


CSV = register_kind(Kind("csv", "csv:PATH", read, class_names=lambda path, key: read(path, key, None).class_names,
                         path="file", check=_check))
