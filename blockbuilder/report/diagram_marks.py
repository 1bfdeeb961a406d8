"""The marks a block diagram is made of: boxes, arrows, merge circles, their sizes and colours, and the
words written in a box (a block's title, what it does, its output shape and parameters, from shapes alone).

Sizes are in inches (the figure has one data unit per inch); matplotlib is imported only when a mark is
drawn.
"""

from __future__ import annotations

from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.blocks.merge import source_names
from blockbuilder.text import human

BOX_W, BOX_H = 2.5, 0.66          # a block's box, in inches
GAP = 0.28                         # vertical space between boxes (holds an arrow)
PAD = 0.14                         # inside a frame
TITLE_H = 0.24                     # a frame's title line
COL_GAP = 0.3                      # between parallel columns
MERGE_R = 0.13                     # radius of a merge circle
SKIP_W = 0.32                      # room on the right of a folded residual for its skip arc
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
    """What a block does, in a few words: ``conv 3×3 /2, 64``, ``dense 10``, ``residual``; then what it reads
    when not the block before it (``merge: add ← h, q``)."""
    text = node.block.describe(node)
    return f"{text} ← {', '.join(source_names(node))}" if node.sources else text


def title_of(node: Node[Any]) -> str:
    """The box title: the block's name, with a user-defined block's type when it differs."""
    name = node.name or node.label
    if node.label not in (node.type, name) and not name.startswith(node.label):
        return f"{name} ({node.label})"
    return name


# -- drawing primitives ---------------------------------------------------------------------------


def fill_for(node: Node[Any] | None) -> str:
    """The fill colour of a block's box, by its colour class (``COLOURS``)."""
    if node is None:
        return PLAIN
    return COLOURS.get(node.block.colour, COMPOSITE if node.children else PLAIN)


def rect(ax: Any, x: float, y: float, w: float, h: float, fill: str, dashed: bool = False, z: int = 2) -> None:
    """A rounded box with its top-left corner at ``(x, y)``; ``dashed`` for the frame of an opened block."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.06", facecolor=fill,
                                edgecolor="#9a9a9a" if dashed else "#555555", linewidth=0.8,
                                linestyle=(0, (4, 3)) if dashed else "-", zorder=z))


def box_text(ax: Any, x: float, y: float, node: Node[Any] | None, count: int) -> None:
    """The three lines of a block's box (title, what it does, shape and parameters), and ``×count`` when folded."""
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


def arrow(ax: Any, points: list[tuple[float, float]], head: bool = True) -> None:
    """A line through ``points``, with an arrowhead at the last one unless ``head`` is false."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1] if head else xs, ys[:-1] if head else ys, color=LINE, linewidth=0.9, zorder=1,
            solid_capstyle="butt")
    if head:
        ax.annotate("", xy=points[-1], xytext=points[-2], zorder=1,
                    arrowprops={"arrowstyle": "-|>,head_length=0.35,head_width=0.18", "color": LINE,
                                "linewidth": 0.9, "shrinkA": 0, "shrinkB": 0})


def dot(ax: Any, x: float, y: float) -> None:
    """A fork point."""
    ax.plot([x], [y], marker="o", markersize=2.5, color=LINE, zorder=3)


def merge_mark(ax: Any, x: float, y: float, merge: str) -> None:
    """A merge circle marked with its mode (``+`` add, ``C`` concat, ``μ`` mean)."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), MERGE_R, facecolor="white", edgecolor=LINE, linewidth=0.9, zorder=4))
    ax.text(x, y, MERGE_SYMBOL.get(merge, merge[:1]), ha="center", va="center", fontsize=FONT + 1,
            fontweight="bold", color="#333333", zorder=5)


def text_width(text: str, size: float = FONT) -> float:
    """A generous estimate of a text's width in inches (average glyph of about 0.55 em)."""
    return 0.55 * size / 72 * len(text)
