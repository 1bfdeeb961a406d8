"""CLI sub-commands.

Each module here is one ``blockbuilder`` sub-command and exposes:

* ``HELP`` -- a one-line description for ``blockbuilder --help``;
* ``DOCS`` -- where the docs cover it, without a URL (``'docs/training.md, "The run directory"'``: files,
  and quoted section headings of the file named before them);
* ``EXAMPLES`` -- a tuple of real command lines, each starting ``blockbuilder COMMAND`` (a ``# comment``
  may follow); ``--help`` ends with ``docs: DOCS`` and then these, and shows the options' defaults;
* ``configure(parser)`` -- adds its arguments (must not import TensorFlow or Keras);
* ``run(args) -> int`` -- does the work and returns the exit code (imports heavy modules inside).

``blockbuilder.cli.main`` adds the shared options (``--set``, ``--debug``) and turns a ``SpecError`` into
``FILE:LINE:COL: PATH: message`` with exit code 1.
"""

import argparse
from types import ModuleType


def all_commands() -> list[ModuleType]:
    """The command modules, in the order ``--help`` lists them."""
    from blockbuilder.cli import (
        compare,
        draw,
        embed,
        evaluate,
        explore,
        export,
        features,
        predict,
        report,
        search,
        search_report,
        train,
    )

    return [train, report, evaluate, export, predict, draw, features, embed, explore, compare, search, search_report]


def positive_int(text: str) -> int:
    """An ``argparse`` type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
