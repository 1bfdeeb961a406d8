"""Latency predicted from the file, without building: a per-machine table of measured block costs.

``blockbuilder profile --calibrate`` times every registered block type on a grid of shapes
(:data:`SHAPES`; what it times: :mod:`blockbuilder.report.latency_grid`) and keeps each timed block (its
:func:`descriptor`, :func:`work` and milliseconds) and, per type, a fit of milliseconds per call as
``c + batch * (a * MACs + b * input values + d * output values)`` (non-negative coefficients). The table
is kept in the user's cache (``$BLOCKBUILDER_CACHE`` or ``~/.cache/blockbuilder/latency.json``), keyed by
CPU or GPU, backend, Keras version, precision, mode and batch size. A network's predicted latency is one
call's fixed cost plus its blocks' own costs: leaves by their type, combinators by the layers they make
themselves (a residual's add, a branch's merge). A block costs its work at the time per unit of work of
the calibrated blocks of its type nearest in shape (:func:`nearest_ms`); a type the calibration did not
time (a table made before the type was registered) by its fit, else by the fit over all of them.

This module imports neither Keras nor TensorFlow unless it calibrates: ``validate`` and ``zoo`` read
the table.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.report.latency_grid import instances

#: (spatial size, channels) of the calibration networks: CIFAR to ImageNet stages (a stem's 112 x 112 to
#: a last stage's 7 x 7 x 512: time per MAC is not the same when the tensors outgrow the caches).
SHAPES = ((112, 16), (56, 16), (56, 64), (32, 16), (32, 32), (28, 64), (28, 128), (16, 64), (14, 128),
          (14, 256), (8, 128), (7, 256), (7, 512))
#: Hand-picked variants of the common blocks that keep the shape, timed at each shape besides an instance of
#: every registered type (:func:`entries`). Blocks that keep the shape are timed in a chain of
#: :data:`CHAIN` copies against one copy (the difference is a block's cost inside a network, without a
#: call's fixed cost); the rest alone, less the fixed cost of a call of a model that does nothing.
KEEPING = (
    "conv: {{filters: {c}, kernel: 3}}",
    "conv: {{filters: {c}, kernel: 1}}",
    "conv: {{filters: {c}, kernel: 3, norm: batchnorm, activation: relu}}",
    "conv: {{filters: {c}, kernel: 3, groups: 8, norm: batchnorm, activation: relu}}",
    "conv: {{filters: {c}, kernel: 1, norm: batchnorm, activation: relu}}",
    "depthwise_conv: {{kernel: 3}}",
    "depthwise_conv: {{kernel: 3, norm: batchnorm, activation: relu}}",
    "batchnorm: {{}}",
    "activation: relu",
    "dropout: 0.1",
    "residual: {{body: [identity], shortcut: identity}}",
    "residual: {{body: [identity], shortcut: identity, after: relu}}",
    "inverted_residual: {{filters: {c}, expansion: 6}}",
    "separable_conv: {{filters: {c}, kernel: 3, norm: batchnorm, activation: relu}}",
    "layer_norm: {{}}",
    "convnext_block: {{}}",
)
#: Blocks that change the shape, timed alone (``{c2}``, ``{c4}``: twice, four times the width; ``{cq}`` a
#: quarter, ``{ch}`` half): the strided and widening or narrowing convs of ResNets' stages and bottlenecks.
CHANGING = (
    "zero_pad: 1",
    "conv: {{filters: {c2}, kernel: 3, stride: 2, padding: valid}}",
    "conv: {{filters: {c2}, kernel: 3, stride: 2, norm: batchnorm, activation: relu}}",
    "conv: {{filters: {c4}, kernel: 1, norm: batchnorm}}",
    "conv: {{filters: {cq}, kernel: 1, norm: batchnorm, activation: relu}}",
    "conv: {{filters: {c2}, kernel: 1, stride: 2, norm: batchnorm}}",
    "depthwise_conv: {{kernel: 3, stride: 2, norm: batchnorm}}",
    "channel_slice: {{stop: {ch}}}",
    "max_pool: 2",
    "avg_pool: 2",
    "global_avg_pool: {{}}",
    "dense: {{units: {c}}}",
)
CHAIN = 5
NEAREST = 3  # calibrated blocks a prediction reads
FLOOR_MS = 1e-4  # a calibrated block timed at nothing (noise) counts as this little
FEATURES = 4  # constant, MACs, input values, output values


def cache_path() -> Path:
    base = os.environ.get("BLOCKBUILDER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "blockbuilder")
    return Path(base) / "latency.json"


def _device_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        line = ""
    return line.partition(":")[2].strip() or "unknown CPU"


def _keras_version() -> str:
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def table_key(backend: str, precision: str, mode: str, batch_size: int, device: str | None = None) -> str:
    """What a table is valid for: the device, backend, Keras version, precision, mode and batch size."""
    return "|".join((device or _device_name(), backend, f"keras {_keras_version()}", precision, mode,
                     f"batch {batch_size}"))


def features(node: Node[Any]) -> list[float]:
    """A block's own cost figures per image: 1, MACs, input values, output values."""
    return [1.0, float(node.block.macs(node)), float(math.prod(node.input_shape)), float(math.prod(node.output_shape))]


