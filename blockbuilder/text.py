"""How numbers are written for people: one formatter for tables, charts and diagrams."""

from __future__ import annotations


def human(number: float, *, compact: bool = False) -> str:
    """``25636712`` -> ``25.64 M`` (``25.6M`` when ``compact``, for a diagram box); small numbers stay whole."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.3g}{unit}" if compact else f"{number / size:.2f} {unit}"
    return str(int(number))
