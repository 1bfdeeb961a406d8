"""What ``blockbuilder profile --calibrate`` times besides the hand-picked variants of the common blocks
(:data:`blockbuilder.report.latency.KEEPING`, ``CHANGING``): an instance of every registered block type.

A type's instance is made from its spec: the arguments it requires are filled by name (:data:`FILL`:
``filters`` and ``units`` the grid's width, ``function: relu``, ``rate: 0.1`` ...), the optional ones keep
their defaults, and a block list holds ``identity`` (a ``paths`` list two of them), so the block's own
layers (a residual's add, a branch's concat) are what is timed. A block type registered later (a plugin's,
a test's) is calibrated without editing this module; one whose required argument has no filling is
left out, and predicted by the fit over every type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blockbuilder.blocks import block_names, get_block

#: Required arguments, by name, as a function of the grid's width ``c``.
FILL: dict[str, Callable[[int], Any]] = {
    "filters": lambda c: c, "units": lambda c: c, "channels": lambda c: 2 * c, "groups": lambda c: 2,
    "function": lambda c: "relu", "rate": lambda c: 0.1, "cropping": lambda c: 1, "padding": lambda c: 1,
    "mean": lambda c: 0.0, "variance": lambda c: 1.0, "scale": lambda c: 1.0, "by": lambda c: "concat",
    "columns": lambda c: 2, "times": lambda c: 2,
}


def instances(channels: int) -> list[str]:
    """An instance of every registered type that has one, at width ``channels``."""
    return [made for made in (instance(name, channels) for name in block_names()) if made is not None]


def instance(name: str, channels: int) -> str | None:
    """A YAML flow entry of block type ``name`` at width ``channels``, or ``None`` when its spec asks for
    an argument :data:`FILL` does not know."""
    block = get_block(name)
    assert block is not None, name
    args: list[str] = []
    for key, info in block.Spec.model_fields.items():
        if info.is_required():
            if key not in FILL:
                return None
            args.append(f"{key}: {FILL[key](channels)!r}".replace("'", ""))
    for index, key in enumerate(block.block_fields):
        if key == "paths":
            args.append(f"{key}: [[identity], [identity]]")
        elif index == 0 or key == "body":
            args.append(f"{key}: [identity]")
    return f"{name}: {{{', '.join(args)}}}"
