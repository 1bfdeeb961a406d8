"""Diagrams of the block hierarchy, straight from the YAML (no Keras, no weights).

Every block is a box with its name, what it is, its output shape and its parameters. A block is
opened up into its children down to ``depth`` levels below the network (the root is level 0), so
``depth=1`` shows the top-level blocks and ``depth=2`` their sub-blocks. Identical consecutive units
of a ``repeat`` are folded into one box marked ``×k``. Residual blocks show their body beside the
shortcut, joined at a merge; branches show their paths side by side; fractal blocks show their
columns. Boxes are laid out in inches and drawn with matplotlib (no graphviz binary needed).

Example:
    >>> arch = blockbuilder.load("resnet20_cifar")
    >>> draw(arch, "resnet20.svg", depth=2)
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockbuilder.blocks import Node
from blockbuilder.errors import CommandError
from blockbuilder.text import human

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.language.architecture import Architecture

FORMATS = (".svg", ".png", ".html")
BOX_W, BOX_H = 2.5, 0.66          # a block's box, in inches
GAP = 0.28                         # vertical space between boxes (holds an arrow)
PAD = 0.14                         # inside a frame
TITLE_H = 0.24                     # a frame's title line
COL_GAP = 0.3                      # between parallel columns
MERGE_R = 0.13                     # radius of a merge circle
SKIP_W = 0.32                      # room on the right of a folded residual for its skip arc
MAX_PIXELS = 30000                 # PNG side limit; the dpi shrinks for very tall diagrams
FONT = 7.5
LINE = "#4a4a4a"
#: Fill colour of a block's box by its colour class (``Block.colour``).
COLOURS = {
    "conv": "#cfe2f3", "dense": "#d9ead3", "pool": "#fce5cd", "regularise": "#ead1dc", "plain": "#eeeeee",
    "residual": "#fff2cc", "branch": "#d9d2e9", "fractal": "#d0e0e3", "combinator": "#fff2cc", "gate": "#f4cccc",
}
COMPOSITE = "#fff2cc"
PLAIN = "#f3f3f3"
FRAME = {"residual": "#fffaf0", "branch": "#f7f4fb", "fractal": "#f1f7f8"}
MERGE_SYMBOL = {"add": "+", "concat": "C", "mean": "μ"}


class DrawError(CommandError):
    """A diagram that cannot be written (unknown format, unwritable path)."""


# -- describing blocks -----------------------------------------------------------------------------


def subtree(node: Node[Any]) -> list[Node[Any]]:
    """The node and all its descendants, depth first."""
    found = [node]
    for child in node.all_children():
        found += subtree(child)
    return found


def total_params(node: Node[Any]) -> int:
    """Weights of a block and everything inside it, from shapes alone."""
    return sum(n.block.params(n) for n in subtree(node))


def total_macs(node: Node[Any]) -> int:
    """Multiply-accumulates of a block and everything inside it, from shapes alone."""
    return sum(n.block.macs(n) for n in subtree(node))



def shape_text(shape: tuple[int, ...]) -> str:
    """``(32, 32, 16)`` -> ``32×32×16``."""
    return "×".join(str(s) for s in shape) if shape else "?"


def describe(node: Node[Any]) -> str:
    """What a block does, in a few words: ``conv 3×3 /2, 64``, ``dense 10``, ``residual``."""
    return node.block.describe(node)


def title_of(node: Node[Any]) -> str:
    """The box title: the block's name, with a user-defined block's type when it differs."""
    name = node.name or node.label
    if node.label not in (node.type, name) and not name.startswith(node.label):
        return f"{name} ({node.label})"
    return name


# -- layout items: each knows its extent and draws itself with its entry on the axis x ----------------


@dataclass
class Item:
    """Something placed in the diagram.

    The item's entry is at ``(x, top)`` and its exit at ``(x, top + height)``; it reaches ``left`` inches
    to the left of that axis and ``right`` inches to the right.
    """

    left: float = BOX_W / 2
    right: float = BOX_W / 2
    height: float = BOX_H
    split: bool = False  # entry is a fork point: the incoming line carries no arrowhead

    @property
    def width(self) -> float:
        return self.left + self.right

    def draw(self, ax: Any, x: float, y: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Box(Item):
    """A block drawn as one box (a leaf, or a folded composite); ``count`` > 1 for folded repeats."""

    node: Node[Any] | None = None
    count: int = 1
    skip: str | None = None  # merge of a folded residual, drawn as an arc on the right

    def __post_init__(self) -> None:
        if self.skip:
            self.right, self.height, self.split = BOX_W / 2 + SKIP_W, BOX_H + 2 * GAP, True

    def draw(self, ax: Any, x: float, y: float) -> None:
        top = y + (GAP if self.skip else 0)
        if self.skip:
            _skip_arc(ax, x, y, top, self.skip)
        for shadow in range(min(self.count, 3) - 1, 0, -1):
            _rect(ax, x - BOX_W / 2 + 0.05 * shadow, top + 0.05 * shadow, BOX_W, BOX_H, _fill(self.node))
        _rect(ax, x - BOX_W / 2, top, BOX_W, BOX_H, _fill(self.node))
        _box_text(ax, x, top, self.node, self.count)


def _skip_arc(ax: Any, x: float, y: float, top: float, merge: str) -> None:
    right = x + BOX_W / 2 + SKIP_W * 0.7
    merge_y = top + BOX_H + GAP - MERGE_R
    _dot(ax, x, y)
    _arrow(ax, [(x, y), (x, top)])
    _arrow(ax, [(x, y), (right, y), (right, merge_y), (x + MERGE_R, merge_y)])
    _arrow(ax, [(x, top + BOX_H), (x, merge_y - MERGE_R)])
    _merge_mark(ax, x, merge_y, merge)


@dataclass
class Stack(Item):
    """Items one below the other, joined by arrows; with a ``title`` it is framed (an opened block)."""

    items: list[Item] = field(default_factory=list)
    title: str = ""
    subtitle: str = ""
    fill: str = "#fafafa"

    def __post_init__(self) -> None:
        frame = PAD if self.title else 0
        self.left = max((i.left for i in self.items), default=0.1) + frame
        self.right = max((i.right for i in self.items), default=0.1) + frame
        self.right = max(self.right, _text_width(self.title + "   " + self.subtitle) + 2 * frame - self.left)
        inner_h = sum(i.height for i in self.items) + GAP * max(len(self.items) - 1, 0)
        self.height = inner_h + (TITLE_H + GAP + PAD if self.title else 0)

    def draw(self, ax: Any, x: float, y: float) -> None:
        if self.title:
            self._draw_frame(ax, x, y)
            _arrow(ax, [(x, y), (x, y + TITLE_H + GAP)], head=bool(self.items) and not self.items[0].split)
            y += TITLE_H + GAP
        for index, item in enumerate(self.items):
            if index:
                _arrow(ax, [(x, y - GAP), (x, y)], head=not item.split)
            item.draw(ax, x, y)
            y += item.height + GAP
        if self.title:
            _arrow(ax, [(x, y - GAP), (x, y - GAP + PAD)], head=False)

    def _draw_frame(self, ax: Any, x: float, y: float) -> None:
        left = x - self.left
        _rect(ax, left, y, self.width, self.height, self.fill, dashed=True, z=0)
        ax.text(left + PAD, y + 0.13, self.title, fontsize=FONT, fontweight="bold", va="center", ha="left",
                color="#333333", zorder=4)
        ax.text(left + PAD + _text_width(self.title) + 0.12, y + 0.13, self.subtitle, fontsize=FONT - 1,
                va="center", ha="left", color="#777777", zorder=4)


def _text_width(text: str, size: float = FONT) -> float:
    """A generous estimate of a text's width in inches (average glyph of about 0.55 em)."""
    return 0.55 * size / 72 * len(text)


