"""The search directory: ``search.json``, which marks a directory as one ``blockbuilder search`` made and
says what it searches, and ``.partial/``, where a trial trains before its run directory is renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, UsageError
from blockbuilder.files import atomic_path

__all__ = ["PARTIAL", "SEARCH_FILE", "check_output", "read_search_file", "write_search_file"]

SEARCH_FILE = "search.json"
PARTIAL = ".partial"


def check_output(output: Path) -> None:
    """A search directory is new, empty, or one that ``blockbuilder search`` made."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / SEARCH_FILE).is_file():
        raise UsageError(f"--output {output} holds other files (no {SEARCH_FILE}): choose a new directory")


def write_search_file(output: Path, record: dict[str, Any]) -> None:
    """Write ``DIR/search.json`` (a temporary file, then one rename)."""
    with atomic_path(output / SEARCH_FILE) as temporary:
        Path(temporary).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_search_file(output: Path) -> dict[str, Any]:
    """``DIR/search.json``, which ``blockbuilder search`` writes when it starts.

    Raises:
        UsageError: ``output`` is not a search directory.
    """
    path = output / SEARCH_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{output} is not a search directory (no {SEARCH_FILE}; 'blockbuilder search' "
                         "writes it)") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or "study" not in record:
        raise CommandError(f"{path} is not what 'blockbuilder search' writes")
    return record
