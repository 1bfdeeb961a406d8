"""Graph inputs: which earlier blocks an entry's ``from:`` can name, and what a block that takes several
inputs reads when it names none.

A *region* is where names are looked up: the network, a user block's body, or one part of a combinator
(a branch's paths, a residual's body ...). Within a region a name is the latest block written with that
``name:`` before the entry (a ``repeat`` or ``sequence`` is written in its place: its blocks' names stay
visible after it); the network's region also holds the model input, a user block's the names of its
``inputs:``. A region sees nothing outside it, and nothing inside another region: a user block reads only
its inputs, a combinator's part only its own blocks and the part's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blockbuilder.blocks import Node, Shape
from blockbuilder.blocks.merge import source_names
from blockbuilder.errors import Location, SpecError, did_you_mean

__all__ = ["Region", "Source", "check_read"]


@dataclass(frozen=True)
class Source:
    """A tensor an entry can read: its key (``Node.sources``), shape, and name as written."""

    key: str
    shape: Shape
    name: str


class Region:
    """The blocks ``from:`` can name in one place, in the order they were written.

    Args:
        where: What bounds the region, for messages (``block 'cell'``, ``the paths of branch 'x1'``).
        parent: The region around it (only to say that a name is outside).
        start: What the region's chain starts from (the model input, a user block's inputs), first the
            nearest; a combinator's part gets its input when its first block is named (:meth:`open`).
        named: Which of ``start`` have names.
    """

    def __init__(self, where: str, parent: Region | None = None, start: tuple[Source, ...] = (),
                 named: dict[str, Source] | None = None) -> None:
        self.where, self.parent = where, parent
        self.written: list[Source] = list(reversed(start))  # latest last
        self.named: dict[str, Source] = dict(named or {})
        self.inputs = tuple(self.named)
        self.later: set[str] = set()
        self.hidden: dict[str, str] = {}  # names written in regions inside this one -> their block's path

    def part(self, where: str) -> Region:
        """A region inside this one (a combinator's part, a user block's body)."""
        return Region(where, self)

    def open(self, source: Source) -> None:
        """A part's input, once its first block is named: what its first blocks read."""
        if not self.written:
            self.written.append(source)

    def announce(self, names: list[str]) -> None:
        """Names written further down the list being expanded (to say 'comes after' rather than 'no block')."""
        self.later.update(names)

    def define(self, name: str | None, source: Source, *, counted: bool = True) -> None:
        """A block just expanded; ``counted``: one of the blocks written before the next (not a repeat or
        sequence, whose blocks were counted one by one)."""
        if counted:
            self.written.append(source)
        if name is None:
            return
        self.named[name] = source
        self.later.discard(name)
        outer = self.parent
        while outer is not None:
            outer.hidden.setdefault(name, source.key)
            outer = outer.parent

    def recent(self, count: int) -> tuple[Source, ...] | None:
        """The ``count`` blocks written last, the latest first (``None`` when fewer were written)."""
        if len(self.written) < count:
            return None
        return tuple(reversed(self.written[-count:]))

    def resolve(self, name: str, where: Location | None, doc_path: str) -> Source:
        """The block ``name`` stands for here; an error that says why when there is none."""
        if name in self.named:
            return self.named[name]
        if name in self.later:
            raise SpecError(f"block '{name}' comes after this entry: 'from' reads blocks written before it",
                            where, doc_path)
        outer = self.parent
        while outer is not None:
            if name in outer.named:
                raise SpecError(f"block '{name}' is outside {self.where}, {self._reads()}", where, doc_path)
            outer = outer.parent
        region: Region | None = self
        while region is not None:
            if name in region.hidden:
                raise SpecError(f"block '{name}' is inside another block ({region.hidden[name]}): 'from' "
                                "reads blocks of this list and of the lists around it", where, doc_path)
            region = region.parent
        hint = did_you_mean(name, self.named) or ": 'from' reads a block by the name: written on it"
        raise SpecError(f"no block named '{name}' before this entry{hint}", where, doc_path)

    def _reads(self) -> str:
        if self.inputs:
            return f"whose body reads only its inputs ({', '.join(self.inputs)}) and its own blocks"
        if self.where.startswith("block "):
            return "whose body reads only its input and its own blocks"
        return "which read only their own blocks (a combinator wires its parts itself)"


def check_read(root: Node[Any], written_at: Mapping[str, tuple[Location | None, str]]) -> None:
    """Refuse a block whose output nothing reads (the entry after it reads others, and no ``from:`` names it):
    Keras would leave it out of the model, and the figures computed from the file would count it.

    ``written_at`` has the entry of each block (a user block's node is sited at its definition).
    """
    read = {key for node in root.walk() for key in node.sources}
    for node in root.walk():
        for group in node.children.values():
            for block, after in zip(group, group[1:]):
                if after.sources and not _reaches(block, read):
                    where, doc_path = written_at.get(block.path, (block.loc, block.doc_path))
                    raise SpecError(f"block '{block.name}' is never read: the entry after it reads "
                                    f"{', '.join(source_names(after))} (its 'from'), and no 'from' names it",
                                    where, doc_path)


def _reaches(node: Node[Any], read: set[str]) -> bool:
    """Whether a block's output is read by name (a repeat's or sequence's: also as its last block's)."""
    while True:
        if node.path in read:
            return True
        body = node.group("body")
        if not (node.block.chains_body and body):
            return False
        node = body[-1]