@dataclass
class Parallel(Item):
    """Columns side by side, forked at the entry and merged at the exit (residual, branch).

    With ``anchored`` the first column stays on the axis (a residual's body) and the others go to its
    right; otherwise the columns are centred. A column that is ``None`` is an identity path: a line.
    """

    columns: list[Item | None] = field(default_factory=list)
    merge: str = "concat"
    anchored: bool = False
    offsets: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        cursor, extents = 0.0, []
        for column in self.columns:
            left, right = (column.left, column.right) if column is not None else (0.15, 0.15)
            extents.append((cursor + left, left, right))
            cursor += left + right + COL_GAP
        shift = extents[0][0] if self.anchored else (cursor - COL_GAP) / 2
        self.offsets = [centre - shift for centre, _, _ in extents]
        self.left = -min(o - left for o, (_, left, _) in zip(self.offsets, extents))
        self.right = max(o + right for o, (_, _, right) in zip(self.offsets, extents))
        inner = max((c.height for c in self.columns if c is not None), default=0.0)
        self.height = GAP + inner + GAP + 2 * MERGE_R
        self.split = True

    def draw(self, ax: Any, x: float, y: float) -> None:
        merge_y = y + self.height - MERGE_R
        _dot(ax, x, y)
        for column, offset in zip(self.columns, self.offsets):
            cx = x + offset
            side = MERGE_R if offset > 0 else -MERGE_R
            if column is None:
                _arrow(ax, [(x, y), (cx, y), (cx, merge_y), (x + side, merge_y)])
                continue
            _arrow(ax, [(x, y), (cx, y), (cx, y + GAP)], head=not column.split)
            column.draw(ax, cx, y + GAP)
            bottom = y + GAP + column.height
            if abs(offset) < 1e-9:
                _arrow(ax, [(cx, bottom), (cx, merge_y - MERGE_R)])
            else:
                _arrow(ax, [(cx, bottom), (cx, merge_y), (x + side, merge_y)])
        _merge_mark(ax, x, merge_y, self.merge)


