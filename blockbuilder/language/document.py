"""YAML text -> plain data that remembers where each value came from.

Only YAML's core schema is accepted: mappings, sequences and plain scalars. Tags that construct
objects (``!!python/object`` and friends) are refused before anything is constructed, and the walk
over the composed node graph is bounded, so alias bombs and absurd nesting end in a ``SpecError``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from blockbuilder.errors import Location, SpecError, shown

MAX_NODES = 50_000
MAX_DEPTH = 64
MAX_BYTES = 2_000_000

_SAFE_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq")
}

#: YAML 1.2 floats that YAML 1.1 (PyYAML) reads as text: an exponent without a dot or without a sign
#: (``1e-5``, ``3E2``, ``2.5e3``), as people write them after PyTorch.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading YAML 1.2 floats as numbers."""


class Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting text that YAML 1.2 reads as a number (the string ``'1e3'``), so what
    ``resolve``, ``search`` and ``best.yaml`` write reads back as the value it was."""


def dump(value: Any, **options: Any) -> str:
    """``yaml.safe_dump`` with :class:`Dumper`: the YAML text of ``value``."""
    return str(yaml.dump(value, Dumper=Dumper, **options))


for _reader in (_Loader, Dumper):  # a project's own classes: PyYAML's stay as they are
    _reader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


class Map(dict[Any, Any]):
    """A mapping that knows its own location and the location of each value."""

    def __init__(self, *args: Any, loc: Location | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loc = loc
        self.locs: dict[Any, Location | None] = {}
        self.key_locs: dict[Any, Location | None] = {}

    def key_loc(self, key: Any) -> Location | None:
        """Location of ``key`` itself (falls back to its value's)."""
        return self.key_locs.get(key) or self.loc_of(key)

    def loc_of(self, key: Any) -> Location | None:
        """Location of the value under ``key`` (falls back to the mapping's own)."""
        return self.locs.get(key) or self.loc


class Seq(list[Any]):
    """A sequence that knows its own location and the location of each item."""

    def __init__(self, *args: Any, loc: Location | None = None) -> None:
        super().__init__(*args)
        self.loc = loc
        self.locs: list[Location | None] = [loc] * len(self)

    def loc_of(self, index: int) -> Location | None:
        """Location of item ``index``."""
        return self.locs[index] if 0 <= index < len(self.locs) else self.loc


def loc_of(container: Any, key: Any) -> Location | None:
    """Location of ``container[key]`` when the container remembers it."""
    if isinstance(container, (Map, Seq)):
        return container.loc_of(key)
    return None


def load_text(text: str | bytes, filename: str = "<string>") -> Any:
    """Parse YAML text into ``Map``/``Seq``/scalars.

    Raises:
        SpecError: for unreadable, hostile or oversized input.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})",
                            Location(filename, 1, 1)) from None
    if len(text) > MAX_BYTES:
        raise SpecError(f"file too large ({len(text):,} bytes, at most {MAX_BYTES:,})",
                        Location(filename, 1, 1))
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename, 1, 1)
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(filename, 1, 1)) from None
    except RecursionError:
        raise SpecError(f"nesting deeper than {MAX_DEPTH} levels", Location(filename, 1, 1)) from None
    if node is None:
        return Map(loc=Location(filename, 1, 1))
    return _Converter(filename).convert(node, 0)


def load_file(path: str | Path) -> Any:
    """Read and parse one YAML file."""
    path = Path(path)
    where = Location(str(path), 1, 1)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # said before reading: a 3 GB file costs nothing
            raise SpecError(f"file too large ({size:,} bytes, at most {MAX_BYTES:,})", where)
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)  # bounded, for files whose size stat cannot tell (a pipe)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", where) from None
    if len(data) > MAX_BYTES:
        raise SpecError(f"file too large (more than {MAX_BYTES:,} bytes)", where)
    return load_text(data, str(path))


class _Converter:
    """Walks a composed node graph with a budget on nodes and depth."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.visited = 0
        self.constructor = _Loader("")

    def location(self, node: yaml.Node) -> Location:
        return Location(self.filename, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise SpecError(f"document expands to more than {MAX_NODES} values "
                            "(too many aliases?)", self.location(node))
        if depth > MAX_DEPTH:
            raise SpecError(f"nesting deeper than {MAX_DEPTH} levels", self.location(node))
        if node.tag not in _SAFE_TAGS:
            raise SpecError(f"tag {node.tag!r} is not allowed (plain YAML only)", self.location(node))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, depth)
        if isinstance(node, yaml.SequenceNode):
            items = Seq(loc=self.location(node))
            for item in node.value:
                items.append(self.convert(item, depth + 1))
                items.locs.append(self.location(item))
            return items
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise SpecError(f"bad scalar: {exc}", self.location(node)) from None
        if isinstance(value, float) and math.isinf(value) and "inf" not in str(node.value).lower():
            raise SpecError(f"number too large for a float: {shown(node.value)}", self.location(node))
        return value

    def mapping(self, node: yaml.MappingNode, depth: int) -> Map:
        result = Map(loc=self.location(node))
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys ('<<') are not supported; use 'extends:' or "
                                "user-defined blocks", self.location(key_node))
            key = self.convert(key_node, depth + 1)
            if isinstance(key, (Map, Seq)):
                raise SpecError("mapping keys must be plain scalars", self.location(key_node))
            if key in result:
                raise SpecError(f"duplicate key {key!r}", self.location(key_node))
            result[key] = self.convert(value_node, depth + 1)
            result.locs[key] = self.location(value_node)
            result.key_locs[key] = self.location(key_node)
        return result
