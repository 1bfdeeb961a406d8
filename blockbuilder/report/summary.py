"""What a network is: depth, parameters, multiply-accumulates and the hierarchy of blocks.

Parameters and MACs are read off the built Keras model (each layer belongs to the block whose
path prefixes its name), so totals equal ``model.count_params()``; depth follows the rule in the
README (weight layers on the longest input-to-output path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from blockbuilder.blocks import Node, flow
from blockbuilder.blocks.geometry import widest
from blockbuilder.language.architecture import Architecture, block_depth
from blockbuilder.language.scope import recursion_room
from blockbuilder.report.diagram_marks import describe
from blockbuilder.report.latency import predictions
from blockbuilder.text import human, plural

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console


@dataclass
class BlockSummary:
    """One node of the block tree with its figures."""

    name: str
    type: str
    output_shape: list[int]
    params: int
    macs: int
    depth: int
    receptive_field: int | None = None
    children: list[BlockSummary] = field(default_factory=list)
    trainable_params: int = 0  # weights training updates
    frozen_params: int = 0  # weights of frozen layers (freeze:), which never change
    description: str = ""  # what the block builds, as its diagram box says (conv 3×3, 16, BN, ReLU)

    def __repr__(self) -> str:
        """One line (the dataclass' own repr spells out the whole subtree)."""
        return (f"<BlockSummary {self.name} ({self.type}): {self.output_shape}, {self.params:,} params, "
                f"{human(self.macs)} MACs, depth {self.depth}, {len(self.children)} children>")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "output_shape": self.output_shape,
                "params": self.params, "macs": self.macs, "depth": self.depth,
                "receptive_field": self.receptive_field, "trainable_params": self.trainable_params,
                "frozen_params": self.frozen_params, "children": [c.to_dict() for c in self.children]}