@dataclass
class FractalGrid(Item):
    """A fractal block: column ``c`` applies its unit every ``2**c`` rows; a bar joins active columns."""

    rows: list[list[tuple[int, Node[Any]]]] = field(default_factory=list)
    columns: int = 1

    def __post_init__(self) -> None:
        self.right = BOX_W / 2 + (self.columns - 1) * (BOX_W + COL_GAP) + 0.8
        self.height = len(self.rows) * (BOX_H + 2 * GAP)
        self.split = True

    def draw(self, ax: Any, x: float, y: float) -> None:
        _dot(ax, x, y)
        xs = [x + c * (BOX_W + COL_GAP) for c in range(self.columns)]
        _arrow(ax, [(xs[0], y), (xs[-1], y)], head=False)
        tops = [y] * self.columns
        for row, units in enumerate(self.rows):
            box_y = y + GAP + row * (BOX_H + 2 * GAP)
            for column, node in units:
                _arrow(ax, [(xs[column], tops[column]), (xs[column], box_y)])
                _rect(ax, xs[column] - BOX_W / 2, box_y, BOX_W, BOX_H, _fill(node))
                _box_text(ax, xs[column], box_y, node, 1)
                tops[column] = box_y + BOX_H
            if len(units) > 1:
                self._join(ax, xs, [c for c, _ in units], box_y + BOX_H + GAP * 0.6, tops)
        _arrow(ax, [(x, tops[0]), (x, y + self.height)], head=False)

    @staticmethod
    def _join(ax: Any, xs: list[float], active: list[int], join_y: float, tops: list[float]) -> None:
        for column in active:
            _arrow(ax, [(xs[column], tops[column]), (xs[column], join_y)], head=False)
            tops[column] = join_y
        ends = [xs[c] for c in active]
        ax.plot([min(ends), max(ends)], [join_y, join_y], color=LINE, linewidth=2.2, zorder=3)
        ax.text(max(ends) + 0.1, join_y, "join (mean)", fontsize=FONT - 1, va="center", color="#555555")


