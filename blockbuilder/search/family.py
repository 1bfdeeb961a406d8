"""The family a search space spans: its members loaded and measured, and the checks that some fit.

A member is the file with one trial's architecture values applied (training settings change no
parameter, MAC or activation). Loading members tells, before any trial trains and without TensorFlow,
whether any of them is valid, whether any fits the budget, and how many different trials there are.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from blockbuilder.errors import SpecError, UsageError
from blockbuilder.language.budgets import Limits
from blockbuilder.search.budgets import Budget, Figures, measure
from blockbuilder.search.space import Dimension, Space, value_text
from blockbuilder.text import plural

__all__ = ["Family", "check_capacity", "check_family", "explore_family"]

FAMILY_LIMIT = 200  # members loaded to find the family's range (all of them when there are no more)
FAMILY_SECONDS = 2.0  # ... or fewer when loading them takes longer than this


@dataclass
class Family:
    """What loading members of the family (architecture values only) found.

    Attributes:
        total: How many members there are (``None``: continuous values, infinitely many).
        checked: How many were loaded.
        members: ``(values, figures)`` of each valid member loaded.
        invalid: ``(values, error, path)`` of each member that does not load; ``path`` is the searched
            value's ``--set`` path the error is at (``None``: elsewhere, e.g. a ``--limit``).
    """

    total: int | None
    checked: int = 0
    members: list[tuple[dict[str, Any], Figures]] = field(default_factory=list)
    invalid: list[tuple[dict[str, Any], str, str | None]] = field(default_factory=list)

    @property
    def exhaustive(self) -> bool:
        return self.total is not None and self.checked >= self.total

    def fitting(self, budget: Budget) -> list[tuple[dict[str, Any], Figures]]:
        return [(values, figures) for values, figures in self.members if budget.check(figures) is None]

    def span(self) -> str:
        """``all 12 architectures`` or ``200 of 1,024 architectures sampled``."""
        if self.exhaustive:
            return f"all {plural(self.checked, 'architecture')}"
        total = "infinitely many" if self.total is None else f"{self.total:,}"
        return f"{self.checked:,} of {total} architectures sampled"


def explore_family(source: Any, overrides: Sequence[str], space: Space, *, limits: Limits | None = None,
                   limit: int | None = None, seconds: float | None = None) -> Family:
    """Load members of the family (every one when there are at most ``limit``) and measure them.

    The first and last value of every dimension (the family's two corners) are always loaded, then
    each choice's every value at both corners; the rest are enumerated or sampled with a fixed seed
    until ``limit`` members (:data:`FAMILY_LIMIT`) or ``seconds`` of work (:data:`FAMILY_SECONDS`).
    Each is loaded with ``overrides`` and ``limits``, as the architecture was (``--set``, ``--limit``).
    """
    from blockbuilder.language.architecture import load

    limit = FAMILY_LIMIT if limit is None else limit
    seconds = FAMILY_SECONDS if seconds is None else seconds
    dimensions = space.architecture_dimensions
    sizes = [d.size for d in dimensions]
    total = None if None in sizes else math.prod(s for s in sizes if s is not None)
    family = Family(total)
    started = time.perf_counter()
    for values in _members(dimensions, total, limit):
        try:
            member = load(source, [*overrides, *(d.override(values[d.path]) for d in dimensions)], limits=limits)
        except (SpecError, UsageError) as exc:
            family.invalid.append((values, str(exc), _blamed_path(exc)))
        else:
            family.members.append((values, measure(member, space.latency_table)))
        family.checked += 1
        if family.checked >= 2 and time.perf_counter() - started > seconds:
            break
    return family


def _blamed_path(error: SpecError | UsageError) -> str | None:
    """The ``--set`` path an error is located at (an override's values carry its location)."""
    where = getattr(error, "location", None)
    text = where.file if where is not None else str(error)
    return text.removeprefix("--set ").partition("=")[0] if text.startswith("--set ") else None


def _members(dimensions: Sequence[Dimension], total: int | None, limit: int) -> Iterator[dict[str, Any]]:
    if not dimensions:
        yield {}
        return
    if total is not None and total <= limit:
        for combination in itertools.product(*(d.values() for d in dimensions)):
            yield {d.path: v for d, v in zip(dimensions, combination)}
        return
    seen: set[str] = set()
    rng = random.Random(0)
    corners = [{d.path: d.corners()[side] for d in dimensions} for side in (0, 1)]
    choices = ({**corner, d.path: value} for d in dimensions if d.kind == "choice" for value in d.values()
               for corner in corners)  # so that a choice's value that never loads is seen (check_family)
    randoms = ({d.path: d.random_value(rng) for d in dimensions} for _ in range(limit * 4))
    for values in itertools.chain(corners, choices, randoms):
        key = repr(sorted(values.items()))
        if key in seen:
            continue
        seen.add(key)
        yield values
        if len(seen) >= limit:
            return


def check_family(family: Family, space: Space, budget: Budget, budget_from_flags: Iterable[str] = ()) -> None:
    """Fail when no member of the family loads, a choice's value is in no member that loads, or no
    member fits the budget.

    Raises:
        SpecError: at the ``search:`` section (the choice's value, the budget key) of the file.
        UsageError: when the budget that nothing fits came from ``--max-params``/``--max-macs``.
    """
    if not family.members:
        values, error, _ = family.invalid[0]
        member = ", ".join(f"{k}={value_text(v)}" for k, v in values.items()) or "the default member"
        raise SpecError(f"no architecture of the family is valid ({family.span()}); {member}: {error}",
                        space.locs.get("space", space.loc), "search.space")
    _check_choices(family, space)
    if family.fitting(budget):
        return
    flags = set(budget_from_flags)
    for key, limit in budget.limits.items():
        name = key.removeprefix("max_")
        smallest = min(getattr(figures, name) for _, figures in family.members)
        if smallest > limit:
            message = (f"no architecture of the family fits the budget: the smallest has {smallest:,} "
                       f"{name.replace('_', ' ')} > {key} {limit:,} ({family.span()})")
            break
    else:
        key = next(iter(budget.limits))
        message = f"no architecture of the family fits {budget.describe()} together ({family.span()})"
    if key in flags:
        raise UsageError(f"--{key.replace('_', '-')} {budget.limits[key]}: {message}")
    raise SpecError(message, space.locs.get(f"budget.{key}", space.locs.get("budget", space.loc)),
                    f"search.budget.{key}")


def _check_choices(family: Family, space: Space) -> None:
    """A choice's value that is in no valid member, and is what an error is about (``unknown block type``),
    is a mistake; one that only makes members too big (``--limit``) or fails with other values is not."""
    for dimension in space.architecture_dimensions:
        if dimension.kind != "choice":
            continue
        valid = {value_text(values[dimension.path]) for values, _ in family.members}
        for text, where in zip(dimension.choices, dimension.choice_locs):
            failed = [(error, path) for values, error, path in family.invalid
                      if value_text(values[dimension.path]) == text]
            blamed = [error for error, path in failed if path == dimension.path]
            if blamed and text not in valid:
                tried = "the one member" if len(failed) == 1 else f"all {len(failed)} members"
                raise SpecError(f"{dimension.path}={text} does not load in {tried} of the family with it: "
                                f"{blamed[0]}", where, f"search.space.{dimension.path}.choice")


def check_capacity(family: Family, space: Space, budget: Budget, trials: int) -> None:
    """Fail when a finite space holds fewer different trials that fit the budget than ``trials``.

    Raises:
        UsageError: naming how many there are.
    """
    training = [d.size for d in space.dimensions if d.is_training]
    if not family.exhaustive or None in training:
        return
    capacity = len(family.fitting(budget)) * math.prod(s for s in training if s is not None)
    if trials > capacity:
        raise UsageError(f"--trials {trials}: the space holds only {plural(capacity, 'different trial')} "
                         "that fit the budget")
