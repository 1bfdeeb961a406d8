"""Architecture search declared in the architecture file, run on Optuna.

The pipeline, one module per step (only :mod:`study` imports Optuna, and only the training of a trial
imports TensorFlow)::

    space    the ``search:`` section -> a checked :class:`~blockbuilder.search.space.Space`
             (what varies, the objective, sampler, pruner, budget); ``describe_space`` for ``validate``
    budgets  parameters, MACs and activation memory of a family member, and the budget check
    study    the Optuna study: storage, workers, trials, resume after a kill
    report   trials.csv, best.yaml, pareto.png and the live progress
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["describe_space"]


def describe_space(architecture: Any, overrides: Sequence[str] = ()) -> str:
    """What ``blockbuilder validate`` prints about a file's ``search:`` section (no TensorFlow).

    Args:
        architecture: A loaded architecture whose document has a ``search:`` section.
        overrides: The ``--set`` overrides it was loaded with (the family's members get them too).

    Raises:
        SpecError: a bad ``search:`` section, no valid member, or a budget nothing fits.
    """
    from blockbuilder.search.space import describe_space as describe

    return describe(architecture, overrides)
