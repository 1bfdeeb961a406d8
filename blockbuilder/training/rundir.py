"""The run directory: where a run goes, its checkpoints (one directory per epoch, committed by one
rename), its state, and the files computed from that state (``history.csv``, ``metrics.json``).

No TensorFlow here: the command line decides where a run goes, refuses to overwrite one, and reads a
checkpoint's state before it imports Keras.

Layout::

    model.keras                  best model by validation loss
    resolved.yaml                the architecture as trained
    history.csv, metrics.json    one row per epoch; the final metrics
    checkpoint/epoch-0007/       the last committed epoch: state.json, variables.npz, best.npz

An epoch is committed as one unit: its files are written into ``checkpoint/.epoch-0007.*/``, then that
directory is renamed to ``checkpoint/epoch-0007``; only then are older epoch directories removed.
A run killed at any instant resumes from the highest complete ``epoch-*`` directory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from blockbuilder.errors import CommandError
from blockbuilder.files import atomic_path
from blockbuilder.training.spec import TrainError

__all__ = [
    "CHECKPOINT_DIR", "Checkpoint", "RunState", "choose_run_dir", "commit_epoch", "latest_checkpoint", "make_run_dir",
    "strict_json", "test_hook", "write_file", "write_history_csv", "write_text",
]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
VARIABLES_FILE = "variables.npz"
BEST_FILE = "best.npz"
EPOCH_DIR = re.compile(r"^epoch-(\d{4,})$")
KILL_ENV = "BLOCKBUILDER_TEST_KILL_AT"  # tests only: "POINT:EPOCH" -> SIGKILL there (see test_hook)

Number = Optional[StrictFloat | StrictInt]


class RunState(BaseModel):
    """What ``--resume`` needs besides the variables; ``state.json`` of an epoch directory."""

    model_config = ConfigDict(extra="forbid", strict=True)

    epochs_completed: StrictInt = Field(default=0, ge=0)
    history: list[dict[str, Number]] = Field(default_factory=list)
    best_value: Number = None
    best_epoch: StrictInt = Field(default=0, ge=0)
    train_seconds: StrictFloat | StrictInt = Field(default=0.0, ge=0)
    examples_seen: StrictInt = Field(default=0, ge=0)
    seed: StrictInt = 0
    stalled_epochs: StrictInt = Field(default=0, ge=0)
    chance_warned: bool = False


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


def test_hook(point: str, epoch: int) -> None:
    """Kill this process with SIGKILL at ``point`` of ``epoch`` when a test asks for it.

    ``BLOCKBUILDER_TEST_KILL_AT=written:2`` kills the run once epoch 2's directory is complete but
    not yet renamed; points: ``batch`` (inside the epoch), ``partial`` (half the epoch directory
    written), ``written``, ``renamed`` (committed, older epochs not yet removed), ``done``.
    """
    wanted = os.environ.get(KILL_ENV)
    if wanted and wanted == f"{point}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


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


# --------------------------------------------------------------------------- checkpoints


class Checkpoint:
    """One committed epoch directory: its state and its variables (read once, on first use)."""

    def __init__(self, directory: Path, state: RunState) -> None:
        self.directory = directory
        self.state = state
        self._read: dict[bool, dict[str, list[np.ndarray]]] = {}

    def variables(self, best: bool = False) -> dict[str, list[np.ndarray]]:
        """``{"model": [...], "optimizer": [...]}``: every variable's value, in the model's order.

        Raises:
            TrainError: the file is missing, truncated or not a checkpoint, naming it.
        """
        if best not in self._read:
            self._read[best] = read_variables(self.directory / (BEST_FILE if best else VARIABLES_FILE))
        return self._read[best]


def read_variables(path: Path) -> dict[str, list[np.ndarray]]:
    """The arrays of a ``variables.npz``, grouped by prefix (``model``, ``optimizer``).

    Raises:
        TrainError: the file is missing, truncated or not a checkpoint, naming it.
    """
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise TrainError(f"cannot resume: {path} is missing") from None
    except (OSError, ValueError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TrainError(f"cannot resume: {path} is not a readable checkpoint ({reason})") from None
    except Exception as error:  # zipfile.BadZipFile and friends from a damaged file
        raise TrainError(f"cannot resume: {path} is not a readable checkpoint ({type(error).__name__})") from None
    groups: dict[str, list[np.ndarray]] = {"model": [], "optimizer": []}
    for key in sorted(arrays):
        prefix, _, _ = key.partition("/")
        if prefix not in groups:
            raise TrainError(f"cannot resume: {path} is not a blockbuilder checkpoint (array {key!r})")
        groups[prefix].append(arrays[key])
    return groups


def _read_state(path: Path, epoch: int) -> RunState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainError(f"cannot resume: {path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TrainError(f"cannot resume: {path} is not valid JSON ({str(error).splitlines()[0]})") from None
    try:
        state = RunState.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "state"
        raise TrainError(f"cannot resume: {path}: {where}: {problem['msg']}") from None
    if state.epochs_completed != epoch or len(state.history) != epoch or state.best_epoch > epoch:
        raise TrainError(f"cannot resume: {path}: epochs_completed {state.epochs_completed}, "
                         f"{len(state.history)} history rows and best epoch {state.best_epoch} do not "
                         f"match the directory (epoch {epoch})")
    return state


def _epoch_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), entry) for entry in folder.iterdir() if (m := EPOCH_DIR.match(entry.name))]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Optional[Checkpoint]:
    """The last committed epoch of ``run_dir``, or ``None`` when no epoch was committed.

    Raises:
        TrainError: its ``state.json`` is missing, not JSON, or has values of the wrong type.
    """
    found = _epoch_dirs(run_dir)
    if not found:
        return None
    epoch, directory = found[-1]
    return Checkpoint(directory, _read_state(directory / STATE_FILE, epoch))


def remove_partial(run_dir: Path) -> None:
    """Remove what an interrupted commit left: partial epoch directories and older epochs."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith(".epoch-"):
            shutil.rmtree(entry, ignore_errors=True)
    for _, directory in _epoch_dirs(run_dir)[:-1]:
        shutil.rmtree(directory, ignore_errors=True)