# -- building the layout from the block tree ----------------------------------------------------------


def layout(node: Node[Any], depth: int | None, level: int = 0) -> Item:
    """The item that draws ``node`` opened up to ``depth`` levels (``None``: all the way down)."""
    opened = bool(node.children) and (depth is None or level < depth)
    if not opened:
        return _leaf(node)
    builder = _OPENERS.get(node.block.colour, _open_sequence)
    return builder(node, depth, level)


def _leaf(node: Node[Any], count: int = 1) -> Box:
    skip = node.spec.merge if node.block.colour == "residual" else None
    return Box(node=node, count=count, skip=skip)


def _children_stack(nodes: Sequence[Node[Any]], depth: int | None, level: int, fold: bool = False) -> Stack:
    items: list[Item] = []
    for node, count in (_fold_runs(nodes) if fold else [(n, 1) for n in nodes]):
        item = layout(node, depth, level)
        if count > 1 and isinstance(item, Box):
            item = _leaf(node, count)
        elif count > 1:
            item = Stack(items=[item], title=f"× {count}", subtitle=f"{count} identical {node.label} units")
        items.append(item)
    return Stack(items=items)


def _fold_runs(nodes: Sequence[Node[Any]]) -> list[tuple[Node[Any], int]]:
    """Consecutive identical units (same type, shapes and parameters) as ``(first, count)``."""
    runs: list[tuple[Node[Any], int]] = []
    for node in nodes:
        if runs and _same_unit(runs[-1][0], node):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((node, 1))
    return runs


def _same_unit(a: Node[Any], b: Node[Any]) -> bool:
    return ((a.type, a.label, a.input_shape, a.output_shape, total_params(a))
            == (b.type, b.label, b.input_shape, b.output_shape, total_params(b)))


def _frame(node: Node[Any], items: list[Item]) -> Stack:
    subtitle = f"{describe(node)} · {shape_text(node.output_shape)} · {human(total_params(node), compact=True)} params"
    return Stack(items=items, title=title_of(node), subtitle=subtitle, fill=FRAME.get(node.type, "#fafafa"))


def _open_sequence(node: Node[Any], depth: int | None, level: int) -> Stack:
    nodes = node.all_children()
    inner = _children_stack(nodes, depth, level + 1, fold=node.type == "repeat")
    return _frame(node, inner.items)


def _open_residual(node: Node[Any], depth: int | None, level: int) -> Stack:
    pre = _children_stack(node.group("pre"), depth, level + 1).items
    after = _children_stack(node.group("after"), depth, level + 1).items
    body = _children_stack(node.group("body"), depth, level + 1)
    shortcut_nodes = node.group("shortcut")
    shortcut = _children_stack(shortcut_nodes, depth, level + 1) if shortcut_nodes else None
    merged = Parallel(columns=[body, shortcut], merge=node.spec.merge, anchored=True)
    return _frame(node, [*pre, merged, *after])


def _open_branch(node: Node[Any], depth: int | None, level: int) -> Stack:
    paths = _group_paths(node)
    columns: list[Item | None] = [_children_stack(path, depth, level + 1) for path in paths]
    return _frame(node, [Parallel(columns=columns, merge=node.spec.merge)])


def _group_paths(node: Node[Any]) -> list[list[Node[Any]]]:
    """A branch's children split back into its paths (each path's blocks share a ``pathN`` prefix)."""
    children = node.group("paths")
    groups: dict[str, list[Node[Any]]] = {}
    for child in children:
        rest = child.path[len(node.path) + 1:] if child.path.startswith(node.path + ".") else child.name
        groups.setdefault(rest.split(".", 1)[0] if "." in rest else rest, []).append(child)
    return list(groups.values()) if len(groups) > 1 or not children else [[c] for c in children]


