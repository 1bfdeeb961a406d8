"""The search directory: ``search.json``, which marks a directory as one ``blockbuilder search`` made and
says what it searches, and ``.partial/``, where a trial trains before its run directory is renamed into place.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, UsageError
from blockbuilder.files import atomic_path, regular_file
from blockbuilder.language.budgets import Limits
from blockbuilder.search.storage import STUDY_FILE

__all__ = ["PARTIAL", "SEARCH_FILE", "changed_limits", "check_output", "default_output", "read_search_file",
           "recorded_limits", "write_search_file"]

SEARCH_FILE = "search.json"
PARTIAL = ".partial"


def default_output(name: str) -> Path:
    """``searches/NAME``, the search directory when ``--output`` is not given.

    Raises:
        UsageError: the network's name is not a plain file name (``..``, ``a/b``, ``/abs``): it would put
            the directory anywhere.
    """
    if name in ("", ".", "..") or "\\" in name or Path(name).name != name:
        raise UsageError(f"the network name '{name}' is not a plain file name, so it cannot name the search "
                         "directory searches/NAME: give --output DIR")
    return Path("searches") / name


def check_output(output: Path, study: str) -> None:
    """A search directory is new, empty, or one that ``blockbuilder search`` made for the study ``study``.

    Raises:
        UsageError: ``output`` is a file, holds other files, or holds another search (another ``name:``).
        CommandError: its ``search.json`` cannot be read.
    """
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a directory")
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not os.path.lexists(output / SEARCH_FILE):
        others = [entry.name for entry in output.iterdir() if not _searchs_own(entry.name)]
        if others:
            raise UsageError(f"--output {output} holds other files (no {SEARCH_FILE}): choose a new directory")
        return  # another worker of the same search is starting: it opened the storage, search.json comes next
    held = str(read_search_file(output)["study"])
    if held != study:
        raise UsageError(f"--output {output} holds the search '{held}' ({SEARCH_FILE}), not '{study}': choose "
                         f"another --output, or run the file of '{held}' to continue it")


def _searchs_own(name: str) -> bool:
    """Whether a file of a search directory is one a starting search writes before ``search.json``: its
    SQLite storage (and SQLite's side files), ``.partial/``, or the temporary file of ``search.json``."""
    return name == PARTIAL or name.startswith((STUDY_FILE, f".{SEARCH_FILE}."))


def changed_limits(limits: Limits) -> dict[str, int]:
    """The budgets that ``--limit`` changed, by name, as ``search.json`` records them (``{}``: none)."""
    defaults = asdict(Limits())
    return {name: value for name, value in asdict(limits).items() if value != defaults[name]}


def recorded_limits(record: dict[str, Any]) -> Limits:
    """The budgets of the search whose ``search.json`` is ``record`` (the defaults when it records none)."""
    return replace(Limits(), **record.get("limits", {}))


def write_search_file(output: Path, record: dict[str, Any]) -> None:
    """Write ``DIR/search.json`` (a temporary file, then one rename)."""
    with atomic_path(output / SEARCH_FILE) as temporary:
        Path(temporary).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_search_file(output: Path) -> dict[str, Any]:
    """``DIR/search.json``, which ``blockbuilder search`` writes when it starts.

    Raises:
        UsageError: ``output`` is not a search directory.
        CommandError: its ``search.json`` is not a regular file (a FIFO would hang), or not one it wrote.
    """
    path = output / SEARCH_FILE
    try:
        if os.path.lexists(path):
            regular_file(path)
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{output} is not a search directory (no {SEARCH_FILE}; 'blockbuilder search' "
                         "writes it)") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or "study" not in record:
        raise CommandError(f"{path} is not what 'blockbuilder search' writes")
    return record
