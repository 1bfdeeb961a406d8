"""The terminal: rich tables on stdout, and a Keras import that keeps TensorFlow's start-up chatter off stderr.

A leaf module (it imports nothing from blockbuilder), so every command can use it without an import cycle.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal


def console() -> Any:
    """A rich ``Console``: the terminal's width on a terminal, 140 columns when piped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)


def import_keras_quietly(module: Literal["keras", "tensorflow"] = "keras") -> None:
    """Import Keras (or ``module``: ``tensorflow``) with TensorFlow's C++ start-up chatter on stderr silenced."""
    if module in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            if module == "tensorflow":
                import tensorflow  # noqa: F401
            else:
                import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
