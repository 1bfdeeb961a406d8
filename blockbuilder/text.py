"""How numbers are written for people: one formatter for tables, charts, diagrams and messages."""

from __future__ import annotations

from collections.abc import Sequence


def human(number: float, *, compact: bool = False) -> str:
    """``25636712`` -> ``25.64 M`` (``25.6M`` when ``compact``, for a diagram box); small numbers stay whole."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.3g}{unit}" if compact else f"{number / size:.2f} {unit}"
    return str(int(number))


def plural(count: int, noun: str) -> str:
    """A count and its noun, singular for one: ``1 epoch``, ``3 epochs``, ``1,797 images``, ``2 classes``.

    Args:
        count: How many.
        noun: The singular noun (``epoch``, ``class name``); it takes ``s``, or ``es`` after s, x, sh, tch
            (``batches``, but ``epochs``).
    """
    if count == 1:
        return f"1 {noun}"
    ending = "es" if noun.endswith(("s", "x", "sh", "tch")) else "s"
    return f"{count:,} {noun}{ending}"


def listed(names: Sequence[str], most: int = 5) -> str:
    """Names for a message, the first ``most`` of many: ``a, b, c, d, e and 2 more``."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"
