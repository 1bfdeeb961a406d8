"""``blockbuilder profile``: how long each block takes on the device at hand.

Each block of the hierarchy is built on its own, from its inferred input shape, as a small Keras model
with the same layers, and timed with the public batch calls Keras compiles once (``predict_on_batch``
for inference, ``train_on_batch`` for a training step: forward, backward and the optimizer's update).
The whole network is timed the same way, so the rows and the whole can be compared: their sum is the
whole plus one call's fixed cost per extra block (:attr:`Profile.overhead_ms` measures it).

Every figure is the median of ``repeats`` timed calls after ``warmup`` untimed ones.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blockbuilder.blocks import Node
from blockbuilder.language.architecture import Architecture
from blockbuilder.text import human

MODES = ("inference", "train")
#: The block types whose children run one after another from the block's input.
CHAINS = ("sequence", "repeat")


@dataclass
class BlockTime:
    """One timed block.

    Attributes:
        path: The block's hierarchical name (``stage2.block1``).
        type: Its type (``residual``), or ``label (type)`` for a user-defined block.
        macs, params: From the specs, per image (as ``summary`` counts them).
        ms: Median milliseconds of one call on the whole batch.
        children: Its blocks, timed on their own, where they form a chain (a sequence).
    """

    path: str
    type: str
    macs: int
    params: int
    ms: float
    children: list[BlockTime] = field(default_factory=list)

    def gflops(self, batch: int) -> float:
        """Achieved GFLOP/s (one multiply-accumulate = two operations)."""
        return 2 * self.macs * batch / (self.ms * 1e6) if self.ms > 0 else 0.0

    def to_dict(self, batch: int, total_ms: float) -> dict[str, Any]:
        return {
            "path": self.path, "type": self.type, "macs": self.macs, "params": self.params,
            "ms": round(self.ms, 4), "share": round(self.ms / total_ms, 4) if total_ms else 0.0,
            "gflops": round(self.gflops(batch), 3),
            "blocks": [child.to_dict(batch, total_ms) for child in self.children],
        }


@dataclass
class Profile:
    """A network's time, block by block.

    Attributes:
        ms: The whole network, one call on the batch (median).
        predicted_ms: The whole predicted from the file by this machine's latency table, if it has one
            (:mod:`blockbuilder.report.latency`).
        overhead_ms: One call of a model that only passes its input on (for a training step: times
            one trainable number), at the input's shape: the fixed cost every row includes.
        blocks: The top-level blocks, each with its children down to the depth asked for.
    """

    name: str
    backend: str
    precision: str
    mode: str
    batch_size: int
    repeats: int
    macs: int
    params: int
    ms: float
    overhead_ms: float
    blocks: list[BlockTime]
    predicted_ms: float | None = None

    @property
    def images_per_second(self) -> float:
        return self.batch_size * 1000 / self.ms if self.ms > 0 else 0.0

    @property
    def blocks_ms(self) -> float:
        """The top-level rows added up."""
        return sum(block.ms for block in self.blocks)

    @property
    def parts_ms(self) -> float:
        """The top-level rows added up, less the fixed cost of the calls the whole does not make."""
        return self.blocks_ms - max(len(self.blocks) - 1, 0) * self.overhead_ms

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "name": self.name, "backend": self.backend, "precision": self.precision, "mode": self.mode,
            "batch_size": self.batch_size, "repeats": self.repeats, "macs": self.macs, "params": self.params,
            "ms": round(self.ms, 4), "images_per_second": round(self.images_per_second, 1),
            "overhead_ms": round(self.overhead_ms, 4), "blocks_ms": round(self.blocks_ms, 4),
            "predicted_ms": None if self.predicted_ms is None else round(self.predicted_ms, 4),
            "parts_ms": round(self.parts_ms, 4),
            "blocks": [block.to_dict(self.batch_size, self.ms) for block in self.blocks],
        }

    def rows(self) -> Iterator[tuple[int, BlockTime]]:
        """Every timed block with its level (0 for the top), depth first."""
        stack = [(0, block) for block in reversed(self.blocks)]
        while stack:
            level, block = stack.pop()
            yield level, block
            stack.extend((level + 1, child) for child in reversed(block.children))


def estimate_node(node: Node[Any]) -> tuple[int, int]:
    """Parameters and MACs of a block and everything under it, from its specs (as ``validate`` counts)."""
    nodes = node.walk()
    return sum(n.block.params(n) for n in nodes), sum(n.block.macs(n) for n in nodes)


def _type_of(node: Node[Any]) -> str:
    return node.label if node.label == node.type else f"{node.label} ({node.type})"


def _chained(node: Node[Any]) -> tuple[Node[Any], ...]:
    """The children that run one after another from the node's input (a sequence's body), else none."""
    return node.group("body") if node.type in CHAINS else ()


class Timer:
    """Times Keras models on random batches of one size, in one precision policy."""

    def __init__(self, batch_size: int, mode: str, repeats: int, warmup: int, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.batch_size, self.mode, self.repeats, self.warmup = batch_size, mode, repeats, warmup
        self.rng = np.random.default_rng(seed)

    def batch(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.random((self.batch_size, *shape), dtype=np.float32)

    def time(self, model: Any, input_shape: tuple[int, ...]) -> float:
        """Median milliseconds of one call of ``model`` on a batch."""
        import keras

        x: Any = keras.ops.convert_to_tensor(self.batch(input_shape))
        if len(model.inputs) > 1:  # a block that reads earlier blocks (from:): a batch for each
            x = [x, *(keras.ops.convert_to_tensor(self.batch(tuple(t.shape[1:]))) for t in model.inputs[1:])]
        call: Callable[[], Any]
        if self.mode == "train":
            y = keras.ops.zeros((self.batch_size, *model.output.shape[1:]), dtype="float32")
            model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mean_squared_error")

            def call() -> Any:
                return model.train_on_batch(x, y)
        else:
            def call() -> Any:
                return model.predict_on_batch(x)
        for _ in range(self.warmup):
            call()
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)


def _scale(name: str = "scale") -> Any:
    """A layer of one trainable number that multiplies its input: put before a block, a training step
    runs the block's backward pass even where the block has no weights of its own (a pool)."""
    import keras

    class Scale(keras.layers.Layer):  # type: ignore[misc]
        def build(self, input_shape: Any) -> None:
            self.factor = self.add_weight(shape=(), initializer="ones", name="factor")

        def call(self, x: Any) -> Any:
            return x * keras.ops.cast(self.factor, x.dtype)

    return Scale(name=name)


