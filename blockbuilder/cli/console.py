"""The terminal: rich tables on stdout, and a Keras import that keeps TensorFlow's start-up chatter off stderr.

A leaf module (it imports only the leaf :mod:`blockbuilder.quiet`), so every command can use it without
an import cycle.
"""

from __future__ import annotations

import sys
from typing import Any

from blockbuilder.quiet import import_keras_quietly

__all__ = ["console", "import_keras_quietly"]


def console() -> Any:
    """A rich ``Console``: the terminal's width on a terminal, 140 columns when piped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)
