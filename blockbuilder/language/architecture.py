"""``load``: a path or zoo name -> a checked :class:`Architecture` (no TensorFlow involved).

The pipeline, each step a function of the previous step's result::

    read_document (extends, --set)  ->  Map
    from_document: variables -> input, classes, name -> expand network -> budgets -> train spec
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


from blockbuilder.blocks import Node, flow
from blockbuilder.errors import Location, SpecError, shown
from blockbuilder.language.budgets import Limits
from blockbuilder.language.document import Map, Seq, dump, load_text
from blockbuilder.language.expand import Expander
from blockbuilder.language.resolve import check_top_level, plain, read_document
from blockbuilder.language.scope import Scope, recursion_room
from blockbuilder.language.sections import Section, SectionInput, registered_sections, section_keys
from blockbuilder.language.substitute import substitute

MAX_INPUT_SIZE = 8192
INPUT_NAME = re.compile(r"[A-Za-z_][\w-]{0,99}")
NETWORK_NAME = re.compile(r"[\w][\w.-]{0,99}", re.ASCII)  # also the default name of its .keras file


@dataclass(frozen=True)
class Architecture:
    """A resolved, validated architecture: everything needed to build, summarise or train it.

    Attributes:
        name: From ``name:``, else the file name.
        source: The file it was read from (``None`` for text).
        document: The merged document (``extends`` and ``--set`` applied), as written.
        input_shape: ``(height, width, channels)``.
        classes: Number of classes (``None`` when the file does not say).
        root: The expanded tree of blocks, with inferred shapes.
        sections: What the registered sections read, by name, also readable as attributes:
            ``train`` (a ``TrainSpec``), ``weights`` (``None``: freshly initialised), ``freeze``
            (``None``: every block trains) ...
        meta: Free-form notes (paper, reported accuracy ...).
        input_name: The name of the model's input.
    """

    name: str
    source: Path | None
    document: Map
    input_shape: tuple[int, ...]
    classes: int | None
    root: Node[Any]
    sections: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    input_name: str = "input"

    def with_sections(self, **values: Any) -> Architecture:
        """A copy with some section values replaced (``arch.with_sections(weights=None)``)."""
        return replace(self, sections={**self.sections, **values})

    def __getattr__(self, name: str) -> Any:
        """What a section read (``arch.train``, ``arch.weights``, ``arch.freeze`` ...)."""
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"'Architecture' has no attribute or section value {name!r}")

    @property
    def depth(self) -> int:
        """Weight layers (conv, dense) on the longest input-to-output path."""
        return block_depth(self.root)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.root.output_shape

    def to_yaml(self) -> str:
        """The resolved document (``extends`` merged, ``--set`` applied) as YAML text."""
        return document_yaml(self.document)

    def __repr__(self) -> str:  # the dataclass's would print the whole document and block tree
        classes = f", {self.classes} classes" if self.classes is not None else ""
        return f"<Architecture {self.name}: input {self.input_shape}{classes}, depth {self.depth}>"


def document_yaml(document: Map) -> str:
    """A merged document as YAML text."""
    text: str = dump(plain(document), sort_keys=False, default_flow_style=None, width=100)
    return text


def block_depth(node: Node[Any]) -> int:
    """Depth of one block by the weight-layer rule: the longest path, also through ``from:`` (the inputs of a
    block measured alone, from outside it, count as its input)."""
    at: dict[str, int] = {}

    def step(n: Node[Any], depth: int) -> int:
        if n.block.chains_body:  # written in its place: its blocks may read blocks before it
            return flow(n.group("body"), depth, at, step, max, 0)
        return depth + n.block.depth(n, depth_of)

    def depth_of(nodes: tuple[Node[Any], ...]) -> int:
        return flow(nodes, 0, at, step, max, 0)

    with recursion_room():
        return depth_of((node,))


def load(path_or_name: str | Path, overrides: Iterable[str] = (), limits: Limits | None = None) -> Architecture:
    """Read, merge, expand and check an architecture.

    Args:
        path_or_name: A YAML file, or the name of an architecture in the zoo (``resnet50``).
        overrides: ``--set`` style ``path.to.key=value`` strings.
        limits: Budgets (model parameters, activation memory ...); the defaults of :class:`Limits`.

    Raises:
        SpecError: for a bad file (with file, line and column).
        UsageError: when the file or zoo name does not exist, or an override is malformed.
    """
    document, path = read_document(path_or_name, overrides)
    return from_document(document, path, limits)


def loads(text: str, overrides: Iterable[str] = (), filename: str = "<string>",
          limits: Limits | None = None) -> Architecture:
    """Like :func:`load`, for YAML text (``extends`` is resolved relative to the working directory)."""
    from blockbuilder.language.resolve import apply_override, merge
    from blockbuilder.language.resolve import read_document as read

    document = load_text(text, filename)
    if not isinstance(document, Map):
        raise SpecError("an architecture file is a mapping (name, input, classes, network ...)",
                        Location(filename, 1, 1))
    where = document.loc_of("extends")
    base = document.pop("extends", None)
    if base is not None and not isinstance(base, str):  # as load refuses it (resolve._with_bases)
        raise SpecError("'extends' names one file or zoo architecture", where, "extends")
    if isinstance(base, str):
        document = merge(read(base)[0], document)
    for override in overrides:
        apply_override(document, override)
    return from_document(document, None, limits)


def from_document(document: Map, path: Path | None, limits: Limits | None = None) -> Architecture:
    """Check a merged document, expand its network and read its sections (:mod:`language.sections`)."""
    limits = limits or Limits()
    sections = registered_sections()
    check_top_level(document, section_keys())
    scope = variables(document)
    input_shape = _input_shape(document, scope)
    classes = _classes(document, scope, sections)
    if classes is not None:
        scope = {**scope, "classes": classes}
    name = _name(document, scope, path)
    input_name = _input_name(document)
    expander = Expander(document, limits.blocks)
    root = expander.network(document["network"], input_shape, Scope(scope), input_name, document.loc_of("network"))
    for section in sections:  # a section may give the network again, changed (head: replaces the head)
        network = section.network(document, root) if section.network is not None else None
        if network is not None:
            root = Expander(document, limits.blocks).network(network, input_shape, Scope(scope), input_name,
                                                             document.loc_of("network"))
    limits.check_model(root, document.loc_of("network"))
    read: dict[str, Any] = {}
    for section in sections:
        read.update(section.read(SectionInput(document, scope, root, path, dict(read))))
    return Architecture(name=name, source=path, document=document, input_shape=input_shape, classes=classes,
                        root=root, sections=read, meta=plain(document.get("meta") or {}), input_name=input_name)


def variables(document: Map) -> dict[str, Any]:
    """The global names: ``classes`` when it is a number, then each variable in order."""
    section = document.get("variables") or Map()
    if not isinstance(section, Map):
        raise SpecError("'variables' maps names to values", document.loc_of("variables"), "variables")
    scope: dict[str, Any] = {}
    if isinstance(document.get("classes"), int):
        scope["classes"] = document["classes"]
    for key, value in section.items():
        if not str(key).isidentifier():
            raise SpecError(f"variable name {shown(key)} is not an identifier", section.key_loc(key),
                            f"variables.{key}")
        scope[key] = _plain(substitute(value, scope, section.loc_of(key), f"variables.{key}"))
    return scope


def _plain(value: Any) -> Any:
    return plain(value) if isinstance(value, (Map, Seq)) else value


def _input_shape(document: Map, scope: Mapping[str, Any]) -> tuple[int, ...]:
    value = _plain(substitute(document["input"], scope, document.loc_of("input"), "input"))
    if isinstance(value, dict) and "shape" in value:
        value = value["shape"]
    ok = isinstance(value, list) and len(value) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INPUT_SIZE for v in value)
    if not ok:
        raise SpecError(f"expected [height, width, channels] of positive integers (at most {MAX_INPUT_SIZE}), "
                        f"got {shown(value)}", document.loc_of("input"), "input")
    return tuple(value)


def _classes(document: Map, scope: Mapping[str, Any], sections: list[Section]) -> int | None:
    """``classes:``; ``auto`` (or left out) asks the sections that can count their data's classes."""
    counters = [section.classes for section in sections if section.classes is not None]
    if "classes" not in document:  # a file that trains on a folder or npz takes the count from it
        return next((n for n in (count(document, False) for count in counters) if n is not None), None)
    if document["classes"] == "auto":
        for count in counters:
            found = count(document, True)
            if found is not None:
                return found
        raise SpecError("classes: auto, but no section can count the classes here; write the number",
                        document.loc_of("classes"), "classes")
    value = substitute(document["classes"], scope, document.loc_of("classes"), "classes")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"expected a positive integer, got {shown(value)}", document.loc_of("classes"), "classes")
    return value


