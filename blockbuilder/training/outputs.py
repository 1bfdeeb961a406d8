"""Files a run directory holds that need plotting or TensorFlow: ``curves.png`` and TensorBoard logs.

TensorBoard logs are a pure function of the history: after each epoch the event file of each split
(``logs/train``, ``logs/validation``) is written again, whole and atomically, so a run, resumed or
not, has exactly one event file per split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

from blockbuilder.training.rundir import write_file

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

__all__ = ["EVENT_FILE", "plot_curves", "write_tensorboard"]

EVENT_FILE = "events.out.tfevents.0.blockbuilder"
SPLITS = (("train", ""), ("validation", "val_"))


def plot_curves(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Save loss and accuracy per epoch (training and validation) as a PNG."""
    figure = Figure(figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for axes, name in zip(figure.subplots(1, 2), ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [_number(row.get(prefix + name)) for row in history]
            axes.plot(epochs, values, marker="o", label=label)
        for before, after in zip(history, history[1:]):  # train.phases: a dashed line where a phase starts
            if before.get("phase") != after.get("phase"):
                axes.axvline(before["epoch"] + 0.5, color="grey", linestyle="--", linewidth=1)
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    write_file(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _scalars(row: dict[str, Any], prefix: str) -> dict[str, float]:
    """The values of one split in a history row: ``val_loss`` -> ``loss`` for ``val_``."""
    skip = {"epoch", "seconds", "images_per_second"}
    return {key[len(prefix):]: float(value) for key, value in row.items()
            if key not in skip and value is not None and key.startswith(prefix)
            and (prefix or not key.startswith("val_"))}


def _events(history: Sequence[dict[str, Any]], prefix: str, started: float) -> list[bytes]:
    from tensorflow.core.util import event_pb2

    events = [event_pb2.Event(wall_time=started, file_version="brain.Event:2").SerializeToString()]
    elapsed = 0.0
    for row in history:
        elapsed += float(row.get("seconds") or 0.0)
        event = event_pb2.Event(wall_time=started + elapsed, step=int(row["epoch"]))
        for tag, value in _scalars(row, prefix).items():
            event.summary.value.add(tag=f"epoch_{tag}", simple_value=value)
        events.append(event.SerializeToString())
    return events


def write_tensorboard(log_dir: Path, history: Sequence[dict[str, Any]], started: float | None = None) -> None:
    """Write ``log_dir/train`` and ``log_dir/validation`` event files holding every epoch of ``history``.

    Scalars are named ``epoch_loss``, ``epoch_accuracy`` ... (as Keras' own TensorBoard callback
    names them), with the epoch as step.
    """
    try:
        import tensorflow as tf
    except ImportError:  # JAX and PyTorch train without TensorFlow: no event files then
        return
    started = time.time() if started is None else started
    for folder, prefix in SPLITS:
        records = _events(history, prefix, started)

        def write(temporary: str, records: list[bytes] = records) -> None:
            with tf.io.TFRecordWriter(temporary) as writer:
                for record in records:
                    writer.write(record)

        write_file(log_dir / folder / EVENT_FILE, write)
