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

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from blockbuilder.errors import CommandError
from blockbuilder.files import atomic_path
from blockbuilder.training.spec import TrainError

__all__ = ["choose_run_dir", "make_run_dir", "strict_json", "write_file", "write_history_csv", "write_text"]


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


def write_history_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Write one row per epoch (``epoch`` first, then every logged value)."""
    keys = ["epoch"] + sorted({k for row in history for k in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())


# --------------------------------------------------------------------------- where a run goes


def _holds_run(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def choose_run_dir(name: str, output: Optional[str | Path], resume: bool, root: str | Path = "runs") -> Path:
    """The run directory: ``--output``, or ``runs/NAME``, ``runs/NAME-2``, ``runs/NAME-3`` ...

    A new run never replaces one: without ``--output`` it takes the first free name; an ``--output``
    that holds files already is refused. ``--resume`` without ``--output`` continues the latest
    (highest numbered) run of ``NAME``.

    Raises:
        TrainError: ``--output`` holds a run, or ``--resume`` finds none.
    """
    if output is not None:
        path = Path(output)
        if resume and not path.is_dir():
            raise TrainError(f"--resume: {path} does not exist (start the run without --resume)")
        if not resume and _holds_run(path):
            raise TrainError(f"{path} holds a run already: continue it with --resume, or choose another --output")
        return path
    base = Path(root)
    numbered = [base / name] + [base / f"{name}-{n}" for n in range(2, 10_000)]
    if resume:
        existing = [path for path in numbered[:_last_index(base, name) + 1] if path.is_dir()]
        if not existing:
            raise TrainError(f"--resume: no run of {name} in {base}/ (start one without --resume)")
        return existing[-1]
    return next(path for path in numbered if not _holds_run(path))


def make_run_dir(path: Path) -> None:
    """Create the run directory (and its parents).

    Raises:
        TrainError: it cannot be created, naming it.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainError(f"cannot create run directory {path}: {error.strerror}") from None


def _last_index(base: Path, name: str) -> int:
    """The highest ``N`` of the ``base/NAME-N`` directories (0 for ``base/NAME`` alone)."""
    found = [0]
    if base.is_dir():
        for entry in base.iterdir():
            match = re.fullmatch(re.escape(name) + r"-(\d+)", entry.name)
            if match and entry.is_dir():
                found.append(int(match.group(1)) - 1)
    return max(found)
