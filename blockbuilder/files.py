"""Reading and writing files: a file is read only when it is a regular file, and written so that an
interrupted or failed write never leaves half a file behind."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blockbuilder.errors import CommandError


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def not_regular(path: str | Path) -> str | None:
    """Why ``path`` is not a regular file to read (``None`` when it is one, or a link to one).

    Asked before anything opens a model, weights or image file: opening a FIFO waits for a writer for
    ever, a device reads without end, and a folder gives each library its own traceback.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc)
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not a file"


def regular_file(path: str | Path, error: type[CommandError] = CommandError, label: str | None = None) -> Path:
    """``path`` as a ``Path`` when it is a regular file to read; ``error("LABEL: why not")`` otherwise.

    Args:
        path: The file.
        error: The error to raise (the caller's own kind: ``ExportError``, ``ImageError`` ...).
        label: How the message names the file (the path itself by default).
    """
    why = not_regular(path)
    if why is not None:
        raise error(f"{path if label is None else label}: {why}")
    return Path(path)


#: An archive entry may inflate to at most this many times its stored size once it is past
#: :data:`INFLATE_FREE` bytes: weights compress little (random floats: about 1.1x), a zip bomb by 1000x.
MAX_INFLATE_RATIO = 50
INFLATE_FREE = 64 * 2**20


def check_zip_entries(archive: zipfile.ZipFile, path: str | Path, error: type[CommandError] = CommandError) -> None:
    """Refuse an archive an entry of which would inflate far beyond what it stores, before reading any.

    Python's zipfile reads an entry up to its declared size, so the declared sizes bound what reading
    costs: an entry declared as more than :data:`MAX_INFLATE_RATIO` times its stored bytes (and over
    :data:`INFLATE_FREE`) is refused by name (a 1.5 MB ``.keras`` whose weights inflate to 1.5 GiB drove
    a process to 3.9 GB before it failed).
    """
    for info in archive.infolist():
        if info.file_size > INFLATE_FREE and info.file_size > MAX_INFLATE_RATIO * max(info.compress_size, 1):
            raise error(f"{path}: its {info.filename} would inflate from {info.compress_size:,} to "
                        f"{info.file_size:,} bytes, more than {MAX_INFLATE_RATIO}x: not a model's archive "
                        "(a zip bomb?)")


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
