"""Checkpoints: one directory per epoch, committed by one rename, and the run's state in it.

An epoch is committed as one unit: its files are written into ``checkpoint/.epoch-0007.*/``, then that
directory is renamed to ``checkpoint/epoch-0007``; only then are older epoch directories removed. A
run killed at any instant resumes from the highest complete ``epoch-*`` directory, which holds::

    variables.npz   every model variable (weights, BatchNorm statistics, random generators) and
                    every optimizer variable, in order
    best.npz        the best model's variables (a hard link when it is this epoch's)
    state.json      history, best epoch, early stopping: :class:`RunState`

No TensorFlow here: a damaged checkpoint is reported before Keras is imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from blockbuilder.training.rundir import strict_json, write_file, write_text
from blockbuilder.training.spec import TrainError

__all__ = ["CHECKPOINT_DIR", "Checkpoint", "RunState", "commit_epoch", "latest_checkpoint", "read_variables",
           "remove_partial", "test_hook"]

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


def test_hook(point: str, epoch: int) -> None:
    """Kill this process with SIGKILL at ``point`` of ``epoch`` when a test asks for it.

    ``BLOCKBUILDER_TEST_KILL_AT=written:2`` kills the run once epoch 2's directory is complete but
    not yet renamed; points: ``batch`` (inside the epoch), ``partial`` (half the epoch directory
    written), ``written``, ``renamed`` (committed, older epochs not yet removed), ``done``.
    """
    wanted = os.environ.get(KILL_ENV)
    if wanted and wanted == f"{point}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


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
