"""Compare architectures: a table and a bubble chart of accuracy against MACs or latency, bubble area by
parameters.

The chart follows Canziani, Paszke and Culurciello (2016), "An Analysis of Deep Neural Network Models
for Practical Applications", figure 2 (accuracy against operations) and, with latency on the x axis,
their accuracy against inference time. A zoo name contributes its computed parameters and MACs and the
accuracy its YAML reports under ``meta:`` (with its source); a run directory contributes the test
accuracy it measured (``metrics.json``) and the figures of its ``resolved.yaml``. No model is built,
except to measure latency (``axis="measured-ms"``); predicted latency comes from this machine's table
(:mod:`blockbuilder.report.latency`).

Example:
    >>> rows = compare_rows(["vgg16", "resnet50", "runs/lenet5"])
    >>> chart(rows, "chart.png")
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from blockbuilder.errors import SpecError, UsageError
from blockbuilder.files import atomic_path
from blockbuilder.text import human

CHART_FORMATS = (".png", ".svg")  # the one list: the CLI checks --output against it
BUBBLE_AREA = (30.0, 1430.0)  # points²: the bubble of the fewest parameters drawn, of the most
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
#: What the x axis shows: operations, latency predicted from this machine's table, latency measured here.
AXES = ("macs", "predicted-ms", "measured-ms")
Axis = Literal["macs", "predicted-ms", "measured-ms"]


@dataclass(frozen=True)
class Row:
    """One compared model.

    Args:
        name: The zoo name or the run directory's name.
        params: Weights, computed from the specs.
        macs: Multiply-accumulates of one forward pass.
        depth: Weight layers on the longest path.
        accuracy: Top-1 accuracy in percent, or ``None`` when unknown.
        dataset: What the accuracy was measured on.
        origin: ``zoo`` or the run directory.
        source: Where the accuracy was reported (a zoo file's ``meta: source``).
        latency_ms: Milliseconds per batch, predicted or measured (only when the axis is a latency).
    """

    name: str
    params: int
    macs: int
    depth: int
    accuracy: float | None
    dataset: str | None
    origin: str
    source: str | None = None
    latency_ms: float | None = None


def compare_rows(sources: list[str], axis: Axis = "macs", batch_size: int = 8) -> list[Row]:
    """One row per source: a run directory (holding ``metrics.json``) or an architecture name or file.

    Args:
        sources: Zoo names, architecture files, run directories.
        axis: With a latency axis, each row also gets its milliseconds per batch of ``batch_size``:
            ``predicted-ms`` from this machine's newest latency table, ``measured-ms`` by building and
            timing the model (inference, float32, median of 5 calls).

    Raises:
        UsageError: a source is neither a run directory nor an architecture; no latency table here.
        SpecError: a run directory's ``metrics.json`` or ``resolved.yaml`` is malformed.
    """
    if axis == "predicted-ms":
        from blockbuilder.report import latency

        if not latency.tables_here():
            raise UsageError("no latency table for this machine yet: make one with 'blockbuilder profile "
                             "resnet20_cifar --calibrate' (or use --x measured-ms)")
    return [_run_row(Path(s), axis, batch_size) if Path(s).is_dir() else _arch_row(s, axis, batch_size)
            for s in sources]


def zoo_sources(dataset: str) -> list[str]:
    """The zoo networks whose ``meta: dataset`` starts with ``dataset`` (any case): ``imagenet``.

    Raises:
        UsageError: no zoo network reports an accuracy on such a data set.
    """
    from blockbuilder.language.architecture import load
    from blockbuilder.language.resolve import zoo_names

    datasets = {name: str(load(name).meta.get("dataset") or "") for name in zoo_names()}
    names = [name for name, found in datasets.items() if found.lower().startswith(dataset.lower())]
    if not names:
        known = ", ".join(sorted({found for found in datasets.values() if found}))
        raise UsageError(f"no zoo network reports a data set called {dataset!r} (the zoo's: {known})")
    return names


def _latency(arch: Any, axis: Axis, batch_size: int) -> float | None:
    if axis == "macs":
        return None
    if axis == "predicted-ms":
        from blockbuilder.report import latency

        return latency.tables_here()[0].predict(arch.root)
    import keras

    from blockbuilder.compiler.compile import build_model
    from blockbuilder.report.profile import Timer

    model = build_model(arch.root, arch.name, tuple(arch.input_shape))
    ms = Timer(batch_size, "inference", repeats=5, warmup=2).time(model, tuple(arch.input_shape))
    del model
    keras.backend.clear_session()
    return ms


def _arch_row(name: str, axis: Axis = "macs", batch_size: int = 8) -> Row:
    from blockbuilder.language.architecture import load
    from blockbuilder.report.summary import estimate

    arch = load(name)
    params, macs = estimate(arch)
    accuracy = arch.meta.get("accuracy")
    return Row(arch.name, params, macs, arch.depth, float(accuracy) if accuracy is not None else None,
               arch.meta.get("dataset"), "zoo" if Path(name).suffix != ".yaml" else name,
               arch.meta.get("source"), _latency(arch, axis, batch_size))


def _run_row(run_dir: Path, axis: Axis = "macs", batch_size: int = 8) -> Row:
    from blockbuilder.language.architecture import load
    from blockbuilder.report.summary import estimate

    resolved, metrics_path = run_dir / "resolved.yaml", run_dir / "metrics.json"
    if not resolved.is_file() or not metrics_path.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it needs resolved.yaml and metrics.json; "
                         "'blockbuilder train' writes them)")
    arch = load(resolved)
    params, macs = estimate(arch)
    metrics = _read_metrics(metrics_path)
    accuracy = (metrics.get("test") or {}).get("accuracy")
    accuracy = 100.0 * float(accuracy) if isinstance(accuracy, (int, float)) else None
    return Row(run_dir.resolve().name, params, macs, arch.depth, accuracy, metrics.get("dataset"), str(run_dir),
               None, _latency(arch, axis, batch_size))


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the metrics: {exc}", None, str(path)) from exc
    if not isinstance(metrics, dict):
        raise SpecError("metrics.json must hold a JSON object", None, str(path))
    return metrics


def table(rows: list[Row], axis: Axis = "macs", batch_size: int = 8) -> Any:
    """A rich table: params, MACs, [latency,] depth, accuracy and where each figure comes from."""
    from rich.table import Table

    out = Table(title="comparison", title_justify="left")
    timed = axis != "macs"
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("name", "left"), ("params", "right"), ("MACs", "right"),
        *((((f"{axis.split('-')[0]} ms (batch {batch_size})"), "right"),) if timed else ()),
        ("depth", "right"), ("accuracy", "right"), ("dataset", "left"), ("from", "left"), ("source", "left"))
    for column, justify in columns:
        out.add_column(column, justify=justify)
    for row in rows:
        accuracy = f"{row.accuracy:.2f} %" if row.accuracy is not None else "—"
        latency = (f"{row.latency_ms:.1f}" if row.latency_ms is not None else "—",) if timed else ()
        out.add_row(row.name, f"{row.params:,}", human(row.macs), *latency, str(row.depth), accuracy,
                    row.dataset or "—", row.origin, row.source or "")
    return out


def as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    """The rows as plain dictionaries (for ``--json``)."""
    return [asdict(row) for row in rows]


# -- the bubble chart --------------------------------------------------------------------------------


def check_chart_path(output: str | Path) -> str:
    """The chart format of ``output`` (``png`` or ``svg``), from its suffix.

    Raises:
        UsageError: the suffix is not one of ``CHART_FORMATS``.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in CHART_FORMATS:
        raise UsageError(f"cannot tell the chart format of '{output}': use a name ending in "
                         f"{' or '.join(CHART_FORMATS)}")
    return suffix[1:]


def chart(rows: list[Row], output: str | Path, axis: Axis = "macs", batch_size: int = 8) -> Path:
    """Write the accuracy-vs-MACs (or latency) bubble chart (``.png`` or ``.svg``); rows without accuracy
    are listed below it.

    Raises:
        UsageError: the suffix is not ``.png`` or ``.svg``, or no row has an accuracy to plot.
        CommandError: the chart cannot be written.
    """
    path = Path(output)
    fmt = check_chart_path(path)
    plotted = [row for row in rows if row.accuracy is not None]
    if not plotted:
        raise UsageError("none of these has an accuracy to plot (zoo 'meta: accuracy' or a run's metrics.json)")
    fig = _figure(plotted, [row.name for row in rows if row.accuracy is None], axis, batch_size)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format=fmt, dpi=110, facecolor="white",
                    metadata={"Date": None} if fmt == "svg" else {})
    return path


