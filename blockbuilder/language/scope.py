"""The state that travels down expansion: the scope of names, the namer of one block's children, and the
budget of blocks, with the expander's limits.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from blockbuilder.errors import Location, SpecError

__all__ = ["MAX_BLOCKS", "MAX_BLOCK_PARAMS", "MAX_CALL_DEPTH", "MAX_NESTING", "Budget", "Namer", "Scope",
           "recursion_room"]

MAX_BLOCKS = 20_000
MAX_NESTING = 256
MAX_CALL_DEPTH = 32
MAX_BLOCK_PARAMS = 1_000_000_000
#: Python frames one level of blocks may take, in expansion or in any walk of the expanded tree.
FRAMES_PER_LEVEL = 40


@contextmanager
def recursion_room() -> Iterator[None]:
    """Room for :data:`MAX_NESTING` levels of blocks: expansion refuses deeper nesting (the one place
    the limit is checked), so whatever recurses over an expanded tree runs inside this and never hits
    Python's own recursion limit first."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(max(saved, MAX_NESTING * FRAMES_PER_LEVEL))
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


@dataclass(frozen=True)
class Scope:
    """What the expressions of one place see, and how deep that place is.

    Attributes:
        names: Values by name (``classes``, variables, a user block's parameters, ``i``).
        calls: The user blocks being expanded, outermost first (recursion is an error).
        nesting: How many blocks enclose this place.
    """

    names: Mapping[str, Any]
    calls: tuple[str, ...] = ()
    nesting: int = 0

    def bind(self, names: Mapping[str, Any]) -> Scope:
        return replace(self, names={**self.names, **names}) if names else self

    def inside(self) -> Scope:
        return replace(self, nesting=self.nesting + 1)


class Namer:
    """Names the children of one block: written names must be unique; automatic names skip them."""

    def __init__(self, reserved: tuple[str, ...] = (), owner: str = "") -> None:
        self.taken: set[str] = set(reserved)
        self.reserved = set(reserved)
        self.owner = owner
        self.pending: set[str] = set()
        self.counts: dict[str, int] = {}

    def expect(self, names: list[str]) -> None:
        """Written names about to come: automatic names must not take them first."""
        self.pending.update(names)

    def written(self, name: str, where: Location | None, doc_path: str) -> str:
        if name in self.reserved:
            raise SpecError(f"the name '{name}' is reserved here ({self.owner} names a layer of its own so)",
                            where, doc_path)
        if name in self.taken:
            raise SpecError(f"the name '{name}' is already taken by another block here: names are unique "
                            "within a block", where, doc_path)
        self.taken.add(name)
        return name

    def automatic(self, label: str) -> str:
        number = self.counts.get(label, 0) + 1
        while f"{label}{number}" in self.taken or f"{label}{number}" in self.pending:
            number += 1
        self.counts[label] = number
        self.taken.add(f"{label}{number}")
        return f"{label}{number}"


@dataclass
class Budget:
    """Counts what expansion made, against its limits."""

    blocks: int = 0
    limit: int = MAX_BLOCKS

    def add(self, count: int, where: Location | None, doc_path: str) -> None:
        self.blocks += count
        if self.blocks > self.limit:
            raise SpecError(f"the network expands to more than {self.limit:,} blocks", where, doc_path)
