"""What a run is given and gives back: :class:`TrainOptions`, the :class:`Plan`, the finished :class:`Run`.

Plain data below both :mod:`blockbuilder.training.api`, which makes the plan before TensorFlow, and
:mod:`blockbuilder.training.loop`, which trains it (``api`` re-exports them: ``blockbuilder.Run`` is this
``Run``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from blockbuilder.text import plural
from blockbuilder.training.checkpoint import Checkpoint
from blockbuilder.training.spec import TrainSpec

__all__ = ["EpochHook", "Plan", "Run", "TrainOptions"]

#: ``on_epoch_end(epoch, logs) -> bool``: called after each committed epoch (1-based ``epoch``,
#: ``logs`` the history row: loss, accuracy, val_loss, val_accuracy ...); ``True`` stops training.
EpochHook = Callable[[int, dict[str, Any]], bool]


@dataclass
class TrainOptions:
    """Choices that are not part of the ``train:`` section."""

    output: Optional[str] = None
    device: str = "auto"
    resume: bool = False
    export: Optional[str] = None
    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None
    live: Optional[bool] = None  # None: a live display when stdout is a terminal
    callbacks: Sequence[Any] = ()
    on_epoch_end: Optional[EpochHook] = None
    runs_root: str = "runs"


@dataclass
class Run:
    """A finished run: its directory, the tested (best) model, its metrics and history.

    Attributes:
        run_dir: The run directory.
        model: The ``keras.Model`` with the best weights (the one the test metrics score).
        metrics: The content of ``metrics.json``.
        history: One dict per epoch (the rows of ``history.csv``).
    """

    run_dir: Path
    model: Any
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        """One line: the directory, the epochs, why it stopped and the test metrics (not the model's repr)."""
        test = self.metrics.get("test", {})
        scores = "".join(f", test {key} {value:.4f}" for key, value in test.items()
                         if isinstance(value, (int, float)))
        epochs = self.metrics.get("epochs_completed")
        done = plural(epochs, "epoch") if isinstance(epochs, int) else f"{epochs} epochs"
        return (f"<Run {self.run_dir}: {done}, "
                f"stopped: {self.metrics.get('stopped')}{scores}>")

    def _repr_html_(self) -> str:
        test = self.metrics.get("test", {})
        cells = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in test.items()
                        if isinstance(v, (int, float)))
        return (f"<b>run {self.run_dir}</b>: {self.metrics.get('epochs_completed')} epochs, "
                f"stopped: {self.metrics.get('stopped')}<table>{cells}</table>")


@dataclass
class Plan:
    """A run as decided before TensorFlow: what trains, on which data, into which directory.

    Attributes:
        architecture: The architecture, with every override applied.
        spec: Its ``train:`` section, the data set path resolved.
        run_dir: Where the run goes.
        checkpoint: The checkpoint ``--resume`` continues from (``None``: from the start).
        notices: Lines to show before training (changed settings applied on resume ...).
        made: The folders the plan created for the run directory (innermost first).
        new: Whether it is a new run, whose directory :func:`~blockbuilder.training.api.run_plan` claims.
        claimed: Whether that directory is claimed (its ``resolved.yaml`` written).
    """

    architecture: Any
    spec: TrainSpec
    run_dir: Path
    checkpoint: Optional[Checkpoint]
    notices: list[str] = field(default_factory=list)
    made: list[Path] = field(default_factory=list)
    new: bool = False
    claimed: bool = False