def _x(row: Row, axis: Axis) -> float:
    """Where a row sits on the x axis: G MACs, or milliseconds."""
    if axis == "macs":
        return row.macs / 1e9
    assert row.latency_ms is not None
    return row.latency_ms


def _y(row: Row) -> float:
    """The accuracy of a plotted row (only rows with one are plotted)."""
    assert row.accuracy is not None
    return row.accuracy


@dataclass(frozen=True)
class _Bubbles:
    """Marker areas (points²) for the parameter counts of the rows drawn: the fewest parameters get the
    smallest bubble, the most the largest, linearly between, so a family of small trials is told apart
    as well as the zoo's ImageNet networks are."""

    fewest: int
    most: int

    @classmethod
    def of(cls, rows: list[Row]) -> _Bubbles:
        return cls(min(row.params for row in rows), max(row.params for row in rows))

    def area(self, params: int) -> float:
        small, large = BUBBLE_AREA
        if self.most == self.fewest:
            return (small + large) / 2
        return small + (large - small) * (params - self.fewest) / (self.most - self.fewest)

    def legend_counts(self) -> list[int]:
        """The fewest and the most parameters drawn, and a round count between them."""
        between = int(float(f"{(self.fewest + self.most) / 2:.2g}"))
        return sorted({self.fewest, *([between] if self.fewest < between < self.most else []), self.most})