def _open_fractal(node: Node[Any], depth: int | None, level: int) -> Stack:
    from blockbuilder.blocks.fractal import fractal_rows

    units = iter(node.group("body"))
    rows = [[(column, _unit(next(units))) for column in active] for active in fractal_rows(node.spec.columns)]
    return _frame(node, [FractalGrid(rows=rows, columns=node.spec.columns)])


def _unit(node: Node[Any]) -> Node[Any]:
    """A fractal unit: the block inside a one-block wrapper sequence."""
    inner = node.all_children()
    return inner[0] if node.type == "sequence" and len(inner) == 1 else node


_OPENERS: dict[str, Callable[[Node[Any], int | None, int], Item]] = {
    "residual": _open_residual, "branch": _open_branch, "fractal": _open_fractal,
}


# -- drawing primitives ---------------------------------------------------------------------------------


def _fill(node: Node[Any] | None) -> str:
    if node is None:
        return PLAIN
    return COLOURS.get(node.block.colour, COMPOSITE if node.children else PLAIN)


def _rect(ax: Any, x: float, y: float, w: float, h: float, fill: str, dashed: bool = False, z: int = 2) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.06", facecolor=fill,
                                edgecolor="#9a9a9a" if dashed else "#555555", linewidth=0.8,
                                linestyle=(0, (4, 3)) if dashed else "-", zorder=z))


def _box_text(ax: Any, x: float, y: float, node: Node[Any] | None, count: int) -> None:
    if node is None:
        return
    params = total_params(node)
    each = f"{count} × {human(params, compact=True)}" if count > 1 else human(params, compact=True)
    lines = [(title_of(node), "bold", FONT, "#111111"), (describe(node), "normal", FONT - 0.5, "#444444"),
             (f"{shape_text(node.output_shape)}  ·  {each} params", "normal", FONT - 0.5, "#444444")]
    for index, (text, weight, size, colour) in enumerate(lines):
        ax.text(x, y + 0.14 + index * 0.19, _clip(text, 40), ha="center", va="center", fontsize=size,
                fontweight=weight, color=colour, zorder=5)
    if count > 1:
        ax.text(x + BOX_W / 2 - 0.08, y + 0.14, f"×{count}", ha="right", va="center", fontsize=FONT + 1,
                fontweight="bold", color="#b45f06", zorder=5)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _arrow(ax: Any, points: list[tuple[float, float]], head: bool = True) -> None:
    xs, ys = zip(*points)
    ax.plot(xs[:-1] if head else xs, ys[:-1] if head else ys, color=LINE, linewidth=0.9, zorder=1,
            solid_capstyle="butt")
    if head:
        ax.annotate("", xy=points[-1], xytext=points[-2], zorder=1,
                    arrowprops={"arrowstyle": "-|>,head_length=0.35,head_width=0.18", "color": LINE,
                                "linewidth": 0.9, "shrinkA": 0, "shrinkB": 0})


def _dot(ax: Any, x: float, y: float) -> None:
    ax.plot([x], [y], marker="o", markersize=2.5, color=LINE, zorder=3)


def _merge_mark(ax: Any, x: float, y: float, merge: str) -> None:
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), MERGE_R, facecolor="white", edgecolor=LINE, linewidth=0.9, zorder=4))
    ax.text(x, y, MERGE_SYMBOL.get(merge, merge[:1]), ha="center", va="center", fontsize=FONT + 1,
            fontweight="bold", color="#333333", zorder=5)


# -- the figure -----------------------------------------------------------------------------------------


