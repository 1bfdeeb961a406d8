"""Diagrams of the block hierarchy, straight from the YAML (no Keras, no weights).

Every block is a box with its name, what it is, its output shape and its parameters. A block is
opened up into its children down to ``depth`` levels below the network (the root is level 0), so
``depth=1`` shows the top-level blocks and ``depth=2`` their sub-blocks. Identical consecutive units
of a ``repeat`` are folded into one box marked ``×k``. Residual blocks show their body beside the
shortcut, joined at a merge; branches show their paths side by side; fractal blocks show their
columns. Boxes are laid out in inches and drawn with matplotlib (no graphviz binary needed).

This module makes the figure and writes the file; the tree becomes items in
``blockbuilder.report.diagram_layout``, the items (``diagram_items``) draw themselves with the marks of
``diagram_marks``.

Example:
    >>> arch = blockbuilder.load("resnet20_cifar")
    >>> draw(arch, "resnet20.svg", depth=2)
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockbuilder.errors import CommandError
from blockbuilder.report.diagram_items import Stack
from blockbuilder.report.diagram_layout import children_stack, leaf
from blockbuilder.report.diagram_marks import FONT, GAP, arrow, shape_text, text_width, total_macs, total_params
from blockbuilder.text import human

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.language.architecture import Architecture

FORMATS = (".svg", ".png", ".html")
MAX_PIXELS = 30000                 # PNG side limit; the dpi shrinks for very tall diagrams


class DrawError(CommandError):
    """A diagram that cannot be written (unknown format, unwritable path)."""


def figure(arch: Architecture, depth: int | None = None) -> Any:
    """A matplotlib ``Figure`` of the architecture, one data unit per inch."""
    from matplotlib.figure import Figure

    root = arch.root
    body = children_stack(root.all_children(), depth, 1, fold=False) if root.children else Stack(items=[leaf(root)])
    header, margin = 0.75, 0.3
    input_h = 0.3
    left = max(body.left, 1.0)
    width = max(left + body.right, text_width(arch.name, 13) + 3.0) + 2 * margin
    height = header + input_h + GAP + body.height + input_h + GAP + margin
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    _header(ax, arch, margin, depth)
    x, y = margin + left, header
    _pill(ax, x, y, f"input {shape_text(arch.input_shape)}")
    arrow(ax, [(x, y + input_h), (x, y + input_h + GAP)], head=not (body.items and body.items[0].split))
    body.draw(ax, x, y + input_h + GAP)
    bottom = y + input_h + GAP + body.height
    arrow(ax, [(x, bottom), (x, bottom + GAP)])
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
