"""The registry of top-level sections: keys of an architecture file that another package reads.

The language reads ``name``, ``input``, ``classes``, ``variables``, ``defaults``, ``blocks`` and
``network`` itself. Every other top-level key belongs to a :class:`Section` that its own package
registers: ``train`` (:mod:`blockbuilder.training.section`), ``weights``/``freeze``/``head``
(:mod:`blockbuilder.transfer.section`), ``search`` (:mod:`blockbuilder.search.section`). The
language derives the top-level keys, the JSON Schema and the attributes of ``Architecture`` from
this registry and imports none of those packages: they are found through the ``blockbuilder.sections``
entry points (``pyproject.toml``), as a plugin's sections would be.

A leaf module: it imports nothing from blockbuilder but the document types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.blocks import Node
    from blockbuilder.language.document import Map, Seq

__all__ = ["Section", "SectionInput", "register_section", "registered_sections", "section_keys"]

ENTRY_POINTS = "blockbuilder.sections"


@dataclass(frozen=True)
class SectionInput:
    """What a section's ``read`` sees.

    Attributes:
        document: The merged document (``extends`` and ``--set`` applied), with locations.
        scope: The file's names (``classes``, variables), for ``$name`` and ``${...}`` in the section.
        root: The expanded network.
        path: The file the document was read from (``None`` for text).
        read: What the sections before this one read, by attribute name.
    """

    document: Map
    scope: Mapping[str, Any]
    root: Node[Any]
    path: Optional[Path]
    read: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """A group of top-level keys read by one package.

    Attributes:
        name: The section's name (``train``).
        keys: The top-level keys it owns (``("weights", "freeze", "head")``).
        read: ``read(SectionInput) -> {attribute: value}``: the typed values it gives ``Architecture``
            (``arch.train``), with defaults when the keys are absent. Raises ``SpecError`` at the line.
        schema: ``schema(defs) -> {key: JSON Schema}`` for its keys (``defs`` takes shared definitions).
        order: Sections are read in this order (a later one sees what earlier ones read).
        classes: ``classes(document, required) -> int | None``: the number of classes the section's
            data has, for ``classes: auto`` (``required``: raise ``SpecError`` when it cannot tell) or
            a file without ``classes:`` (``None`` when it cannot tell).
        network: ``network(document, root) -> Seq | None``: a replacement network list, expanded in
            place of the written one (``head:``); ``None`` leaves the network as written.
    """

    name: str
    keys: tuple[str, ...]
    read: Callable[[SectionInput], dict[str, Any]]
    schema: Callable[[dict[str, Any]], dict[str, Any]]
    order: int = 0
    classes: Optional[Callable[[Map, bool], Optional[int]]] = None
    network: Optional[Callable[[Map, Node[Any]], Optional[Seq]]] = None


_SECTIONS: dict[str, Section] = {}
_LOADED: list[bool] = []


def register_section(section: Section, *, replace: bool = False) -> Section:
    """Add a section to the registry.

    Raises:
        ValueError: its name or one of its keys is taken (unless ``replace``).
    """
    if not replace:
        taken = {key for other in _SECTIONS.values() if other.name != section.name for key in other.keys}
        clash = [key for key in section.keys if key in taken]
        if section.name in _SECTIONS or clash:
            raise ValueError(f"section {section.name!r} is registered already (or its keys {clash} are)")
    _SECTIONS[section.name] = section
    return section


def _load_entry_points() -> None:
    """Import the sections that packages declare as ``blockbuilder.sections`` entry points, once."""
    if _LOADED:
        return
    _LOADED.append(True)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS):
        found = point.load()
        if isinstance(found, Section) and found.name not in _SECTIONS:
            register_section(found)


def registered_sections() -> list[Section]:
    """Every section, in reading order."""
    _load_entry_points()
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))


def section_keys() -> tuple[str, ...]:
    """The top-level keys the sections own."""
    return tuple(key for section in registered_sections() for key in section.keys)