def figure(arch: Architecture, depth: int | None = None) -> Any:
    """A matplotlib ``Figure`` of the architecture, one data unit per inch."""
    from matplotlib.figure import Figure

    root = arch.root
    body = _children_stack(root.all_children(), depth, 1, fold=False) if root.children else Stack(items=[_leaf(root)])
    header, margin = 0.75, 0.3
    input_h = 0.3
    left = max(body.left, 1.0)
    width = max(left + body.right, _text_width(arch.name, 13) + 3.0) + 2 * margin
    height = header + input_h + GAP + body.height + input_h + GAP + margin
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    _header(ax, arch, margin, depth)
    x, y = margin + left, header
    _pill(ax, x, y, f"input {shape_text(arch.input_shape)}")
    _arrow(ax, [(x, y + input_h), (x, y + input_h + GAP)], head=not (body.items and body.items[0].split))
    body.draw(ax, x, y + input_h + GAP)
    bottom = y + input_h + GAP + body.height
    _arrow(ax, [(x, bottom), (x, bottom + GAP)])
    _pill(ax, x, bottom + GAP, f"output {shape_text(arch.output_shape)}")
    return fig


def _header(ax: Any, arch: Architecture, margin: float, depth: int | None) -> None:
    params, macs = total_params(arch.root), total_macs(arch.root)
    folded = f" · blocks opened to depth {depth}" if depth else ""
    ax.text(margin, 0.25, arch.name, fontsize=13, fontweight="bold", va="center", ha="left", color="#111111")
    figures = f"{human(params, compact=True)} params · {human(macs, compact=True)} MACs"
    ax.text(margin, 0.52, f"depth {arch.depth} · {figures}{folded}",
            fontsize=FONT + 0.5, va="center", ha="left", color="#555555")


def _pill(ax: Any, x: float, y: float, text: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - 0.9, y), 1.8, 0.3, boxstyle="round,pad=0,rounding_size=0.15",
                                facecolor="#444444", edgecolor="#444444", zorder=2))
    ax.text(x, y + 0.15, text, ha="center", va="center", fontsize=FONT, color="white", fontweight="bold", zorder=5)


def render(arch: Architecture, fmt: str, depth: int | None = None) -> bytes:
    """The diagram as ``svg``, ``png`` or ``html`` bytes."""
    import matplotlib

    fig = figure(arch, depth)
    if fmt == "html":
        return _html(arch, render(arch, "svg", depth).decode("utf-8"), depth).encode("utf-8")
    buffer = io.BytesIO()
    width, height = fig.get_size_inches()
    dpi = min(110.0, MAX_PIXELS / max(width, height))
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "blockbuilder"}):
        fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white", metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    # No creation date, so that the same YAML gives the same file.
    return {"Date": None} if fmt == "svg" else {}


def _html(arch: Architecture, svg: str, depth: int | None) -> str:
    svg = svg[svg.index("<svg"):]
    title = html.escape(arch.name)
    folded = f" (depth {depth})" if depth else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title} — blockbuilder diagram</title>"
            "<style>body{font-family:sans-serif;margin:2em;background:#fff;color:#222}"
            "svg{max-width:100%;height:auto}</style></head>\n"
            f"<body><h1>{title}{folded}</h1>\n{svg}\n</body></html>\n")


def draw(arch: Architecture, output: str | Path, depth: int | None = None) -> Path:
    """Write the diagram of ``arch`` to ``output`` (``.svg``, ``.png`` or ``.html``, picked by suffix).

    Args:
        arch: A loaded architecture (``blockbuilder.load``); nothing is built.
        output: Where to write; the suffix picks the format.
        depth: Open blocks down to this level below the network (``None``: all levels).

    Returns:
        The path written.

    Raises:
        DrawError: The suffix is not one of ``.svg``, ``.png``, ``.html`` or the file cannot be written.
    """
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DrawError(f"cannot tell the format of '{path}': use a name ending in {', '.join(FORMATS)}")
    data = render(arch, suffix[1:], depth)
    from blockbuilder.files import atomic_path

    with atomic_path(path) as temporary:  # a CommandError "cannot write PATH: reason" when it cannot
        Path(temporary).write_bytes(data)
    return path
