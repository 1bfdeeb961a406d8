"""The search directory: ``search.json``, which marks a directory as one ``blockbuilder search`` made and
says what it searches, and ``.partial/``, where a trial trains before its run directory is renamed into place.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, UsageError
from blockbuilder.files import atomic_path
from blockbuilder.language.budgets import Limits

__all__ = ["PARTIAL", "SEARCH_FILE", "changed_limits", "check_output", "read_search_file", "recorded_limits",
           "write_search_file"]

SEARCH_FILE = "search.json"
PARTIAL = ".partial"


def check_output(output: Path) -> None:
    """A search directory is new, empty, or one that ``blockbuilder search`` made."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / SEARCH_FILE).is_file():
        raise UsageError(f"--output {output} holds other files (no {SEARCH_FILE}): choose a new directory")


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
