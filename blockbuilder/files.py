"""Writing files so that an interrupted or failed write never leaves half a file behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blockbuilder.errors import CommandError


@contextmanager
def atomic_path(target: str | Path) -> Iterator[str]:
    """Yield a temporary path beside ``target``; rename it into place only when the block succeeds.

    Raises:
        CommandError: when the file cannot be written (no permission, disk full ...).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from None
    temporary = Path(folder) / target.name
    try:
        yield str(temporary)
        os.replace(temporary, target)
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
