"""What a member of a family costs, counted from its specs (no TensorFlow), and the budget it must fit.

A trial over budget is pruned before it is built or trained: its parameters and multiply-accumulates
come from :func:`blockbuilder.report.summary.estimate`, its activation memory from the inferred shapes,
its latency from this machine's latency table (:mod:`blockbuilder.report.latency`, made by
``blockbuilder profile ARCH --calibrate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from blockbuilder.text import human

__all__ = ["BUDGET_KEYS", "BYTES_PER_VALUE", "Budget", "Figures", "activation_memory", "measure"]

BUDGET_KEYS = ("max_params", "max_macs", "max_activation_memory", "max_latency_ms")
BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class Figures:
    """The cost of one architecture.

    Attributes:
        params: Weights, as ``model.count_params()`` would count them.
        macs: Multiply-accumulates of one forward pass of one image.
        activation_memory: Bytes of every block's output for one image in float32 (what training keeps
            for the backward pass), the input included.
        latency_ms: Milliseconds per batch predicted by the search's latency table (``None`` without one).
    """

    params: int
    macs: int
    activation_memory: int
    latency_ms: float | None = None


def activation_memory(architecture: Any) -> int:
    """Bytes of the input and of every leaf block's output for one image, at 4 bytes a value."""
    values = math.prod(architecture.input_shape)
    stack = [architecture.root]
    while stack:
        node = stack.pop()
        children = node.all_children()
        if children:
            stack.extend(children)
        else:
            values += math.prod(node.output_shape)
    return int(values) * BYTES_PER_VALUE


def measure(architecture: Any, latency: Any = None) -> Figures:
    """Parameters, MACs, activation memory and (under the latency table ``latency``) predicted
    milliseconds of a loaded architecture, without building it."""
    from blockbuilder.report.summary import estimate

    params, macs = estimate(architecture)
    predicted = None if latency is None else round(float(latency.predict(architecture.root)), 4)
    return Figures(int(params), int(macs), activation_memory(architecture), predicted)


@dataclass(frozen=True)
class Budget:
    """Upper limits a trial must fit before it is built; ``None`` is no limit."""

    max_params: int | None = None
    max_macs: int | None = None
    max_activation_memory: int | None = None
    max_latency_ms: float | None = None

    def with_limits(self, **limits: int | None) -> Budget:
        """This budget with the limits given (``None`` values keep the current limit)."""
        return replace(self, **{key: value for key, value in limits.items() if value is not None})

    @property
    def limits(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return {key: value for key in BUDGET_KEYS if (value := getattr(self, key)) is not None}

    def check(self, figures: Figures) -> str | None:
        """``None`` when ``figures`` fit, else the reason, e.g. ``macs 310,200 > max_macs 200,000``."""
        for key, limit in self.limits.items():
            value = getattr(figures, key.removeprefix("max_"))
            if value is not None and value > limit:
                if key == "max_latency_ms":
                    return f"latency {value:.2f} ms > {key} {limit:g}"
                return f"{key.removeprefix('max_')} {value:,} > {key} {limit:,}"
        return None

    def describe(self) -> str:
        """``max_macs 200 K, max_params 50.00 K`` (or ``none``)."""
        return ", ".join(f"{key} {value:g}" if key == "max_latency_ms" else f"{key} {human(value)}"
                         for key, value in self.limits.items()) or "none"
