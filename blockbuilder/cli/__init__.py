"""CLI sub-commands.

Each module here is one ``blockbuilder`` sub-command and exposes:

* ``HELP`` -- a one-line description for ``blockbuilder --help``;
* ``DOCS`` -- where the docs cover it, without a URL (``'docs/training.md, "The run directory"'``: files,
  and quoted section headings of the file named before them);
* ``EXAMPLES`` -- a tuple of real command lines, each starting ``blockbuilder COMMAND`` (a ``# comment``
  may follow); ``--help`` ends with ``docs: DOCS`` and then these, and shows the options' defaults;
* ``configure(parser)`` -- adds its arguments (must not import TensorFlow or Keras);
* ``run(args) -> int`` -- does the work and returns the exit code (imports heavy modules inside);
* optionally ``overrides(args) -> list[str]`` -- its own flags that change the architecture, as ``--set``
  overrides (train's ``--epochs N`` is ``train.epochs=N``): ``main`` applies them with ``--set``,
  ``--weights`` and ``--limit`` before its one load (:mod:`blockbuilder.cli.options`).

``blockbuilder.cli.main`` lists them (``all_commands``), adds the shared options (``--set``, ``--debug``)
and turns a ``SpecError`` into ``FILE:LINE:COL: PATH: message`` with exit code 1. This package's own
module imports none of them: they import :func:`positive_int` from it.
"""

import argparse


def positive_int(text: str) -> int:
    """An ``argparse`` type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
