"""The run directory: where a run goes (never over another run) and the files computed from its
state (``history.csv``, ``metrics.json``), each written atomically.

No TensorFlow here: the command line decides where a run goes and refuses to overwrite one before it
imports Keras. Checkpoints (one directory per epoch) are :mod:`blockbuilder.training.checkpoint`'s.

Layout::

    model.keras                  best model by validation loss
    resolved.yaml                the architecture as trained
    history.csv, metrics.json    one row per epoch; the final metrics
    checkpoint/epoch-0007/       the last committed epoch (see checkpoint.py)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from blockbuilder.errors import CommandError
from blockbuilder.files import atomic_path, regular_file
from blockbuilder.training.spec import TrainError

__all__ = ["choose_run_dir", "claim_new_run_dir", "claim_run_dir", "history_row", "make_run_dir", "strict_json",
           "write_file", "write_history_csv", "write_text"]


# --------------------------------------------------------------------------- files


def write_file(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(temporary_path)``, then move the file to ``path``; never leave half a file.

    Raises:
        TrainError: the file cannot be written (no permission, disk full ...), naming it.
    """
    try:
        with atomic_path(path) as temporary:
            write(temporary)
    except CommandError as error:
        raise TrainError(str(error)) from None


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_file(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def strict_json(value: Any) -> str:
    """JSON that any strict parser reads: non-finite numbers become ``null``."""
    return json.dumps(_finite(value), indent=2, allow_nan=False) + "\n"


#: History columns that follow the training and validation values, in this order.
HISTORY_TAIL = ("phase", "learning_rate", "lr", "seconds", "images_per_second")


def _shortest(value: Any) -> Any:
    """A float32 value as the float its shortest decimal names: ``0.4000000059604645`` -> ``0.4``.

    Keras logs float32 metrics as float64 numbers; the float32 value stays the same (and the order of
    any two values too). A float that is no float32 value (``0.1 + 0.2``) is kept as it is.
    """
    if not isinstance(value, float):
        return value
    with np.errstate(over="ignore"):
        single = np.float32(value)
    return float(str(single)) if float(single) == value else value


def history_columns(history: Sequence[dict[str, Any]]) -> list[str]:
    """``epoch``, ``loss``, the metrics, ``val_loss``, the ``val_`` metrics, then ``HISTORY_TAIL``."""
    keys = list(dict.fromkeys(key for row in history for key in row))
    tail = [key for key in HISTORY_TAIL if key in keys]
    train = [key for key in keys if key != "epoch" and key not in tail and not key.startswith("val_")]
    validation = [f"val_{key}" for key in train if f"val_{key}" in keys]
    validation += [key for key in keys if key.startswith("val_") and key not in validation]
    train.sort(key=lambda key: key != "loss")  # stable: the metrics keep the order Keras logged them in
    validation.sort(key=lambda key: key != "val_loss")
    return [key for key in ("epoch",) if key in keys] + train + validation + tail


def history_row(row: dict[str, Any]) -> dict[str, Any]:
    """One epoch's row as ``history.csv`` holds it: its columns in reading order, float32 values short."""
    return {key: _shortest(row[key]) for key in history_columns([row])}


def write_history_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Write one row per epoch: ``epoch``, the training values, the validation values, then the rest."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=history_columns(history), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history_row(row) for row in history)
    write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------- where a run goes


RESOLVED = "resolved.yaml"


def _holds_run(path: Path, shared: bool = False) -> bool:
    """Whether ``path`` holds files (``shared``: besides the ``resolved.yaml`` of a run being started)."""
    return path.is_dir() and any(not shared or entry.name != RESOLVED for entry in path.iterdir())


def _taken(path: Path) -> TrainError:
    return TrainError(f"{path} holds a run already: continue it with --resume, or choose another --output")


def choose_run_dir(name: str, output: Optional[str | Path], resume: bool, root: str | Path = "runs",
                   shared: bool = False) -> Path:
    """The run directory: ``--output``, or ``runs/NAME``, ``runs/NAME-2``, ``runs/NAME-3`` ...

    A new run never replaces one: without ``--output`` it takes the first free name; an ``--output``
    that holds files already is refused. ``--resume`` without ``--output`` continues the latest
    (highest numbered) run of ``NAME``. ``shared``: the directory of a run that another process (a
    multi-process run's process 0) claims, so its ``resolved.yaml`` alone is no other run.

    Raises:
        TrainError: ``--output`` holds a run, or ``--resume`` finds none.
    """
    if output is not None:
        path = Path(output)
        if resume and not path.is_dir():
            raise TrainError(f"--resume: {path} does not exist (start the run without --resume)")
        if not resume and _holds_run(path, shared):
            raise _taken(path)
        return path
    base = Path(root)
    numbered = [base / name] + [base / f"{name}-{n}" for n in range(2, 10_000)]
    if resume:
        existing = [path for path in numbered[:_last_index(base, name) + 1] if path.is_dir()]
        if not existing:
            raise TrainError(f"--resume: no run of {name} in {base}/ (start one without --resume)")
        return existing[-1]
    return next(path for path in numbered if not _holds_run(path, shared))


def make_run_dir(path: Path) -> list[Path]:
    """Create the run directory (and its parents); returns the folders it made, innermost first.

    Raises:
        TrainError: it cannot be created, naming it.
    """
    made = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainError(f"cannot create run directory {path}: {error.strerror}") from None
    return made


def claim_run_dir(path: Path, resolved: str) -> list[Path]:
    """Make ``path`` a new run's directory: create it and write its ``resolved.yaml`` (``resolved``) as
    one atomic, exclusive step, so that of several processes starting a run there exactly one wins.

    The file is written beside the directory, then hard-linked into it (a link, unlike a rename, fails
    when the name exists); a process that loses writes nothing into the directory. Returns the folders
    it made.

    Raises:
        TrainError: ``path`` holds a run (or another process claimed it first), or cannot be created.
    """
    made = make_run_dir(path)
    if _holds_run(path):
        raise _taken(path)
    try:
        _write_new(path / RESOLVED, resolved)
    except FileExistsError:
        raise _taken(path) from None
    except OSError as error:
        raise TrainError(f"cannot write {path / RESOLVED}: {error.strerror}") from None
    return made


def _write_new(target: Path, text: str) -> None:
    """Write ``target``, which must not exist (``FileExistsError``), whole: written in a scratch folder
    beside its directory, then linked in; where that directory's parent is not writable (a mount point),
    created exclusively in place."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.parent.name}.", suffix=".claim", dir=target.parent.parent))
    except OSError:
        with open(target, "x", encoding="utf-8") as file:
            file.write(text)
        return
    try:
        (folder / target.name).write_text(text, encoding="utf-8")
        os.link(folder / target.name, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def claim_new_run_dir(name: str, output: Optional[str | Path], root: str | Path, resolved: str,
                      planned: Optional[Path] = None) -> tuple[Path, list[Path]]:
    """Claim a new run's directory (:func:`claim_run_dir`): ``--output``, or the ``planned`` one, or
    else the next free name when another process claimed it first.

    Returns the run directory and the folders made for it.
    """
    path = Path(output) if output is not None else planned or choose_run_dir(name, None, False, root)
    while True:
        try:
            return path, claim_run_dir(path, resolved)
        except TrainError:
            if output is not None or not _holds_run(path):
                raise
        path = choose_run_dir(name, None, False, root)


def discard_run_dir(path: Path, made: list[Path], claimed: bool = False) -> None:
    """Remove a run directory that :func:`make_run_dir` made (``made``), and the parents it made when
    they are empty again; of a directory it did not make, only what a run that ``claimed`` it (it was
    empty then) wrote is removed, and any other is left alone."""
    if made and made[0] == path:
        shutil.rmtree(path, ignore_errors=True)
        for folder in made[1:]:
            with contextlib.suppress(OSError):
                folder.rmdir()
    elif claimed and path.is_dir():
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _last_index(base: Path, name: str) -> int:
    """The highest ``N`` of the ``base/NAME-N`` directories (0 for ``base/NAME`` alone)."""
    found = [0]
    if base.is_dir():
        for entry in base.iterdir():
            match = re.fullmatch(re.escape(name) + r"-(\d+)", entry.name)
            if match and entry.is_dir():
                found.append(int(match.group(1)) - 1)
    return max(found)


def read_metrics(run: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a finished run directory (``report`` and ``evaluate`` read it).

    Raises:
        CommandError: the directory or the file is missing (a run writes it when it finishes), it is
            not JSON, or it holds no test results; naming the file.
    """
    path = Path(run) / "metrics.json"
    if not Path(run).is_dir():
        raise CommandError(f"{run}: no such run directory")
    if not path.exists():
        raise CommandError(f"{path}: missing (a run writes it when it finishes)")
    try:
        metrics = json.loads(regular_file(path).read_text(encoding="utf-8"))  # a FIFO would block for ever
    except FileNotFoundError:
        raise CommandError(f"{path}: missing (a run writes it when it finishes)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CommandError(f"{path}: not readable ({str(error).splitlines()[0]})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("test"), dict):
        raise CommandError(f"{path}: not the metrics of a blockbuilder run (no 'test' results)")
    return metrics