def own_cost(node: Node[Any]) -> bool:
    """Whether the block makes layers of its own (a leaf, or a combinator's merge and shortcut)."""
    return not node.all_children() or bool(node.block.layer_names(node.spec))


def descriptor(node: Node[Any]) -> list[float]:
    """Where a block lies among the calibrated ones of its type: log2 of its input's and output's positions
    and channels, of 1 + MACs per output value (a 3x3 conv against a 1x1, a dense conv against a grouped),
    of its groups (a grouped conv runs slower per MAC), and 1 for a norm, 1 for an activation it applies
    itself (a conv-BN-ReLU against a bare conv)."""
    def positions(shape: tuple[int, ...]) -> float:
        return math.log2(max(math.prod(shape[:-1]), 1))

    inputs, outputs = node.input_shape, node.output_shape
    per_output = node.block.macs(node) / max(math.prod(outputs), 1)
    applies = [float(getattr(node.spec, key, None) not in (None, "none", "linear")) for key in ("norm", "activation")]
    return [positions(inputs), math.log2(max(inputs[-1], 1)), positions(outputs), math.log2(max(outputs[-1], 1)),
            math.log2(1 + per_output), math.log2(max(getattr(node.spec, "groups", 1), 1)), *applies]


def work(node: Node[Any]) -> float:
    """What a block's time is taken in proportion to, near a calibrated block: MACs plus values read and
    written, per image."""
    _, macs, inputs, outputs = features(node)
    return macs + inputs + outputs


def nearest_ms(rows: list[list[float]], where: list[float], amount: float) -> float:
    """Milliseconds at the time per unit of :func:`work` of the :data:`NEAREST` calibrated blocks nearest to
    ``where``: their median, weighted by closeness (a rate that changes as tensors outgrow the caches is
    read off the calibration at the nearest sizes, not extrapolated by one straight line; a median, so
    one block timed while the machine was busy does not count)."""
    near = sorted(rows, key=lambda row: math.dist(row[:-2], where))[:NEAREST]
    rates = sorted((max(row[-1], FLOOR_MS) / max(row[-2], 1.0), 1 / (1 + math.dist(row[:-2], where))) for row in near)
    half, total = sum(weight for _, weight in rates) / 2, 0.0
    for rate, weight in rates:
        total += weight
        if total >= half:
            return rate * amount
    return rates[-1][0] * amount  # pragma: no cover (the weights add up to their sum)


def sample_table(samples: Iterable[tuple[Node[Any], float]]) -> dict[str, list[list[float]]]:
    """Calibrated blocks (node, ms) by type, as :attr:`LatencyTable.samples` keeps them."""
    table: dict[str, list[list[float]]] = {}
    for node, ms in samples:
        table.setdefault(node.type, []).append([*descriptor(node), work(node), ms])
    return table