def _name(document: Map, scope: Mapping[str, Any], path: Path | None) -> str:
    """``name:`` (a name Keras takes for a model), else the file's name."""
    if document.get("name") is None:
        return path.stem if path else "model"
    value = substitute(document["name"], scope, document.loc_of("name"), "name")
    if not isinstance(value, str) or not NETWORK_NAME.fullmatch(value):
        raise SpecError(f"a network name is letters, digits, '_', '-' and '.' (at most 100), got {shown(value)}",
                        document.loc_of("name"), "name")
    return value


def _input_name(document: Map) -> str:
    value = document.get("input_name", "input")
    if not isinstance(value, str) or not INPUT_NAME.fullmatch(value):
        raise SpecError(f"an input name is letters, digits, '_' and '-' (at most 100), got {shown(value)}",
                        document.loc_of("input_name"), "input_name")
    return value


def resolve_report(path_or_name: str | Path, overrides: Iterable[str] = (),
                   limits: Limits | None = None) -> tuple[str, SpecError | None]:
    """The merged document as YAML, and the error that validating it gives (``None`` when it is valid).

    ``blockbuilder resolve`` prints both, so a document that fails can still be looked at.

    Raises:
        SpecError / UsageError: when the document cannot even be read and merged.
    """
    document, path = read_document(path_or_name, overrides)
    text = document_yaml(document)
    try:
        from_document(document, path, limits)
    except SpecError as exc:
        return text, exc
    return text, None


__all__ = ["Architecture", "block_depth", "from_document", "load", "loads", "resolve_report"]
