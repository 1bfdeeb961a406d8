"""The options that change an architecture, made into overrides and limits in one place, once.

``blockbuilder.cli.main`` calls :func:`from_args` once, before its one load of the architecture, and
keeps the result on the namespace as ``args.load_options``. The overrides, in the order they apply (a
later one wins):

1. ``--set PATH=VALUE``, as written;
2. the command's own flags that are overrides, from its module's ``overrides(args) -> list[str]``
   (train's ``--epochs N`` is ``train.epochs=N``, so ``resolved.yaml`` holds what was trained);
3. ``--weights SOURCE``, as ``weights={source: ...}`` (:func:`blockbuilder.cli.weights.overrides`).

``--limit BUDGET=N`` raises or lowers a budget. What a command loads beside the architecture (the
members of a search's family, an architecture given where a run could be) it loads with the same
:class:`LoadOptions`: no command reads the file again with other overrides or without the limits.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blockbuilder.cli import weights

if TYPE_CHECKING:
    from blockbuilder.language.architecture import Architecture
    from blockbuilder.language.budgets import Limits

__all__ = ["LoadOptions", "OverridesHook", "from_args"]

OverridesHook = Callable[[argparse.Namespace], list[str]]


@dataclass(frozen=True)
class LoadOptions:
    """What the command line changes in an architecture.

    Attributes:
        overrides: ``PATH=VALUE`` overrides, in the order they apply (a later one wins).
        limits: The budgets, ``--limit`` applied.
    """

    overrides: tuple[str, ...]
    limits: Limits

    def load(self, source: str | Path) -> Architecture:
        """The architecture ``source`` (a file or a zoo name) with these overrides and limits."""
        from blockbuilder.language.architecture import load

        return load(source, self.overrides, limits=self.limits)


def from_args(args: argparse.Namespace) -> LoadOptions:
    """The ``--set``, the command's own override flags, ``--weights`` and ``--limit`` of ``args``.

    Raises:
        UsageError: a ``--limit`` of an unknown budget, or whose value is not a positive number.
    """
    from blockbuilder.language.budgets import Limits

    hook: OverridesHook | None = getattr(args, "command_overrides", None)
    flags = hook(args) if hook is not None else []
    overrides = (*getattr(args, "overrides", []), *flags, *weights.overrides(args))
    return LoadOptions(overrides, Limits().with_overrides(getattr(args, "limits", [])))