@dataclass
class LatencyTable:
    """Fitted block costs for one device, backend, precision, mode and batch size.

    Attributes:
        coefficients: Per block type, ``[c, a, b, d]``: ms = c + batch * (a*MACs + b*inputs + d*outputs).
        overhead_ms: One call's fixed cost (of a model that does nothing).
        general: The coefficients fitted over every block type, for a type not calibrated.
        samples: Per block type, every calibrated block: its :func:`descriptor`, :func:`work` and ms.
    """

    key: str
    batch_size: int
    overhead_ms: float
    coefficients: dict[str, list[float]]
    general: list[float]
    made: str
    samples: dict[str, list[list[float]]] = field(default_factory=dict)

    def block_ms(self, node: Node[Any]) -> float:
        """The block's own predicted milliseconds (children not included): from the calibrated blocks of
        its kind nearest in shape (:func:`nearest_ms`), else its type's fit, else the fit over all."""
        if not own_cost(node):
            return 0.0
        rows = self.samples.get(node.type)
        if rows:
            return nearest_ms(rows, descriptor(node), work(node))
        c, a, b, d = self.coefficients.get(node.type, self.general)
        _, macs, inputs, outputs = features(node)
        return c + self.batch_size * (a * macs + b * inputs + d * outputs)

    def predict(self, root: Node[Any]) -> float:
        """Predicted milliseconds of one call of the whole network on a batch."""
        return self.overhead_ms + sum(self.block_ms(node) for node in root.walk() if node is not root)

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "overhead_ms": self.overhead_ms, "coefficients": self.coefficients,
                "general": self.general, "made": self.made, "samples": self.samples}


def read_tables(path: Path | None = None) -> dict[str, LatencyTable]:
    """Every table in the cache; an unreadable cache reads as none (it is made again by calibrating)."""
    path = path or cache_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {key: LatencyTable(key=key, batch_size=int(v["batch_size"]), overhead_ms=float(v["overhead_ms"]),
                                  coefficients={t: [float(x) for x in cs] for t, cs in v["coefficients"].items()},
                                  general=[float(x) for x in v["general"]], made=str(v["made"]),
                                  samples={k: [[float(x) for x in row] for row in rows]
                                           for k, rows in v.get("samples", {}).items()})
                for key, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_table(table: LatencyTable, path: Path | None = None) -> Path:
    from blockbuilder.files import atomic_path

    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = {key: t.to_dict() for key, t in read_tables(path).items()}
    tables[table.key] = table.to_dict()
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(tables, indent=1), encoding="utf-8")
    return path


def tables_here(backend: str | None = None) -> list[LatencyTable]:
    """The tables made on this device with this backend and Keras version, newest first."""
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    prefix = "|".join((_device_name(), backend, f"keras {_keras_version()}")) + "|"
    found = [t for key, t in read_tables().items() if key.startswith(prefix)]
    return sorted(found, key=lambda t: t.made, reverse=True)


def describe(table: LatencyTable) -> str:
    """``inference, float32, batch 32`` from a table's key."""
    _, _, _, precision, mode, batch = table.key.split("|")
    return f"{mode}, {precision}, {batch}"


def predictions(root: Node[Any], backend: str | None = None,
                tables: list[LatencyTable] | None = None) -> list[dict[str, Any]]:
    """The network's predicted latency under every table made here (``validate --json``, ``zoo --json``);
    ``tables`` when the caller read them once for many networks."""
    return [{"for": describe(t), "ms": round(t.predict(root), 3)}
            for t in (tables_here(backend) if tables is None else tables)]


