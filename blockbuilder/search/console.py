"""What a search shows on the terminal: the table of trials and the live progress of a search.

Both read the rows :mod:`blockbuilder.search.report` makes from the study's storage; ``Progress``
writes the report files after each trial.
"""

from __future__ import annotations

import sys
from typing import Any

from blockbuilder.search.report import (TrialRow, best_row, pareto_front, searched_paths, trial_rows, write_reports,
                                        write_trials_csv)
from blockbuilder.text import human, plural

__all__ = ["Progress", "table"]


def table(rows: list[TrialRow], trials: int | None = None) -> Any:
    """A rich table of the trials: values, parameters, MACs, accuracy, time, state."""
    from rich.table import Table

    paths = searched_paths(rows)
    timed = any(row.latency_ms is not None for row in rows)
    front = {row.number for row in pareto_front(rows, "latency_ms" if timed else "macs")}
    best = best_row(rows)
    out = Table(title=plural(len(rows), "trial") + (f" (target {trials} finished)" if trials else ""),
                title_justify="left")
    right = ("#", *(_short(p, paths) for p in paths), "params", "MACs", "ms", "val_accuracy", "time")
    for column in ("#", "state", *(_short(p, paths) for p in paths), "params", "MACs", *(("ms",) if timed else ()),
                   "val_accuracy", "time", "note"):
        out.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        note = row.reason or ("best" if best is not None and row.number == best.number else
                              "Pareto front" if row.number in front else "")
        if best is not None and row.number == best.number and row.number in front:
            note = "best, Pareto front"
        out.add_row(str(row.number), row.state, *(_shown(row.values.get(p)) for p in paths),
                    f"{row.params:,}" if row.params is not None else "—",
                    human(row.macs) if row.macs is not None else "—",
                    *((f"{row.latency_ms:.2f}" if row.latency_ms is not None else "—",) if timed else ()),
                    f"{row.val_accuracy:.4f}" if row.val_accuracy is not None else "—",
                    f"{row.seconds:.1f} s" if isinstance(row.seconds, (int, float)) else "—", note)
    return out


def _short(path: str, paths: list[str]) -> str:
    """The last part of a path (``learning_rate``) when no other searched path ends the same."""
    last = path.rpartition(".")[2]
    return last if sum(p.rpartition(".")[2] == last for p in paths) == 1 else path


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------- live progress


class Progress:
    """Shows a search as it goes: trial k of N and the best so far; writes the reports after each trial.

    Args:
        live: A rich progress bar (``True``), plain lines (``False``), or by whether stdout is a terminal.
    """

    def __init__(self, record: dict[str, Any], live: bool | None = None) -> None:
        from rich.console import Console

        self.record = record
        self.live = sys.stdout.isatty() if live is None else live
        # the stream now: while a trial trains, sys.stdout goes to its train.log
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True,
                               width=None if sys.stdout.isatty() else 160)
        self.bar: Any = None
        self.task: Any = None

    def started(self, search: Any) -> None:
        from blockbuilder.search.study import tally

        counts = tally(search.study.get_trials(deepcopy=False))
        already = f", {counts.finished} finished already" if counts.finished else ""
        self.console.print(
            f"search {search.name}: {plural(search.options.trials, 'trial')} of {plural(search.epochs, 'epoch')}, "
            f"{search.space.sampler} sampler, storage "
            f"{self.record.get('storage')}{already}")
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[best]}"), console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("trials", total=search.options.trials, completed=counts.finished,
                                          best=self._best_text(search))

    def message(self, text: str) -> None:
        self.console.print(text)

    def trial(self, search: Any, number: int, values: dict[str, Any], state: str | None) -> None:
        from blockbuilder.search.study import tally

        shown = "  ".join(f"{path}={_shown(value)}" for path, value in values.items())
        if state is None:
            self.console.print(f"trial {number}: training {shown}")
            return
        rows = write_reports(search.output, search.study, self.record, chart=False)  # the chart at the end
        row = next(r for r in rows if r.number == number)
        counts = tally(search.study.get_trials(deepcopy=False))
        accuracy = f"val_accuracy {row.val_accuracy:.4f}" if row.val_accuracy is not None else "no accuracy"
        reason = f" ({row.reason})" if row.reason else ""
        seconds = f" in {row.seconds:.1f} s" if isinstance(row.seconds, (int, float)) else ""
        self.console.print(f"trial {number} {state}{reason}: {accuracy}, {row.params:,} params, "
                           f"{human(row.macs or 0)} MACs{seconds} [{counts.finished} of {search.options.trials}; "
                           f"{self._best_text(search, rows)}]")
        if self.bar is not None:
            self.bar.update(self.task, completed=min(counts.finished, search.options.trials),
                            best=self._best_text(search, rows))

    def skipped(self, search: Any, number: int, reason: str) -> None:
        self.console.print(f"trial {number} pruned before training: {reason}")
        write_trials_csv(search.output / "trials.csv", trial_rows(search.study))

    def finished(self, search: Any, counts: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        rows = write_reports(search.output, search.study, self.record)
        self.console.print(table(rows, search.options.trials))
        pruned = "" if not counts.skipped else \
            f"; {counts.skipped} pruned before training ({_reasons(rows)})"
        self.console.print(f"{plural(counts.finished, 'trial')} finished ({counts.complete} complete"
                           f"{', ' + str(counts.failed) + ' failed' if counts.failed else ''}){pruned}")
        if search.grid_done:
            short = f", so fewer than --trials {search.options.trials:,} could finish" \
                if counts.finished < search.options.trials else ""
            self.console.print(f"the grid is done: every one of its {plural(search.space.size, 'point')} was "
                               f"tried{short}")
        best = best_row(rows)
        written = ", ".join(str(search.output / name) for name in ("trials.csv", "best.yaml", "pareto.png")
                            if (search.output / name).exists())
        if best is not None:
            limits = "".join(f" --limit {name}={value}" for name, value in self.record.get("limits", {}).items())
            self.console.print(f"best: trial {best.number}, val_accuracy {best.val_accuracy:.4f}, "
                               f"{best.params:,} params, {human(best.macs or 0)} MACs "
                               f"(blockbuilder train {search.output / 'best.yaml'}{limits})")
        self.console.print(f"wrote {written}")

    @staticmethod
    def _best_text(search: Any, rows: list[TrialRow] | None = None) -> str:
        best = best_row(rows if rows is not None else trial_rows(search.study))
        if best is None:
            return "best: none yet"
        return f"best {best.val_accuracy:.4f} (trial {best.number})"


def _reasons(rows: list[TrialRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        if row.state == "pruned" and row.run_dir == "" and row.reason:
            kind = row.reason.partition(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in counts.items())
