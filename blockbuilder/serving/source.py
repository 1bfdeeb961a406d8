"""The model a serving command starts from: a ``.keras`` file or a run directory, and what it knows.

:func:`inspect_source` reads a path's files without Keras (the command line checks its arguments with
it before TensorFlow is loaded); :func:`load_source` then loads the model. ``ExportError`` is the
one-line failure that every serving command (export, predict, features, explore, embed) raises.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError
from blockbuilder.files import check_zip_entries, regular_file

RUN_DIR_MODEL = "model.keras"
KERAS_CONFIG = "config.json"  # the model's structure, in every .keras archive


class ExportError(CommandError):
    """A user-facing export or predict failure, printed as one line with exit code 1."""


@dataclass(frozen=True)
class ModelSource:
    """A Keras model and what its run directory knows about it.

    Args:
        model: The loaded Keras model.
        path: Where it was loaded from (``None`` for an in-memory model).
        resolved_yaml: The fully resolved architecture YAML, when the run directory has one.
        class_names: Class names from the run directory, when it has them.
    """

    model: Any
    path: Path | None
    resolved_yaml: str | None = None
    class_names: list[str] | None = None


@dataclass(frozen=True)
class SourceFiles:
    """What a ``.keras`` file or run directory holds, read without Keras.

    Args:
        model_file: The ``.keras`` archive.
        resolved_yaml: The run directory's ``resolved.yaml``, when it has one.
        class_names: Class names from the run directory, when it has them.
    """

    model_file: Path
    resolved_yaml: str | None
    class_names: list[str] | None


def load_source(model_or_run_dir: Any) -> ModelSource:
    """Load a model and its run-directory metadata.

    Args:
        model_or_run_dir: A ``keras.Model``, a ``.keras`` file or a run directory.

    Returns:
        A ``ModelSource``.

    Raises:
        ExportError: The path does not exist, is not a model, or cannot be read.
    """
    if not isinstance(model_or_run_dir, (str, os.PathLike)):
        return ModelSource(model_or_run_dir, None)
    files = inspect_source(model_or_run_dir)
    return ModelSource(load_keras_file(files.model_file), files.model_file, files.resolved_yaml, files.class_names)


def inspect_source(model_or_run_dir: str | os.PathLike[str]) -> SourceFiles:
    """Find the ``.keras`` archive of a path and read its run directory's files, without Keras.

    Raises:
        ExportError: The path does not exist, is not a ``.keras`` archive or run directory, or its
            ``resolved.yaml`` cannot be read.
    """
    model_file = find_keras_file(Path(model_or_run_dir))
    check_archive(model_file)
    run_dir = model_file.parent
    return SourceFiles(model_file, read_resolved_yaml(run_dir), read_class_names(run_dir))


def find_keras_file(path: Path) -> Path:
    """Return the ``.keras`` file a path names: the file itself, or ``model.keras`` in a run directory."""
    if not path.exists():
        raise ExportError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise ExportError(f"{path}: is an exported SavedModel; export takes a .keras file or a run directory")
        if not (path / RUN_DIR_MODEL).exists():
            raise ExportError(f"{path}: not a model (a run directory must contain {RUN_DIR_MODEL})")
        path = path / RUN_DIR_MODEL
    elif path.suffix != ".keras":
        raise ExportError(f"{path}: not a model (expected a .keras file or a run directory)")
    return regular_file(path, ExportError)


def check_archive(path: Path) -> None:
    """A regular file that is a zip archive with a Keras model's ``config.json`` in it, checked without Keras."""
    regular_file(path, ExportError)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            check_zip_entries(archive, path, ExportError)
    except (OSError, zipfile.BadZipFile, ValueError):
        raise ExportError(f"{path}: cannot read model (not a valid .keras archive)") from None
    if KERAS_CONFIG not in names:
        raise ExportError(f"{path}: cannot read model (a zip archive without {KERAS_CONFIG}: not a .keras archive)")


def load_keras_file(path: Path) -> Any:
    """Load a ``.keras`` file without compiling it, as a one-line ``ExportError`` when it is unreadable."""
    check_archive(path)
    import keras

    _register_custom_layers()
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive; the user needs one line.
        raise ExportError(f"{path}: cannot read model ({first_line(exc)})") from exc


def load_model(path: str, **kwargs: Any) -> Any:
    """``keras.saving.load_model`` with Keras imported quietly and blockbuilder's layers registered first.

    This is ``blockbuilder.load_model``: Keras' own errors pass through (:func:`load_keras_file` is the
    commands' loader, with one-line errors).
    """
    from blockbuilder.quiet import import_keras_quietly

    import_keras_quietly()
    import keras

    _register_custom_layers()
    return keras.saving.load_model(path, **kwargs)


def read_resolved_yaml(run_dir: Path) -> str | None:
    """Return the text of ``resolved.yaml`` in a run directory, or ``None`` when there is none.

    Raises:
        ExportError: the file is not UTF-8 text or cannot be read.
    """
    path = run_dir / "resolved.yaml"
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_class_names(run_dir: Path) -> list[str] | None:
    """Return class names from ``classes.json`` or ``metrics.json`` in a run directory, or ``None``."""
    for name in ("classes.json", "metrics.json"):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        names = data.get("class_names") if isinstance(data, dict) else data
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _register_custom_layers() -> None:
    from blockbuilder.compiler import layers  # noqa: F401  (registers blockbuilder's serializable layers)
