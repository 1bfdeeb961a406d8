"""Training one trial: what it gave (:class:`TrialOutcome`), and the real trainer on ``blockbuilder.train``.

The worker loop takes any :data:`Trainer`, so it runs in tests without TensorFlow; only
:func:`train_with_blockbuilder` imports it, when a trial trains.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Trainer", "TrialOutcome", "train_with_blockbuilder"]


@dataclass
class TrialOutcome:
    """What training a trial gave.

    Attributes:
        history: One row of logs per epoch (``val_accuracy`` among them).
        stopped: ``completed``, ``pruned`` (the pruner stopped it), ``nan`` (the loss became NaN).
        seconds: Wall time of the training.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "completed"
    seconds: float = 0.0

    @property
    def val_accuracy(self) -> float | None:
        values = [row["val_accuracy"] for row in self.history
                  if isinstance(row.get("val_accuracy"), float) and math.isfinite(row["val_accuracy"])]
        return max(values) if values else None


# ``trainer(architecture, run_dir, epochs, on_epoch) -> TrialOutcome``; ``on_epoch(epoch, logs)`` returns
# ``True`` to stop after that epoch (the pruner's decision).
Trainer = Callable[[Any, Path, int, Callable[[int, dict[str, float]], bool]], TrialOutcome]

#: The precision each search of this process trains its trials in, by search directory: the one
#: ``precision: auto`` chose for the first trial trained. Trials are compared with each other, so they
#: train alike, and the CPU precision probe (seconds per network) runs once per worker, not per trial.
_PRECISIONS: dict[Path, str] = {}


def train_with_blockbuilder(architecture: Any, run_dir: Path, epochs: int,
                            on_epoch: Callable[[int, dict[str, float]], bool]) -> TrialOutcome:
    """A :data:`Trainer` on ``blockbuilder.train``; what training prints goes to ``run_dir/train.log``."""
    import contextlib
    import io

    from blockbuilder.training.api import train

    search = run_dir.resolve().parent.parent  # run_dir: SEARCH/.partial/trial-NNNN
    auto = architecture.train.precision == "auto"
    overrides = {"train.precision": _PRECISIONS[search]} if auto and search in _PRECISIONS else None
    log = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(log):
        run = train(architecture, output=run_dir, epochs=epochs, live=False, overrides=overrides,
                    on_epoch_end=lambda epoch, logs: on_epoch(epoch - 1, logs))
    if auto and isinstance(run.metrics.get("precision"), str):
        _PRECISIONS.setdefault(search, run.metrics["precision"])
    seconds = time.perf_counter() - started
    if run_dir.is_dir():
        (run_dir / "train.log").write_text(log.getvalue(), encoding="utf-8")
    stopped = {"callback": "pruned", "nan": "nan"}.get(str(run.metrics.get("stopped")), "completed")
    history = [{key: float(value) for key, value in row.items() if isinstance(value, (int, float))}
               for row in run.history]
    return TrialOutcome(history=history, stopped=stopped, seconds=seconds)
