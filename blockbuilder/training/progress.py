"""Training progress: a rich live display on a terminal, plain lines in a pipe or a log file."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import keras
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["Reporter", "format_logs"]

SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy", "top5_accuracy", "val_top5_accuracy")


def format_logs(logs: dict[str, Any]) -> str:
    """``loss 0.1234  accuracy 0.9712 ...`` for the metrics worth a glance."""
    return "  ".join(f"{key} {float(logs[key]):.4f}" for key in SHOWN if logs.get(key) is not None)


class _BatchReport(keras.callbacks.Callback):  # type: ignore[misc]
    """Moves the live display along, batch by batch."""

    def __init__(self, reporter: Reporter, batch_size: int) -> None:
        super().__init__()
        self.reporter, self.batch_size = reporter, batch_size
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        seconds = time.perf_counter() - self.started
        speed = (batch + 1) * self.batch_size / seconds if seconds > 0 else 0.0
        self.reporter.advance(batch + 1, speed, logs or {})


class Reporter:
    """Shows a run's progress.

    Args:
        live: ``True`` for a live display, ``False`` for plain lines, ``None`` to choose by
            whether stdout is a terminal.
        quiet: Show nothing (the non-leading processes of a multi-process run).
    """

    def __init__(self, live: Optional[bool] = None, quiet: bool = False) -> None:
        self.live = sys.stdout.isatty() if live is None else live
        self.quiet = quiet
        self.console = Console(highlight=False, quiet=quiet, soft_wrap=True)
        self.progress: Optional[Progress] = None
        self.task: Any = None

    def start(self, name: str, spec: Any, device: str, precision: str, sizes: dict[str, int],
              resumed_from: Optional[int]) -> None:
        """Print what is about to happen; start the live display."""
        resumed = f", resuming after epoch {resumed_from}" if resumed_from is not None else ""
        self.console.print(
            f"training {name} on {spec.dataset} ({sizes['train']} train, {sizes['validation']} "
            f"validation, {sizes['test']} test images): {spec.epochs} epochs, batch "
            f"{spec.batch_size}, {spec.optimizer.name}, {precision} on {device}{resumed}"
        )
        if self.live and not self.quiet:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
                TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"), console=self.console, transient=False,
            )
            self.progress.start()

    def stop(self) -> None:
        """End the live display."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def message(self, text: str) -> None:
        """Print one line (rich markup allowed)."""
        self.console.print(text)

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        """Epoch ``epoch`` (0-based) of ``epochs`` begins."""
        if self.progress is not None:
            self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, speed="", metrics="")

    def batch_callback(self, batch_size: int) -> Any:
        """A Keras callback for the live display (``None`` when there is none)."""
        return _BatchReport(self, batch_size) if self.progress is not None else None

    def advance(self, step: int, speed: float, logs: dict[str, Any]) -> None:
        """Show step ``step`` of the current epoch."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=step, speed=f"{speed:,.0f} img/s", metrics=format_logs(logs))

    def epoch_done(self, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        """Show an epoch's training and validation metrics."""
        speed, seconds = row.get("images_per_second", 0.0), row.get("seconds", 0.0)
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total, metrics=format_logs(row),
                                 speed=f"{speed:,.0f} img/s")
        else:
            self.console.print(f"epoch {epoch + 1}/{epochs}  {format_logs(row)}  {speed:,.0f} img/s  {seconds:.1f}s")

    def table(self, metrics: dict[str, Any], run_dir: Path) -> None:
        """Print the final table of test metrics and where the outputs are."""
        table = Table(title=f"test metrics ({metrics['examples']['test']} images)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics["test"].items():
            if isinstance(value, (int, float)):
                table.add_row(key, f"{value:.4f}")
        table.add_row("epochs", str(metrics["epochs_completed"]))
        table.add_row("train seconds", f"{metrics['train_seconds']:.1f}")
        table.add_row("images/s", f"{metrics['images_per_second']:,.0f}")
        self.console.print(table)
        self.console.print(f"run directory: {run_dir}")
