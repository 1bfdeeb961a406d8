"""Architecture search declared in the architecture file, run on Optuna.

The pipeline, one module per step (only the study's modules import Optuna, and only the training of a
trial imports TensorFlow)::

    space      what a checked section holds: :class:`~blockbuilder.search.space.Dimension`, ``Space``
    section    the ``search:`` section -> a ``Space`` (what varies, the objective, sampler, pruner,
               budget), each mistake at its line; ``paths`` checks where each searched value goes
    budgets    parameters, MACs and activation memory of a family member, and the budget check
    family     the family's members loaded and measured; some must load and fit the budget
    describe   ``describe_space``: what ``validate`` prints about the section
    storage    the storage URL, opening it, creating or continuing the study over one space
    study      the worker loop: trials, resume after a kill; with ``sampling`` (sampler, pruner),
               ``workers`` (who runs a trial, heartbeats), ``directory`` (``search.json``,
               ``.partial``) and ``trainer`` (one trial's training)
    report     trials.csv, best.yaml, pareto.png and the live progress
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blockbuilder.language.budgets import Limits

__all__ = ["describe_space"]


def describe_space(architecture: Any, overrides: Sequence[str] = (), limits: Limits | None = None) -> str:
    """What ``blockbuilder validate`` prints about a file's ``search:`` section (no TensorFlow).

    Args:
        architecture: A loaded architecture whose document has a ``search:`` section.
        overrides: The ``--set`` overrides it was loaded with (the family's members get them too).
        limits: The budgets it was loaded with (``--limit``; the members too); ``None``: the defaults.

    Raises:
        SpecError: a bad ``search:`` section, no valid member, or a budget nothing fits.
    """
    from blockbuilder.search.describe import describe_space as describe

    return describe(architecture, overrides, limits)
