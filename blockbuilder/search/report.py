"""What a search leaves on disk: ``trials.csv``, ``best.yaml``, ``pareto.png`` (the terminal side,
its table and live progress, is :mod:`blockbuilder.search.console`).

Everything here is read from the study's storage (trial values, parameters, MACs and accuracy are
stored with each trial), so any worker, or ``blockbuilder search-report`` later, writes the same files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, SpecError, UsageError
from blockbuilder.files import atomic_path
from blockbuilder.language.budgets import Limits
from blockbuilder.language.document import dump
from blockbuilder.search.directory import recorded_limits
from blockbuilder.text import human

__all__ = [
    "CSV_COLUMNS",
    "TrialRow",
    "best_row",
    "pareto_front",
    "trial_rows",
    "write_best_yaml",
    "write_pareto",
    "write_reports",
    "write_trials_csv",
]

CSV_COLUMNS = ("number", "state", "params", "macs", "val_accuracy")  # then one per searched value, then:
CSV_TAIL = ("reason", "seconds", "run_dir")
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
          "WAITING": "waiting"}


@dataclass(frozen=True)
class TrialRow:
    """One trial as the reports show it."""

    number: int
    state: str
    params: int | None
    macs: int | None
    val_accuracy: float | None
    values: dict[str, Any]
    reason: str = ""
    seconds: float | None = None
    run_dir: str = ""
    depth: int = 0
    overrides: tuple[str, ...] = field(default=(), compare=False)
    latency_ms: float | None = None  # predicted, when the search predicts latency

    @property
    def trained(self) -> bool:
        return self.state == "complete" and self.val_accuracy is not None and self.macs is not None


def _override(path: str, value: Any, distribution: Any) -> str:
    from optuna.distributions import CategoricalDistribution

    from blockbuilder.search.space import value_text

    if isinstance(distribution, CategoricalDistribution) and isinstance(value, str):
        return f"{path}={value}"  # a choice is stored as the YAML text of its value
    return f"{path}={value_text(value)}"


def trial_rows(study: Any) -> list[TrialRow]:
    """Every trial of the study, in order of number."""
    rows = []
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    reruns = {t.user_attrs["rerun_of"]: t.number for t in trials if "rerun_of" in t.user_attrs}
    for trial in trials:
        attrs = trial.user_attrs
        accuracy = attrs.get("val_accuracy")
        if accuracy is None and trial.state.name == "COMPLETE" and trial.values:
            accuracy = trial.values[0]
        rows.append(TrialRow(
            number=trial.number, state=STATES.get(trial.state.name, trial.state.name.lower()),
            params=attrs.get("params"), macs=attrs.get("macs"),
            val_accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
            values=dict(trial.params), reason=_reason(trial, reruns), seconds=attrs.get("seconds"),
            run_dir=str(attrs.get("run_dir", "")), depth=int(attrs.get("depth", 0)),
            overrides=tuple(_override(path, value, trial.distributions.get(path))
                            for path, value in trial.params.items()),
            latency_ms=float(attrs["latency_ms"]) if isinstance(attrs.get("latency_ms"), (int, float)) else None,
        ))
    return rows


def _reason(trial: Any, reruns: dict[int, int]) -> str:
    """Why a trial stopped: its ``reason``; a failed one without, whose worker died, by its rerun."""
    reason = str(trial.user_attrs.get("reason", ""))
    if not reason and trial.state.name == "FAIL" and trial.number in reruns:
        return f"interrupted: its worker stopped; run again as trial {reruns[trial.number]}"
    return reason


def searched_paths(rows: list[TrialRow]) -> list[str]:
    """The searched values' paths, in the order the trials first show them."""
    paths: dict[str, None] = {}
    for row in rows:
        paths.update(dict.fromkeys(row.values))
    return list(paths)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_trials_csv(path: Path, rows: list[TrialRow]) -> None:
    """``number,state,params,macs,val_accuracy,<one column per searched value>,reason,seconds,run_dir``,
    with ``latency_ms`` after ``val_accuracy`` when the search predicts latency."""
    paths = searched_paths(rows)
    timed = any(row.latency_ms is not None for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(("latency_ms",) if timed else ()), *paths, *CSV_TAIL])
    for row in rows:
        writer.writerow([row.number, row.state, _cell(row.params), _cell(row.macs), _cell(row.val_accuracy),
                         *((_cell(row.latency_ms),) if timed else ()),
                         *(_cell(row.values.get(p)) for p in paths), row.reason, _cell(row.seconds), row.run_dir])
    with atomic_path(path) as temporary:
        Path(temporary).write_text(buffer.getvalue(), encoding="utf-8")


def _cost(row: TrialRow, by: str) -> float:
    return float((row.latency_ms if by == "latency_ms" else row.macs) or 0)


def pareto_front(rows: list[TrialRow], by: str = "macs") -> list[TrialRow]:
    """The trained trials no other beats on both accuracy (higher) and cost (fewer MACs, or a lower
    predicted latency with ``by="latency_ms"``), by cost."""
    front: list[TrialRow] = []
    trained = [r for r in rows if r.trained and (by != "latency_ms" or r.latency_ms is not None)]
    for row in sorted(trained, key=lambda r: (_cost(r, by), -(r.val_accuracy or 0.0))):
        if not front or (row.val_accuracy or 0.0) > (front[-1].val_accuracy or 0.0):
            front.append(row)
    return front


