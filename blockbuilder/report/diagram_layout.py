"""From the block tree to diagram items: a block is opened up into its children down to ``depth`` levels.

Identical consecutive units of a ``repeat`` are folded into one box marked ``×k``; residual blocks show
their body beside the shortcut, branches their paths side by side, fractal blocks their columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.report.diagram_items import Box, FractalGrid, Item, Parallel, Stack
from blockbuilder.report.diagram_marks import FRAME, describe, shape_text, title_of, total_params
from blockbuilder.text import human


def layout(node: Node[Any], depth: int | None, level: int = 0) -> Item:
    """The item that draws ``node`` opened up to ``depth`` levels (``None``: all the way down)."""
    opened = bool(node.children) and (depth is None or level < depth)
    if not opened:
        return leaf(node)
    builder = _OPENERS.get(node.block.colour, _open_sequence)
    return builder(node, depth, level)


def leaf(node: Node[Any], count: int = 1) -> Box:
    """A block as one box (``count`` > 1: a folded run); a residual's merge as its skip arc."""
    skip = node.spec.merge if node.block.colour == "residual" else None
    return Box(node=node, count=count, skip=skip)


def children_stack(nodes: Sequence[Node[Any]], depth: int | None, level: int, fold: bool = False) -> Stack:
    """Blocks one below the other, each opened up to ``depth``; with ``fold``, identical runs as one item."""
    items: list[Item] = []
    for node, count in (_fold_runs(nodes) if fold else [(n, 1) for n in nodes]):
        item = layout(node, depth, level)
        if count > 1 and isinstance(item, Box):
            item = leaf(node, count)
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
    inner = children_stack(nodes, depth, level + 1, fold=node.type == "repeat")
    return _frame(node, inner.items)


def _open_residual(node: Node[Any], depth: int | None, level: int) -> Stack:
    pre = children_stack(node.group("pre"), depth, level + 1).items
    after = children_stack(node.group("after"), depth, level + 1).items
    body = children_stack(node.group("body"), depth, level + 1)
    shortcut_nodes = node.group("shortcut")
    shortcut = children_stack(shortcut_nodes, depth, level + 1) if shortcut_nodes else None
    merged = Parallel(columns=[body, shortcut], merge=node.spec.merge, anchored=True)
    return _frame(node, [*pre, merged, *after])


def _open_branch(node: Node[Any], depth: int | None, level: int) -> Stack:
    paths = _group_paths(node)
    columns: list[Item | None] = [children_stack(path, depth, level + 1) for path in paths]
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