def fit(samples: Iterable[tuple[str, list[float], float]], batch_size: int) -> tuple[dict[str, list[float]],
                                                                                     list[float]]:
    """Non-negative least squares per block type (and over all), on samples (type, features, ms)."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    def solve(rows: list[tuple[list[float], float]]) -> list[float]:
        x = np.array([[f[0], *(v * batch_size for v in f[1:])] for f, _ in rows])
        y = np.array([ms for _, ms in rows])
        scale = np.maximum(x.max(axis=0), 1e-12)  # columns of very different sizes: solve on [0, 1]
        model = LinearRegression(fit_intercept=False, positive=True).fit(x / scale, y)
        coefficients = model.coef_ / scale
        return [float(coefficients[0]), *(float(v) for v in coefficients[1:])]

    rows_of: dict[str, list[tuple[list[float], float]]] = {}
    everything: list[tuple[list[float], float]] = []
    for kind, figures, ms in samples:
        rows_of.setdefault(kind, []).append((figures, ms))
        everything.append((figures, ms))
    coefficients = {kind: solve(rows) for kind, rows in rows_of.items()}
    general = solve(everything)
    rate = coefficients.get("conv", general)[1]
    for kind, rows in rows_of.items():
        if not any(figures[1] for figures, _ in rows):  # timed without MACs (a residual's add): its own
            coefficients[kind][1] = rate                # MACs elsewhere (a projection) cost as a conv's
    return coefficients, general


def entries(channels: int) -> list[str]:
    """Every block the calibration times at width ``channels``: the hand-picked variants of
    :data:`KEEPING` and :data:`CHANGING`, then an instance of every registered type not among them
    (:func:`blockbuilder.report.latency_grid.instance`)."""
    widths = {"c": channels, "c2": 2 * channels, "c4": 4 * channels, "cq": max(channels // 4, 8),
              "ch": channels // 2}
    found = [entry.format(**widths) for entry in (*KEEPING, *CHANGING)]
    return [*found, *(made for made in instances(channels) if made not in found)]


def calibrate(backend: str, precision: str, mode: str, batch_size: int, repeats: int = 7, warmup: int = 2,
              progress: Callable[[str], None] | None = None) -> LatencyTable:
    """Time every :func:`entries` block at every shape of :data:`SHAPES` on this machine and fit the table
    (Keras needed).

    A block that keeps its input's shape is timed in a chain of :data:`CHAIN` copies against one copy (the
    difference is its cost inside a network, without a call's fixed cost); the rest alone, less the fixed
    cost of a call of a model that does nothing.
    """
    from blockbuilder.compiler.compile import build_model
    from blockbuilder.errors import BlockbuilderError
    from blockbuilder.language.architecture import Architecture, loads
    from blockbuilder.report.profile import Timer, block_model

    timer = Timer(batch_size, mode, repeats, warmup)
    train = mode == "train"
    samples: list[tuple[Node[Any], float]] = []
    overheads = []
    seen: set[tuple[str, str, tuple[int, ...]]] = set()  # ``activation: relu`` and ``{function: relu}`` once

    def network(size: int, channels: int, body: str) -> Architecture:
        return loads(f"name: calibration\ninput: [{size}, {size}, {channels}]\nclasses: {channels}\nnetwork:\n"
                     + body, filename="<calibration>")

    def whole(arch: Architecture) -> float:
        shape = tuple(arch.input_shape)
        model = build_model(arch.root, arch.name, shape) if not train else block_model(arch.root, shape, True)
        return timer.time(model, shape)

    for size, channels in SHAPES:
        shape = (size, size, channels)
        overhead = timer.time(block_model(None, shape, train), shape)
        overheads.append(overhead)
        for entry in entries(channels):
            try:
                one = network(size, channels, f"  - {entry}\n")
            except BlockbuilderError:  # not at this shape (a pool wider than the tensor, a slice of too few)
                continue
            node = one.root.group("body")[0]
            if not own_cost(node) or (node.type, repr(node.spec), shape) in seen:
                continue
            seen.add((node.type, repr(node.spec), shape))
            if progress is not None:
                progress(f"{entry} at {list(shape)}")
            if node.output_shape == node.input_shape:
                many = network(size, channels, f"  - repeat: {{times: {CHAIN}, body: [{{{entry}}}]}}\n")
                ms = (whole(many) - whole(one)) / (CHAIN - 1)
            else:
                ms = timer.time(block_model(node, shape, train), shape) - overhead
            samples.append((node, max(ms, 0.0)))
    coefficients, general = fit(((n.type, features(n), ms) for n, ms in samples), batch_size)
    return LatencyTable(
        key=table_key(backend, precision, mode, batch_size), batch_size=batch_size,
        overhead_ms=sorted(overheads)[len(overheads) // 2], coefficients=coefficients, general=general,
        made=datetime.datetime.now().isoformat(timespec="seconds"),
        samples=sample_table(samples))