def block_model(node: Node[Any] | None, input_shape: tuple[int, ...], train: bool,
                reads: Mapping[str, tuple[int, ...]] | None = None) -> Any:
    """A Keras model of one block alone (none: of nothing, the fixed cost of a call), from its input shape.

    ``reads``: the shapes of the other blocks' outputs it reads (:func:`outside_reads`), each an input of
    its own. For a training step a :func:`_scale` comes first, so every block is timed forward and backward.
    """
    import keras

    from blockbuilder.compiler.compile import BuildContext

    inputs = [keras.Input(shape=input_shape, name="input")]
    context = BuildContext()
    for index, (key, shape) in enumerate((reads or {}).items()):
        inputs.append(keras.Input(shape=shape, name=f"read{index + 1}"))
        context.tensors[key] = _scale(f"scale{index + 1}")(inputs[-1]) if train else inputs[-1]
    x = _scale()(inputs[0]) if train else inputs[0]
    if node is not None:
        for key in (f"{node.path}:input", *node.sources[:1]):  # what it is handed, under every name it has
            context.tensors[key] = x
        x = node.block.build(node, x, context)
    elif not train:
        x = keras.layers.Identity()(x)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], x, name="block")


def outside_reads(node: Node[Any], root: Node[Any], input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The tensors a block (or a block inside it) reads by ``from:`` from outside it, but its first input
    (what it is handed), by key (``Node.sources``), with their shapes."""
    inside = {n.path for n in node.walk()}
    index = {n.path: n for n in root.walk()}
    handed = node.sources[0] if node.sources else f"{node.path}:input"
    reads: dict[str, tuple[int, ...]] = {}
    for key in (key for n in node.walk() for key in n.sources):
        path, colon, _ = key.partition(":")
        if key in (handed, f"{node.path}:input") or key in reads or path in inside:
            continue  # its first input, or made inside it
        source = index.get(path)
        shape = input_shape if source is None else source.input_shape if colon else source.output_shape
        reads[key] = tuple(shape)
    return reads


def profile(architecture: Architecture, model: Any, *, batch_size: int = 32, mode: str = "inference",
            repeats: int = 10, warmup: int = 2, depth: int = 1, precision: str = "float32",
            progress: Callable[[str], None] | None = None) -> Profile:
    """Time ``model`` (built from ``architecture``) and each of its blocks down to ``depth`` levels.

    Blocks under a level are timed only where they run one after another (a sequence, which is what a
    user-defined block often is, or a repeat); a residual or a branch is timed as a whole.
    """
    import keras

    timer = Timer(batch_size, mode, repeats, warmup)

    def timed(node: Node[Any], level: int) -> BlockTime:
        if progress is not None:
            progress(node.path)
        shape = tuple(node.input_shape)
        reads = outside_reads(node, architecture.root, tuple(architecture.input_shape))
        ms = timer.time(block_model(node, shape, mode == "train", reads), shape)
        children = [timed(child, level + 1) for child in _chained(node)] if level + 1 < depth else []
        params, macs = estimate_node(node)
        return BlockTime(node.path, _type_of(node), macs, params, ms, children)

    blocks = [timed(node, 0) for node in architecture.root.group("body")]
    if progress is not None:
        progress("the whole network")
    whole = timer.time(model, tuple(architecture.input_shape))
    shape = tuple(architecture.input_shape)
    overhead = timer.time(block_model(None, shape, mode == "train"), shape)
    params, macs = estimate_node(architecture.root)
    return Profile(
        name=architecture.name, backend=keras.backend.backend(), precision=precision, mode=mode,
        batch_size=batch_size, repeats=repeats, macs=macs, params=params, ms=whole, overhead_ms=overhead,
        blocks=blocks,
    )


def render(result: Profile) -> Any:
    """The table ``blockbuilder profile`` prints (a rich renderable)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{result.name}: {result.mode}, batch {result.batch_size}, {result.precision}, "
                        f"{result.backend} (median of {result.repeats})",
                  title_justify="left")
    for column, justify in (("block", "left"), ("type", "left"), ("MACs", "right"), ("params", "right"),
                            ("ms", "right"), ("share", "right"), ("GFLOP/s", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for level, block in result.rows():
        share = block.ms / result.ms if result.ms else 0.0
        table.add_row("  " * level + block.path, block.type, human(block.macs), f"{block.params:,}",
                      f"{block.ms:.3f}", f"{share:.0%}", f"{block.gflops(result.batch_size):.1f}")
    whole = Text(
        f"whole network: {result.ms:.3f} ms per batch of {result.batch_size} "
        f"({result.images_per_second:,.0f} images/s, {human(result.macs)} MACs per image); "
        f"blocks added up: {result.blocks_ms:.3f} ms; each row includes a call's fixed cost of "
        f"{result.overhead_ms:.3f} ms, and without the {len(result.blocks) - 1} calls the whole does not make "
        f"they add up to {result.parts_ms:.3f} ms")
    if result.predicted_ms is None:
        predicted = Text("predicted from the file: no calibration for this mode, precision and batch here "
                         "(blockbuilder profile ... --calibrate makes one)")
    else:
        error = result.predicted_ms / result.ms - 1 if result.ms else 0.0
        predicted = Text(f"predicted from the file: {result.predicted_ms:.3f} ms ({error:+.0%} against the measured)")
    return Group(table, whole, predicted)


def plot(result: Profile, path: str) -> None:
    """A bar chart of the top-level blocks' time, the slowest standing out (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = result.blocks
    names = [block.path for block in blocks]
    times = [block.ms for block in blocks]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(blocks) + 1.5))
    colours = ["#d62728" if t == max(times) else "#1f77b4" for t in times]
    ax.barh(range(len(blocks)), times, color=colours)
    ax.set_yticks(range(len(blocks)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"ms per batch of {result.batch_size} ({result.mode}, {result.precision}, {result.backend})")
    ax.set_title(f"{result.name}: {result.ms:.2f} ms whole, {result.images_per_second:,.0f} images/s")
    for index, t in enumerate(times):
        ax.text(t, index, f" {t / result.ms:.0%}" if result.ms else "", va="center", fontsize=8)
    fig.tight_layout()
    from blockbuilder.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