@dataclass
class Summary:
    """Totals and the block tree of one model."""

    name: str
    input_shape: list[int]
    output_shape: list[int]
    params_total: int
    params_trainable: int
    params_non_trainable: int
    macs: int
    depth: int
    blocks: list[BlockSummary]
    #: Predicted milliseconds per batch, one entry per latency table made on this machine
    #: (``blockbuilder profile --calibrate``): ``{"for": "inference, float32, batch 32", "ms": 95.1}``.
    latency: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        """One line: the name and the totals (``print(summary)`` shows the table)."""
        return (f"<Summary {self.name}: {self.params_total:,} params, {human(self.macs)} MACs, "
                f"depth {self.depth}>")

    def __str__(self) -> str:
        """The table ``blockbuilder summary`` prints, as plain text: what ``print(summary)`` shows."""
        return self.text()

    def __rich__(self) -> Any:
        """The table in colour, for ``rich.print(summary)`` and a rich console."""
        return render(self)

    def _repr_html_(self) -> str:
        """The summary table, as ``blockbuilder summary`` prints it, inline in Jupyter."""
        return _recorded(render(self), 120).export_html(
            inline_styles=True, code_format='<pre style="font-family:monospace">{code}</pre>')

    def text(self, depth: int | None = None) -> str:
        """The table as plain text, as wide as it needs (nothing cropped).

        Args:
            depth: Fold the block tree below this level (``blockbuilder summary --depth``).
        """
        lines = _recorded(render(self, depth), _UNCROPPED).export_text().splitlines()
        return "\n".join(line.rstrip() for line in lines)

    def show(self, depth: int | None = None) -> None:
        """Print the table to stdout, in colour on a terminal, like ``model.summary()``.

        Args:
            depth: Fold the block tree below this level (``blockbuilder summary --depth``).
        """
        from rich.console import Console

        Console().print(render(self, depth))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object (schema in the README)."""
        return {
            "name": self.name,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
            "params": {"total": self.params_total, "trainable": self.params_trainable,
                       "non_trainable": self.params_non_trainable},
            "macs": self.macs,
            "depth": self.depth,
            "latency": self.latency,
            "blocks": [b.to_dict() for b in self.blocks],
        }


def layer_macs(layer: Any) -> int:
    """Multiply-accumulates of one Keras layer: output positions x kernel size (conv, dense)."""
    custom = getattr(layer, "macs", None)
    if callable(custom):
        return int(custom())
    # SeparableConv2D holds two kernels, both applied at each output position (its stride is the depthwise's)
    kernels: list[Any] = [getattr(layer, name, None) for name in ("kernel", "depthwise_kernel", "pointwise_kernel")]
    sizes = [math.prod(int(d) for d in kernel.shape) for kernel in kernels if hasattr(kernel, "shape")]
    if not sizes:
        return 0
    positions = math.prod(int(d) for d in layer.output.shape[1:-1])
    return positions * sum(sizes)


def owner(layer_name: str, paths: set[str]) -> str:
    """The block path a layer belongs to: its longest dotted prefix that is a block."""
    name = layer_name
    while name and name not in paths:
        name = name.rpartition(".")[0]
    return name


def summarize(architecture: Architecture, model: Any) -> Summary:
    """Figures for an architecture and the model built from it."""
    nodes = _index(architecture.root)
    own_params: dict[str, int] = {}
    own_macs: dict[str, int] = {}
    own_split: dict[str, tuple[int, int]] = {}  # (trainable, frozen) weights
    for layer in model.layers:
        path = owner(layer.name, set(nodes))
        own_params[path] = own_params.get(path, 0) + layer.count_params()
        own_macs[path] = own_macs.get(path, 0) + layer_macs(layer)
        trains = sum(math.prod(w.shape) for w in layer.trainable_weights)
        frozen = 0 if layer.trainable else layer.count_params()
        before = own_split.get(path, (0, 0))
        own_split[path] = (before[0] + int(trains), before[1] + frozen)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = model.count_params()
    fields = receptive_fields(architecture.root)
    blocks = [_block(child, own_params, own_macs, fields, own_split) for child in architecture.root.all_children()]
    return Summary(
        name=architecture.name,
        input_shape=list(architecture.input_shape),
        output_shape=list(architecture.output_shape),
        params_total=total,
        params_trainable=int(trainable),
        params_non_trainable=int(total - trainable),
        macs=sum(own_macs.values()),
        depth=architecture.depth,
        blocks=blocks,
        latency=predictions(architecture.root),
    )


def estimate(architecture: Architecture) -> tuple[int, int]:
    """Parameters and MACs computed from the specs alone, without building (``validate``, ``zoo``)."""
    nodes = architecture.root.walk()
    return sum(n.block.params(n) for n in nodes), sum(n.block.macs(n) for n in nodes)


def _index(root: Node[Any]) -> dict[str, Node[Any]]:
    return {node.path: node for node in root.walk()}


def receptive_fields(root: Node[Any]) -> dict[str, int | None]:
    """Receptive field (input pixels one output value sees) after every block; ``None`` where undefined."""
    at: dict[str, Any] = {}

    def step(node: Node[Any], field: Any) -> Any:
        return node.block.receptive_field(node, field, chain)

    def chain(nodes: tuple[Node[Any], ...], field: Any) -> Any:
        return flow(nodes, field, at, step, lambda fields: widest(*fields))  # from: the widest input's

    with recursion_room():
        chain(root.group("body"), (1, 1))
    return {path: field[0] if field else None for path, field in at.items() if not path.endswith(":input")}


def _block(node: Node[Any], own_params: dict[str, int], own_macs: dict[str, int],
           fields: dict[str, int | None], own_split: dict[str, tuple[int, int]]) -> BlockSummary:
    children = [_block(child, own_params, own_macs, fields, own_split) for child in node.all_children()]
    trains, frozen = own_split.get(node.path, (0, 0))
    return BlockSummary(
        name=node.path,
        type=node.label if node.label == node.type else f"{node.label} ({node.type})",
        output_shape=list(node.output_shape),
        params=own_params.get(node.path, 0) + sum(c.params for c in children),
        macs=own_macs.get(node.path, 0) + sum(c.macs for c in children),
        depth=block_depth(node),
        receptive_field=fields.get(node.path),
        children=children,
        trainable_params=trains + sum(c.trainable_params for c in children),
        frozen_params=frozen + sum(c.frozen_params for c in children),
        description=describe(node),
    )


#: Columns for the plain text: wider than any table, which takes only the width it needs.
_UNCROPPED = 10_000


def _recorded(renderable: Any, width: int) -> Console:
    """A rich ``Console`` that has printed ``renderable`` into memory, ready for ``export_text``/``export_html``."""
    import io

    from rich.console import Console

    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console


def render(summary: Summary, max_depth: int | None = None) -> Any:
    """A rich renderable: the block tree as a table, then the totals."""
    from rich.console import Group
    from rich.table import Table

    table = Table(title=f"{summary.name}: input {summary.input_shape}", title_justify="left")
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("block", "left"), ("type", "left"), ("output", "left"), ("params", "right"), ("MACs", "right"),
        ("depth", "right"), ("RF", "right"))
    frozen = any(block.frozen_params for block in summary.blocks)
    if frozen:  # freeze: the column says which blocks train
        columns += (("frozen", "left"),)
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)

    def add(block: BlockSummary, prefix: str, last: bool, level: int) -> None:
        branch = "" if level == 0 else ("└─ " if last else "├─ ")
        folded = max_depth is not None and level + 1 >= max_depth and block.children
        name = block.name.rpartition(".")[2] + (f" (+{plural(_count(block), 'block')})" if folded else "")
        field = "—" if block.receptive_field is None else str(block.receptive_field)
        what = block.description if not block.children and block.description else block.type
        cells = [prefix + branch + name, what, str(block.output_shape), f"{block.params:,}",
                 human(block.macs), str(block.depth), field]
        if frozen:
            cells.append("" if not block.frozen_params else "yes" if not block.trainable_params else "part")
        table.add_row(*cells)
        if folded:
            return
        inner = prefix + ("" if level == 0 else ("   " if last else "│  "))
        for index, child in enumerate(block.children):
            add(child, inner, index == len(block.children) - 1, level + 1)

    for block in summary.blocks:
        add(block, "", True, 0)
    totals = Table.grid(padding=(0, 2))
    totals.add_column(justify="left")
    totals.add_column(justify="right")
    totals.add_row("Total params", f"{summary.params_total:,}")
    totals.add_row("Trainable params", f"{summary.params_trainable:,}")
    totals.add_row("Non-trainable params", f"{summary.params_non_trainable:,}")
    totals.add_row("MACs", f"{summary.macs:,} ({human(summary.macs)})")
    totals.add_row("Depth (weight layers)", str(summary.depth))
    for latency in summary.latency:
        totals.add_row(f"Predicted latency ({latency['for']})", f"{latency['ms']:.1f} ms")
    if not summary.latency:
        totals.add_row("Predicted latency", "— (blockbuilder profile --calibrate makes this machine's table)")
    totals.add_row("Output", str(summary.output_shape))
    return Group(table, totals)


def _count(block: BlockSummary) -> int:
    return sum(1 + _count(child) for child in block.children)
