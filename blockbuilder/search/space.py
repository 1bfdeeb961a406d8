"""The checked ``search:`` section: each searched value (:class:`Dimension`) and the whole (:class:`Space`).

```yaml
search:
  space:                                    # a --set path -> the values it takes
    variables.filters: {choice: [4, 8, 16]}
    variables.units: {int: [16, 64], step: 16}
    train.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
  objective: accuracy                       # or [accuracy, macs]: a Pareto front (NSGA-II)
  sampler: tpe                              # tpe, random, grid, nsga2
  pruner: median                            # median, hyperband, none (one objective only)
  budget: {max_macs: 200000}                # max_params, max_macs, max_activation_memory (bytes)
  epochs: 1                                 # per trial (default: train.epochs)
  trials: 6                                 # default of --trials
```

A trial is the document with one value per path applied as ``--set PATH=VALUE`` overrides, so every
trial goes through the same checks as a file. :mod:`~blockbuilder.search.section` reads the section into
a :class:`Space`. This module imports neither Optuna nor TensorFlow.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]

from blockbuilder.errors import Location
from blockbuilder.language.document import dump, load_text
from blockbuilder.language.resolve import plain
from blockbuilder.search.budgets import Budget

__all__ = [
    "KINDS",
    "OBJECTIVES",
    "PRUNERS",
    "SAMPLERS",
    "Dimension",
    "Space",
    "choice_value",
    "value_text",
]

KINDS = ("choice", "int", "float")
OBJECTIVES = ("accuracy", "macs", "params", "latency_ms")
SAMPLERS = ("tpe", "random", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "none")


def value_text(value: Any) -> str:
    """``value`` as the YAML text of a ``--set`` override that reads back as the same value.

    ``yaml.safe_dump`` quotes what YAML would otherwise read as something else (``'yes'``, ``'1e3'``) and
    writes floats with a dot (``1.0e-05``), which PyYAML needs to read them as numbers. A value read from
    a file (its mappings and lists know their lines) is written as the plain value it is.
    """
    text = dump(plain(value), default_flow_style=True, width=1_000_000_000, allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def choice_value(text: str) -> Any:
    """The value a choice's text stands for: plain numbers, text, lists and mappings (an override of it
    is written back with :func:`value_text`)."""
    return plain(load_text(text))


@dataclass(frozen=True)
class Dimension:
    """One searched value: a ``--set`` path and the values it takes.

    Attributes:
        path: Where the value goes, e.g. ``variables.filters`` or ``train.optimizer.learning_rate``.
        kind: ``choice``, ``int`` or ``float``.
        low / high: The bounds of a range (both included).
        step: The step of a range (``None``: any float).
        log: Sample a range uniformly in log space.
        choices: A choice's values, each as the YAML text of its override.
        loc: Where the dimension is written; ``choice_locs``: where each of a choice's values is.
    """

    path: str
    kind: str
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()
    loc: Location | None = None
    choice_locs: tuple[Location | None, ...] = ()

    @property
    def is_training(self) -> bool:
        """Whether the value is a training setting (it changes no parameter, MAC or activation)."""
        return self.path == "train" or self.path.startswith(("train.", "train["))

    @property
    def size(self) -> int | None:
        """How many values it takes; ``None`` when continuous."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int":
            return int((self.high - self.low) // (self.step or 1)) + 1
        if self.low == self.high:
            return 1
        return None if self.step is None else round((self.high - self.low) / self.step) + 1

    def values(self) -> list[Any]:
        """Every value, in order (only when :attr:`size` is not ``None``)."""
        count = self.size
        assert count is not None, self.path
        if self.kind == "choice":
            return [choice_value(text) for text in self.choices]
        if self.kind == "int":
            return [int(self.low) + i * int(self.step or 1) for i in range(count)]
        return [self.low + i * (self.step or 0.0) for i in range(count)]

    def random_value(self, rng: random.Random) -> Any:
        """A value drawn uniformly (in log space for ``log``), for exploring the family."""
        count = self.size
        if count is not None and not self.log:
            index = rng.randrange(count)
            return self.values()[index] if self.kind == "choice" or count <= 4096 else self._nth(index)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return int(round(value)) if self.kind == "int" else value
        return rng.uniform(self.low, self.high)

    def _nth(self, index: int) -> Any:
        value = self.low + index * (self.step or 1)
        return int(value) if self.kind == "int" else value

    def corners(self) -> tuple[Any, Any]:
        """The first and the last value."""
        if self.kind == "choice":
            return choice_value(self.choices[0]), choice_value(self.choices[-1])
        if self.kind == "int":
            return int(self.low), int(self.high)
        return self.low, self.high

    def override(self, value: Any) -> str:
        """The ``--set`` override that applies ``value`` (a choice's text, or a number)."""
        if self.kind == "choice" and isinstance(value, str) and value in self.choices:
            return f"{self.path}={value}"
        return f"{self.path}={value_text(value)}"

    def shown(self, value: Any) -> str:
        """``value`` as a table shows it."""
        if self.kind == "choice" and isinstance(value, str) and value in self.choices:
            return value
        if isinstance(value, float):
            return f"{value:.4g}"
        return value_text(value)

    def describe(self) -> str:
        """``choice [4, 8, 16]``, ``int 16..64 step 16``, ``float 0.0001..0.01 log``."""
        if self.kind == "choice":
            return f"choice [{', '.join(self.choices)}]"
        low, high = (f"{v:g}" for v in (self.low, self.high))
        step = f" step {self.step:g}" if self.step not in (None, 1) else ""
        return f"{self.kind} {low}..{high}{step}{' log' if self.log else ''}"

    def distribution(self) -> Any:
        """The Optuna distribution (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class Space:
    """The checked ``search:`` section.

    Attributes:
        dimensions: The searched values, in the order written.
        objectives: ``("accuracy",)``, or ``("accuracy", "macs")`` and the like for a Pareto front.
        sampler: ``tpe``, ``random``, ``grid`` or ``nsga2``.
        pruner: ``median``, ``hyperband`` or ``none`` (always ``none`` with several objectives).
        budget: What a trial may cost.
        epochs: Epochs per trial (``None``: the ``train:`` section's).
        trials: How many trials when ``--trials`` is not given.
        seed: The sampler's seed (``None``: a fresh one per worker).
        latency_batch: The batch size of the latency table that ``max_latency_ms`` and the ``latency_ms``
            objective use (``None``: the newest inference table made on this machine).
        loc: Where the section is written; ``locs`` holds each key's location.
    """

    dimensions: tuple[Dimension, ...]
    objectives: tuple[str, ...] = ("accuracy",)
    sampler: str = "tpe"
    pruner: str = "median"
    budget: Budget = field(default_factory=Budget)
    epochs: int | None = None
    trials: int | None = None
    seed: int | None = None
    latency_batch: int | None = None
    loc: Location | None = None
    locs: dict[str, Location | None] = field(default_factory=dict)

    @property
    def uses_latency(self) -> bool:
        return "latency_ms" in self.objectives or self.budget.max_latency_ms is not None

    @functools.cached_property
    def latency_table(self) -> Any:
        """This machine's inference table the search predicts latency with (``None`` when it uses none)."""
        if not self.uses_latency:
            return None
        from blockbuilder.report import latency

        tables = [t for t in latency.tables_here() if latency.describe(t).startswith("inference,")
                  and (self.latency_batch is None or t.batch_size == self.latency_batch)]
        return tables[0] if tables else None

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def architecture_dimensions(self) -> tuple[Dimension, ...]:
        return tuple(d for d in self.dimensions if not d.is_training)

    @property
    def size(self) -> int | None:
        """How many different trials there are; ``None`` when a value is continuous."""
        sizes = [d.size for d in self.dimensions]
        return None if None in sizes else math.prod(s for s in sizes if s is not None)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two searches the same study (stored with it, compared on resume)."""
        return {"objectives": list(self.objectives),
                "space": {d.path: d.describe() for d in self.dimensions}}