def _figure(rows: list[Row], missing: list[str], axis: Axis = "macs", batch_size: int = 8) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.6) if len(rows) <= 20 else (12, 8))
    ax = fig.add_axes((0.08, 0.13, 0.72, 0.8))
    datasets = sorted({row.dataset or "unknown" for row in rows})
    bubbles = _Bubbles.of(rows)
    for index, row in enumerate(rows):
        colour = PALETTE[index % len(PALETTE)]
        ax.scatter([_x(row, axis)], [_y(row)], s=bubbles.area(row.params), color=colour, alpha=0.5,
                   edgecolors=colour, linewidths=1.2, zorder=3)
        ax.scatter([_x(row, axis)], [_y(row)], s=6, color="#222222", zorder=4)
    _axes(ax, rows, datasets, axis, batch_size)
    _labels(ax, rows, bubbles, axis)
    _size_legend(ax, bubbles)
    if missing:
        fig.text(0.08, 0.02, "no accuracy to plot: " + ", ".join(missing), fontsize=8, color="#777777")
    return fig


def _labels(ax: Any, rows: list[Row], bubbles: _Bubbles, axis: Axis = "macs") -> None:
    """Name each bubble beside it: to its right, else to its left, moved up or down by a line at a
    time (nearest first) while it would cover a label already placed or the axes' edge."""
    placed: list[tuple[float, float, float, float]] = []
    scale = ax.figure.dpi / 72
    left, right = ax.transAxes.transform((0, 0))[0], ax.transAxes.transform((1, 1))[0]
    for row in sorted(rows, key=lambda r: (-_y(r), _x(r, axis))):
        x, y = ax.transData.transform((_x(row, axis), row.accuracy))
        gap = (math.sqrt(bubbles.area(row.params)) / 2 + 3) * scale
        width, height = 9 * 0.6 * len(row.name) * scale, 11 * scale
        candidates = [(side, step * height) for offset in range(40) for step in ((offset,) if not offset else
                      (offset, -offset)) for side in (1, -1)]
        chosen = candidates[0]
        for side, dy in candidates:
            box = (x + gap if side > 0 else x - gap - width, y + dy - height / 2, width, height)
            if box[0] >= left and box[0] + width <= right and not any(_overlap(box, other) for other in placed):
                chosen = (side, dy)
                break
        side, dy = chosen
        box = (x + gap if side > 0 else x - gap - width, y + dy - height / 2, width, height)
        placed.append(box)
        ax.annotate(row.name, (_x(row, axis), row.accuracy), xytext=(side * gap / scale, dy / scale),
                    textcoords="offset points", fontsize=9, va="center", ha="left" if side > 0 else "right",
                    color="#222222", zorder=5,
                    arrowprops={"arrowstyle": "-", "color": "#aaaaaa", "lw": 0.6} if dy else None)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _axes(ax: Any, rows: list[Row], datasets: list[str], axis: Axis = "macs", batch_size: int = 8) -> None:
    from matplotlib.ticker import FuncFormatter

    macs = [_x(row, axis) for row in rows]
    accuracy = [_y(row) for row in rows]
    ax.set_xscale("log")
    low, high = min(macs), max(macs)
    ax.set_xlim(low / 2.2, high * 2.2)
    spread = max(max(accuracy) - min(accuracy), 4.0)
    ax.set_ylim(min(accuracy) - 0.35 * spread, min(max(accuracy) + 0.35 * spread, 101.0))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    what = {"macs": "operations", "predicted-ms": "predicted latency", "measured-ms": "measured latency"}[axis]
    ax.set_xlabel("multiply-accumulates per image [G] (log scale)" if axis == "macs" else
                  f"{what} on this machine, ms per batch of {batch_size} (log scale)")
    ax.set_ylabel("top-1 accuracy [%]")
    ax.set_title(f"accuracy vs {what}, bubble area by parameters ({', '.join(datasets)})", fontsize=10,
                 loc="left")
    ax.grid(True, which="major", color="#dddddd", zorder=0)
    ax.grid(True, which="minor", color="#f0f0f0", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _size_legend(ax: Any, bubbles: _Bubbles) -> None:
    counts = bubbles.legend_counts()
    handles = [ax.scatter([], [], s=bubbles.area(count), color="#bbbbbb", alpha=0.6, edgecolors="#888888")
               for count in counts]
    widest = math.sqrt(BUBBLE_AREA[1]) / 8  # the largest bubble's diameter, in the legend's font size (8 pt)
    ax.legend(handles, [f"{human(count)} params" for count in counts], loc="center left", frameon=False,
              bbox_to_anchor=(1.0, 0.5), labelspacing=0.6 * widest, handlelength=widest, borderpad=0.6,
              fontsize=8, scatterpoints=1, title="bubble area", title_fontsize=8)