def best_row(rows: list[TrialRow]) -> TrialRow | None:
    """The trial of highest validation accuracy (the fewer MACs among equals); on any Pareto front."""
    trained = [r for r in rows if r.trained]
    return max(trained, key=lambda r: (r.val_accuracy or 0.0, -(r.macs or 0))) if trained else None


def write_best_yaml(path: Path, source: str | Path, overrides: list[str], row: TrialRow, search_dir: Path,
                    limits: Limits | None = None) -> None:
    """The best trial's architecture, ready for ``blockbuilder train`` (``search:`` left out).

    It is loaded as the trial was: ``overrides`` and ``limits`` (the search's ``--set`` and ``--limit``),
    then the trial's values.

    Raises:
        CommandError: the architecture file can no longer be read (moved, or edited into another family).
    """
    from blockbuilder.language.architecture import load
    from blockbuilder.language.resolve import plain

    try:
        member = load(source, [*overrides, *row.overrides], limits=limits)
    except (SpecError, UsageError) as exc:
        raise CommandError(f"cannot write {path}: the best trial no longer loads from {source}: {exc}") from None
    document = {key: plain(value) for key, value in member.document.items() if key != "search"}
    accuracy = f"{row.val_accuracy:.4f}" if row.val_accuracy is not None else "?"
    header = (f"# the best trial ({row.number}) of the search in {search_dir}: val_accuracy {accuracy}, "
              f"{row.params:,} params, {human(row.macs or 0)} MACs\n"
              + "".join(f"#   --set {override}\n" for override in row.overrides))
    text = header + dump(document, sort_keys=False, default_flow_style=None, width=100)
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def write_pareto(path: Path, rows: list[TrialRow], *, title: str, dataset: str | None = None,
                 references: list[Any] = (), by: str = "macs", batch_size: int = 8) -> Path:  # type: ignore[assignment]
    """Accuracy against MACs (``by="latency_ms"``: predicted latency) of every trained trial (bubble
    area = parameters), the Pareto front drawn.

    The bubbles are ``blockbuilder compare``'s chart; ``references`` (``compare`` rows, e.g. zoo
    networks with a reported accuracy) are drawn beside the trials.
    """
    from blockbuilder.report import compare

    timed = by == "latency_ms"
    front = pareto_front(rows, by)
    on_front = {row.number for row in front}
    chart_rows = [compare.Row(f"#{row.number}" + ("*" if row.number in on_front else ""), row.params or 0,
                              row.macs or 0, row.depth, 100.0 * (row.val_accuracy or 0.0),
                              f"{dataset} validation" if dataset else "validation", row.run_dir,
                              latency_ms=row.latency_ms)
                  for row in rows if row.trained and (not timed or row.latency_ms is not None)]
    if not chart_rows:
        raise UsageError("no trial has finished training yet: nothing to draw")
    plotted = [*chart_rows, *(r for r in references if r.accuracy is not None and (not timed or r.latency_ms))]
    axis: compare.Axis = "predicted-ms" if timed else "macs"
    figure = compare._figure(plotted, [r.name for r in references if r.accuracy is None], axis, batch_size)
    axes = figure.axes[0]
    xs = [_cost(row, by) / (1.0 if timed else 1e9) for row in front]
    ys = [100.0 * (row.val_accuracy or 0.0) for row in front]
    axes.step(xs, ys, where="post", color="#222222", linewidth=1.4, zorder=6, label="Pareto front")
    axes.scatter(xs, ys, s=60, facecolors="none", edgecolors="#222222", linewidths=1.6, zorder=6)
    what = "predicted latency" if timed else "operations"
    axes.set_title(f"{title}: accuracy vs {what}; line and * = Pareto front, bubble area by parameters",
                   fontsize=10, loc="left")
    if not timed:
        _count_axis(axes)
    axes.set_ylabel("validation accuracy [%]")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, facecolor="white", format=path.suffix.lstrip(".") or "png")
    return path


def _count_axis(axes: Any) -> None:
    """MACs written as counts (``6 K``, ``20 K``) on both major and minor ticks: a family spans little."""
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _: human(value * 1e9, compact=True) if value > 0 else "")
    axes.xaxis.set_major_formatter(formatter)
    axes.xaxis.set_minor_formatter(formatter)
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_xlabel("multiply-accumulates per image (log scale)")


def write_reports(output: Path, study: Any, record: dict[str, Any], *, references: list[Any] = (),  # type: ignore[assignment]
                  chart: bool = True) -> list[TrialRow]:
    """Write ``trials.csv``, and once a trial has trained ``best.yaml`` and (``chart``) ``pareto.png``."""
    rows = trial_rows(study)
    write_trials_csv(output / "trials.csv", rows)
    best = best_row(rows)
    if best is not None:
        write_best_yaml(output / "best.yaml", record["architecture"], list(record.get("overrides", [])), best,
                        output, recorded_limits(record))
        if chart:
            by = "latency_ms" if "latency_ms" in record.get("objectives", []) else "macs"
            write_pareto(output / "pareto.png", rows, title=str(record.get("study", "search")),
                         dataset=record.get("dataset"), references=list(references), by=by,
                         batch_size=int(record.get("latency_batch") or 8))
    return rows