def _save_arrays(path: Path, variables: dict[str, list[np.ndarray]]) -> None:
    arrays = {f"{group}/{index:05d}": value for group, values in variables.items()
              for index, value in enumerate(values)}
    write_file(path, lambda temporary: _savez(temporary, arrays))


def _savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def _staging(folder: Path, name: str) -> Iterator[Path]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
        staging.chmod(0o755)  # mkdtemp's 0700 would stay on the committed directory
    except OSError as error:
        raise TrainError(f"cannot write {folder / name}: {error.strerror or error}") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def commit_epoch(run_dir: Path, state: RunState, variables: dict[str, list[np.ndarray]],
                 best: Optional[dict[str, list[np.ndarray]]]) -> Path:
    """Write epoch ``state.epochs_completed`` as one unit and return its directory.

    Args:
        run_dir: The run directory.
        state: The state after the epoch.
        variables: Every model and optimizer variable after the epoch.
        best: The best variables when this epoch is the new best; ``None`` keeps the previous best.
    """
    epoch = state.epochs_completed
    folder = run_dir / CHECKPOINT_DIR
    name = f"epoch-{epoch:04d}"
    previous = _epoch_dirs(run_dir)
    with _staging(folder, name) as staging:
        _save_arrays(staging / VARIABLES_FILE, variables)
        test_hook("partial", epoch)
        if best is not None:
            _link_or_copy(staging / VARIABLES_FILE, staging / BEST_FILE)
        elif previous and (previous[-1][1] / BEST_FILE).exists():
            _link_or_copy(previous[-1][1] / BEST_FILE, staging / BEST_FILE)
        write_text(staging / STATE_FILE, strict_json(state.model_dump()))
        _fsync_directory(staging)
        test_hook("written", epoch)
        try:
            os.replace(staging, folder / name)
        except OSError as error:
            raise TrainError(f"cannot write {folder / name}: {error.strerror or error}") from None
    _fsync_directory(folder)
    test_hook("renamed", epoch)
    for _, directory in previous:
        if directory.name != name:
            shutil.rmtree(directory, ignore_errors=True)
    return folder / name


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        write_file(target, lambda temporary: shutil.copyfile(source, temporary))


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
