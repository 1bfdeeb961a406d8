"""Training progress: a live display on a terminal, plain lines in a pipe or a log file.

The live display is one line for the epoch in progress (epoch, bar, step, images/s, time left, loss,
accuracy) and one line per finished epoch, each laid out for the terminal's width: fields are dropped
by priority rather than cut in the middle, so it reads at 80 columns and still at 60.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import keras
from rich.console import Console, ConsoleOptions
from rich.live import Live
from rich.table import Table
from rich.text import Text

from blockbuilder.text import plural

__all__ = ["Reporter", "fit_fields", "format_logs"]

SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy", "top5_accuracy", "val_top5_accuracy")
SHORT = {"accuracy": "acc", "val_accuracy": "val_acc", "top5_accuracy": "top5", "val_top5_accuracy": "val_top5"}
#: Which fields of a finished epoch's line stay when the terminal is narrow (first = kept longest).
EPOCH_PRIORITY = ("epoch", "accuracy", "val_accuracy", "loss", "val_loss", "seconds", "speed",
                  "top5_accuracy", "val_top5_accuracy")
STEP_PRIORITY = ("epoch", "step", "loss", "eta", "accuracy", "speed")


def format_logs(logs: dict[str, Any]) -> str:
    """``loss 0.1234  accuracy 0.9712 ...`` for the metrics worth a glance."""
    return "  ".join(f"{key} {float(logs[key]):.4f}" for key in SHOWN if logs.get(key) is not None)


def fit_fields(fields: dict[str, str], priority: tuple[str, ...], width: int, separator: str = "  ") -> list[str]:
    """The fields (in their own order) that fit in ``width``, keeping those first in ``priority``."""
    kept: set[str] = set()
    for name in priority:
        if name in fields:
            trial = kept | {name}
            if len(separator.join(fields[k] for k in fields if k in trial)) <= width:
                kept = trial
    return [fields[k] for k in fields if k in kept]


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _StepLine:
    """The epoch in progress, laid out for the width rich gives it."""

    def __init__(self) -> None:
        self.epoch, self.epochs, self.step, self.steps = 0, 0, 0, 1
        self.speed, self.started = 0.0, time.perf_counter()
        self.logs: dict[str, Any] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width
        fields = {"epoch": f"epoch {self.epoch}/{self.epochs}", "bar": "",
                  "step": f"step {self.step}/{self.steps}"}
        if self.speed:
            fields["speed"] = f"{self.speed:,.0f} img/s"
            fields["eta"] = _duration((self.steps - self.step) * (time.perf_counter() - self.started)
                                      / max(self.step, 1))
        for key in ("loss", "accuracy"):
            if self.logs.get(key) is not None:
                fields[key] = f"{SHORT.get(key, key)} {float(self.logs[key]):.4f}"
        bar_width = 30
        while bar_width >= 5:
            kept = fit_fields({**fields, "bar": "━" * bar_width}, ("bar", *STEP_PRIORITY), width, " ")
            if len(kept) == len(fields) or bar_width == 5:
                break
            bar_width -= 5
        done = round(bar_width * self.step / max(self.steps, 1))
        fields["bar"] = "━" * done + "╺" * (bar_width - done)
        line = " ".join(fit_fields(fields, ("bar", *STEP_PRIORITY), width, " "))
        yield Text(line[:width], no_wrap=True, overflow="crop")


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
        self.live = (sys.stdout.isatty() if live is None else live) and not quiet
        self.quiet = quiet
        # Plain lines are never wrapped (a log is read by programs too); the live display wraps text.
        self.console = Console(highlight=False, quiet=quiet, soft_wrap=not self.live)
        self.display: Optional[Live] = None
        self.line = _StepLine()

    def start(self, name: str, spec: Any, device: str, precision: str, sizes: dict[str, int],
              resumed_from: Optional[int]) -> None:
        """Print what is about to happen; start the live display."""
        resumed = f", resuming after epoch {resumed_from}" if resumed_from is not None else ""
        self.console.print(
            f"training {name} on {spec.dataset} ({sizes['train']} train, {sizes['validation']} "
            f"validation, {plural(sizes['test'], 'test image')}): {plural(spec.epochs, 'epoch')}, batch "
            f"{spec.batch_size}, {spec.optimizer.name}, {precision} on {device}{resumed}"
        )
        if self.live:
            self.display = Live(self.line, console=self.console, refresh_per_second=4, transient=True)
            self.display.start()

    def stop(self) -> None:
        """End the live display."""
        if self.display is not None:
            self.display.stop()
            self.display = None

    def message(self, text: str) -> None:
        """Print one line (rich markup allowed)."""
        self.console.print(text)

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        """Epoch ``epoch`` (0-based) of ``epochs`` begins."""
        line = self.line
        line.epoch, line.epochs, line.step, line.steps = epoch + 1, epochs, 0, steps
        line.speed, line.started, line.logs = 0.0, time.perf_counter(), {}

    def batch_callback(self, batch_size: int) -> Any:
        """A Keras callback for the live display (``None`` when there is none)."""
        return _BatchReport(self, batch_size) if self.display is not None else None

    def advance(self, step: int, speed: float, logs: dict[str, Any]) -> None:
        """Show step ``step`` of the current epoch."""
        self.line.step, self.line.speed, self.line.logs = step, speed, dict(logs)

    def epoch_done(self, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        """Show an epoch's training and validation metrics."""
        speed, seconds = row.get("images_per_second", 0.0), row.get("seconds", 0.0)
        if self.display is None:
            self.console.print(f"epoch {epoch + 1}/{epochs}  {format_logs(row)}  {speed:,.0f} img/s  {seconds:.1f}s")
            return
        fields = {"epoch": f"epoch {epoch + 1}/{epochs}"}
        fields.update({key: f"{SHORT.get(key, key)} {float(row[key]):.4f}" for key in SHOWN
                       if row.get(key) is not None})
        fields.update({"speed": f"{speed:,.0f} img/s", "seconds": f"{seconds:.1f}s"})
        self.console.print(Text("  ".join(fit_fields(fields, EPOCH_PRIORITY, self.console.width)), no_wrap=True))

    def table(self, metrics: dict[str, Any], run_dir: Path) -> None:
        """Print the final table of test metrics and where the outputs are."""
        table = Table(title=f"test metrics ({plural(metrics['examples']['test'], 'image')})")
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
