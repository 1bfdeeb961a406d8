"""What ``blockbuilder validate`` prints about a ``search:`` section: its size, the family's range, the budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from blockbuilder.language.budgets import Limits
from blockbuilder.search.budgets import Budget
from blockbuilder.search.family import Family, check_family, explore_family
from blockbuilder.search.section import parse_space
from blockbuilder.search.space import Space, value_text
from blockbuilder.text import human, plural

__all__ = ["describe_space"]


def describe_space(architecture: Any, overrides: Sequence[str] = (), limits: Limits | None = None) -> str:
    """The size of the space, the family's range of parameters and MACs, and what fits the budget.

    Args:
        architecture: A loaded architecture whose document has a ``search:`` section.
        overrides: The ``--set`` overrides it was loaded with (members are loaded with them too).
        limits: The budgets it was loaded with (``--limit``; members too); ``None``: the defaults.

    Raises:
        SpecError: for a bad ``search:`` section, a family without a valid member, or a budget
            that nothing fits.
    """
    space = parse_space(architecture.document)
    lines = [_size_line(space)]
    width = max(len(d.path) for d in space.dimensions)
    for dimension in space.dimensions:
        count = dimension.size
        values = "continuous" if count is None else plural(count, "value")
        lines.append(f"  {dimension.path:<{width}}  {dimension.describe():<32} {values}")
    if architecture.source is not None:
        family = explore_family(architecture.source, overrides, space, limits=limits)
        check_family(family, space, space.budget)
        lines.extend(_family_lines(family, space.budget))
    objective = " and ".join("validation accuracy" if o == "accuracy" else o for o in space.objectives)
    pruner = f", {space.pruner} pruner" if space.pruner != "none" else ""
    epochs = f"{plural(space.epochs, 'epoch')} each" if space.epochs else \
        "the train section's epochs each"
    trials = plural(space.trials, "trial") if space.trials else "trials"
    lines.append(f"objective: {objective} ({space.sampler} sampler{pruner}); {trials} of {epochs}")
    return "\n".join(lines)


def _size_line(space: Space) -> str:
    architecture = [d.size for d in space.architecture_dimensions]
    training = [d.size for d in space.dimensions if d.is_training]
    parts = []
    for name, sizes in (("architecture", architecture), ("training setting", training)):
        if not sizes:
            continue
        known = [size for size in sizes if size is not None]
        parts.append(f"continuous {name}s" if None in sizes else plural(math.prod(known), name))
    total = "infinitely many trials" if space.size is None else plural(space.size, "trial")
    return f"search: {plural(len(space.dimensions), 'value')} searched, {total} possible " \
           f"({' x '.join(parts)})"


def _family_lines(family: Family, budget: Budget) -> list[str]:
    members = [figures for _, figures in family.members]
    lines = [f"family ({family.span()}): "
             f"{_range([f.params for f in members], full=True)} params, {_range([f.macs for f in members])} MACs, "
             f"{_range([f.activation_memory for f in members], unit='B')} of activations per image"]
    if family.invalid:
        values, error, _ = family.invalid[0]
        member = ", ".join(f"{k}={value_text(v)}" for k, v in values.items())
        lines.append(f"  {len(family.invalid)} of {family.checked} do not load, e.g. {member}: {error}")
    if budget.limits:
        fit = len(family.fitting(budget))
        lines.append(f"budget ({budget.describe()}): {fit} of {len(members)} fit")
    return lines


def _range(values: list[int], full: bool = False, unit: str = "") -> str:
    def show(value: int) -> str:
        if full:
            return f"{value:,}"
        return human(value) + (unit if value >= 1000 else f" {unit}".rstrip())

    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)} - {show(high)}"
