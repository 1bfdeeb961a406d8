"""Reference tables generated from the code, so the README cannot drift from it.

``python -m blockbuilder.report.reference README.md`` rewrites the parts of the README between
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers; a test fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from blockbuilder.blocks import block_names, get_block
from blockbuilder.language.budgets import budget_table


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def blocks_markdown() -> str:
    """One row per registered block type: its arguments with their defaults, and what it does."""
    rows = ["| block | arguments (default) | shorthand | what it does |", "|---|---|---|---|"]
    for name in block_names():
        block = get_block(name)
        assert block is not None
        arguments = []
        for key, info in block.Spec.model_fields.items():
            default = info.default
            required = default is PydanticUndefined
            arguments.append(f"`{key}`" if required else f"`{key}` ({_default(default)})")
        arguments += [f"`{key}` (blocks)" for key in block.block_fields if key not in block.Spec.model_fields]
        doc = (block.__doc__ or "").strip().splitlines()[0] if block.__doc__ else ""
        doc = doc.replace("|", "/").replace("``", "`")
        shorthand = f"`{name}: …` sets `{block.scalar_key}`" if block.scalar_key else ""
        rows.append(f"| `{name}` | {', '.join(arguments) or '—'} | {shorthand} | {doc} |")
    return "\n".join(rows)


def budgets_markdown() -> str:
    """The budgets table: what is limited, the limit, how it is enforced."""
    rows = ["| budget | limit | enforced |", "|---|---|---|"]
    rows += [f"| {what} | {limit} | {how} |" for what, limit, how in budget_table()]
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {"blocks": blocks_markdown, "budgets": budgets_markdown}


def update(text: str) -> str:
    """``text`` with every generated section replaced by its current content."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.S)
        text = pattern.sub(_filled(make()), text)
    return text


def _filled(body: str) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match.group(1)}{body}\n{match.group(2)}"


def main(argv: list[str]) -> int:
    for path in map(Path, argv):
        path.write_text(update(path.read_text()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
