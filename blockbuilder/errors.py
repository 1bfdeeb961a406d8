"""blockbuilder's errors: one root, a few kinds; the CLI maps each kind to an exit code.

``SpecError`` (a bad architecture file) and ``CommandError`` (work that could not be done: an unreadable
image, an unwritable path, a data set that does not fit) exit with 1; ``UsageError`` (bad command-line
usage: an unknown zoo name, a malformed ``--set``) exits with 2. The library raises only these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

MAX_SHOWN = 60
MAX_PATH = 160  # a document path longer than this is shown by its two ends


@dataclass(frozen=True)
class Location:
    """Where a value came from: a file (or ``<string>``), 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


class BlockbuilderError(Exception):
    """The root of every error blockbuilder raises on purpose."""


class SpecError(BlockbuilderError):
    """A problem in an architecture file, printed as ``FILE:LINE:COL: PATH: message``.

    Args:
        message: What is wrong, in words a user understands.
        location: Where in which file; ``None`` when there is no file (a ``--set`` value, say).
        path: The document path, e.g. ``network[3].residual.body[1].conv.filters``.
    """

    def __init__(self, message: str, location: Location | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.path = path

    def __str__(self) -> str:
        parts = [str(self.location)] if self.location else []
        if self.path:
            parts.append(self.path if len(self.path) <= MAX_PATH else f"{self.path[:60]}...{self.path[-80:]}")
        parts.append(self.message)
        return ": ".join(parts)


class CommandError(BlockbuilderError):
    """A command could not do its work (an unreadable model or image, an unwritable path): exit code 1.

    The CLI prints it as ``blockbuilder COMMAND: error: message``, without a traceback.
    """


class DataError(CommandError):
    """A data set that cannot be used for training (missing, unreadable, the wrong shape)."""


class ImageError(CommandError):
    """An image that cannot be read or is too large; the message names the file."""


class UsageError(BlockbuilderError):
    """Bad command-line usage (exit code 2): an unknown zoo name, a malformed ``--set``."""


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word)[:100], [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge bad value never floods an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
