"""Checks of command-line arguments that need no TensorFlow: inputs that exist, outputs that can be written.

Each command's ``check(args)`` calls these before anything imports Keras (arguments first, TensorFlow
second), so a typo in a path costs a fraction of a second, not the 3–9 s of a TensorFlow import.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from blockbuilder.errors import CommandError, UsageError


def existing(path: str | Path) -> Path:
    """``path`` as a ``Path``; a ``CommandError`` when nothing is there."""
    found = Path(path)
    if not (found.exists() or found.is_symlink()):
        raise CommandError(f"{found}: no such file or directory")
    return found


def suffix(path: str | Path, choices: Sequence[str], flag: str = "--output", ignore_case: bool = True) -> str:
    """The suffix of ``path`` (lower case with ``ignore_case``); a ``UsageError`` unless it is in ``choices``."""
    found = Path(path).suffix.lower() if ignore_case else Path(path).suffix
    if found not in choices:
        names = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
        raise UsageError(f"{flag} must end in {names}, got '{path}'")
    return found


def writable(target: str | Path) -> None:
    """Raise ``CommandError("cannot write TARGET: reason")`` when ``target`` could not be created.

    The nearest existing folder above ``target`` must be a folder this process can create entries in;
    that is tried (a temporary folder made and removed), since permission bits say little to root and
    nothing about ``/proc``.
    """
    target = Path(target)
    folder = target.parent
    while not (folder.exists() or folder.is_symlink()):
        folder = folder.parent
    if not folder.is_dir():
        raise CommandError(f"cannot write {target}: Not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".blockbuilder-check-", dir=folder))
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from None


def not_existing(target: str | Path, force: bool = False) -> None:
    """Refuse to replace ``target`` unless ``force``: a ``CommandError`` naming ``--force``."""
    path = Path(target)
    if (path.exists() or path.is_symlink()) and not force:
        raise CommandError(f"{path}: already exists (use --force to replace it)")
