"""The items a block diagram is laid out from: each knows its extent and draws itself.

A ``Box`` is one block (a leaf, or a folded composite), a ``Stack`` items one below the other (framed when
it is an opened block), ``Parallel`` columns forked and merged (residual, branch), a ``FractalGrid`` a
fractal block's columns. ``blockbuilder.report.diagram_layout`` builds them from the block tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.report.diagram_marks import (
    BOX_H,
    BOX_W,
    COL_GAP,
    FONT,
    GAP,
    LINE,
    MERGE_R,
    PAD,
    SKIP_W,
    TITLE_H,
    arrow,
    box_text,
    dot,
    fill_for,
    merge_mark,
    rect,
    text_width,
)


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
            rect(ax, x - BOX_W / 2 + 0.05 * shadow, top + 0.05 * shadow, BOX_W, BOX_H, fill_for(self.node))
        rect(ax, x - BOX_W / 2, top, BOX_W, BOX_H, fill_for(self.node))
        box_text(ax, x, top, self.node, self.count)


def _skip_arc(ax: Any, x: float, y: float, top: float, merge: str) -> None:
    right = x + BOX_W / 2 + SKIP_W * 0.7
    merge_y = top + BOX_H + GAP - MERGE_R
    dot(ax, x, y)
    arrow(ax, [(x, y), (x, top)])
    arrow(ax, [(x, y), (right, y), (right, merge_y), (x + MERGE_R, merge_y)])
    arrow(ax, [(x, top + BOX_H), (x, merge_y - MERGE_R)])
    merge_mark(ax, x, merge_y, merge)


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
        self.right = max(self.right, text_width(self.title + "   " + self.subtitle) + 2 * frame - self.left)
        inner_h = sum(i.height for i in self.items) + GAP * max(len(self.items) - 1, 0)
        self.height = inner_h + (TITLE_H + GAP + PAD if self.title else 0)

    def draw(self, ax: Any, x: float, y: float) -> None:
        if self.title:
            self._draw_frame(ax, x, y)
            arrow(ax, [(x, y), (x, y + TITLE_H + GAP)], head=bool(self.items) and not self.items[0].split)
            y += TITLE_H + GAP
        for index, item in enumerate(self.items):
            if index:
                arrow(ax, [(x, y - GAP), (x, y)], head=not item.split)
            item.draw(ax, x, y)
            y += item.height + GAP
        if self.title:
            arrow(ax, [(x, y - GAP), (x, y - GAP + PAD)], head=False)

    def _draw_frame(self, ax: Any, x: float, y: float) -> None:
        left = x - self.left
        rect(ax, left, y, self.width, self.height, self.fill, dashed=True, z=0)
        ax.text(left + PAD, y + 0.13, self.title, fontsize=FONT, fontweight="bold", va="center", ha="left",
                color="#333333", zorder=4)
        ax.text(left + PAD + text_width(self.title) + 0.12, y + 0.13, self.subtitle, fontsize=FONT - 1,
                va="center", ha="left", color="#777777", zorder=4)


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
        dot(ax, x, y)
        for column, offset in zip(self.columns, self.offsets):
            cx = x + offset
            side = MERGE_R if offset > 0 else -MERGE_R
            if column is None:
                arrow(ax, [(x, y), (cx, y), (cx, merge_y), (x + side, merge_y)])
                continue
            arrow(ax, [(x, y), (cx, y), (cx, y + GAP)], head=not column.split)
            column.draw(ax, cx, y + GAP)
            bottom = y + GAP + column.height
            if abs(offset) < 1e-9:
                arrow(ax, [(cx, bottom), (cx, merge_y - MERGE_R)])
            else:
                arrow(ax, [(cx, bottom), (cx, merge_y), (x + side, merge_y)])
        merge_mark(ax, x, merge_y, self.merge)


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
        dot(ax, x, y)
        xs = [x + c * (BOX_W + COL_GAP) for c in range(self.columns)]
        arrow(ax, [(xs[0], y), (xs[-1], y)], head=False)
        tops = [y] * self.columns
        for row, units in enumerate(self.rows):
            box_y = y + GAP + row * (BOX_H + 2 * GAP)
            for column, node in units:
                arrow(ax, [(xs[column], tops[column]), (xs[column], box_y)])
                rect(ax, xs[column] - BOX_W / 2, box_y, BOX_W, BOX_H, fill_for(node))
                box_text(ax, xs[column], box_y, node, 1)
                tops[column] = box_y + BOX_H
            if len(units) > 1:
                self._join(ax, xs, [c for c, _ in units], box_y + BOX_H + GAP * 0.6, tops)
        arrow(ax, [(x, tops[0]), (x, y + self.height)], head=False)

    @staticmethod
    def _join(ax: Any, xs: list[float], active: list[int], join_y: float, tops: list[float]) -> None:
        for column in active:
            arrow(ax, [(xs[column], tops[column]), (xs[column], join_y)], head=False)
            tops[column] = join_y
        ends = [xs[c] for c in active]
        ax.plot([min(ends), max(ends)], [join_y, join_y], color=LINE, linewidth=2.2, zorder=3)
        ax.text(max(ends) + 0.1, join_y, "join (mean)", fontsize=FONT - 1, va="center", color="#555555")
