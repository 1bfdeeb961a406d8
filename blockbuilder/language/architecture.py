"""``load``: a path or zoo name -> a checked :class:`Architecture` (no TensorFlow involved).

The pipeline, each step a function of the previous step's result::

    read_document (extends, --set)  ->  Map
    from_document: variables -> input, classes, name -> expand network -> budgets -> train spec
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from blockbuilder.blocks import Node
from blockbuilder.errors import Location, SpecError, shown
from blockbuilder.language.budgets import Limits
from blockbuilder.language.document import Map, Seq, load_text
from blockbuilder.language.expand import Expander
from blockbuilder.language.pydantic_errors import spec_error
from blockbuilder.language.resolve import check_top_level, plain, read_document
from blockbuilder.language.scope import Scope
from blockbuilder.language.substitute import substitute
from blockbuilder.transfer.settings import Freeze, Weights, head_network, read_settings

MAX_INPUT_SIZE = 8192
INPUT_NAME = re.compile(r"[A-Za-z_][\w-]{0,99}")


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
        train: The ``train:`` section as a validated ``TrainSpec``.
        meta: Free-form notes (paper, reported accuracy ...).
        input_name: The name of the model's input.
        weights: Where the starting weights come from (``weights:``; ``None``: freshly initialised).
        freeze: Which blocks do not train (``freeze:``; ``None``: every block trains).
    """

    name: str
    source: Path | None
    document: Map
    input_shape: tuple[int, ...]
    classes: int | None
    root: Node[Any]
    train: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    input_name: str = "input"
    weights: Weights | None = None
    freeze: Freeze | None = None

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
    text: str = yaml.safe_dump(plain(document), sort_keys=False, default_flow_style=None, width=100)
    return text


def block_depth(node: Node[Any]) -> int:
    """Depth of one block by the weight-layer rule."""

    def depth_of(nodes: tuple[Node[Any], ...]) -> int:
        return sum(n.block.depth(n, depth_of) for n in nodes)

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
    base = document.pop("extends", None)
    if isinstance(base, str):
        document = merge(read(base)[0], document)
    for override in overrides:
        apply_override(document, override)
    return from_document(document, None, limits)


def from_document(document: Map, path: Path | None, limits: Limits | None = None) -> Architecture:
    """Check a merged document and expand its network."""
    limits = limits or Limits()
    check_top_level(document)
    scope = variables(document)
    input_shape = _input_shape(document, scope)
    classes = _classes(document, scope)
    if classes is not None:
        scope = {**scope, "classes": classes}
    name = substitute(document.get("name") or (path.stem if path else "model"), scope, document.loc_of("name"),
                      "name")
    input_name = _input_name(document)
    expander = Expander(document, limits.blocks)
    root = expander.network(document["network"], input_shape, Scope(scope), input_name, document.loc_of("network"))
    if "head" in document:  # the network again, its blocks after the backbone replaced by the head
        root = Expander(document, limits.blocks).network(head_network(document, root), input_shape, Scope(scope),
                                                         input_name, document.loc_of("network"))
    limits.check_model(root, document.loc_of("network"))
    train = _train(document, scope)
    weights, freeze = read_settings(document, root, train)
    return Architecture(name=str(name), source=path, document=document, input_shape=input_shape, classes=classes,
                        root=root, train=train, meta=plain(document.get("meta") or {}),
                        input_name=input_name, weights=weights, freeze=freeze)


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


def _classes(document: Map, scope: Mapping[str, Any]) -> int | None:
    if "classes" not in document:  # a file that trains on a folder or npz takes the count from it
        return _classes_of_data(document, required=False)
    if document["classes"] == "auto":
        return _classes_of_data(document, required=True)
    value = substitute(document["classes"], scope, document.loc_of("classes"), "classes")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"expected a positive integer, got {shown(value)}", document.loc_of("classes"), "classes")
    return value


def _classes_of_data(document: Map, required: bool) -> int | None:
    """``classes: auto``: the number of classes of ``train.dataset`` (digits, a folder or an npz file)."""
    from blockbuilder.errors import DataError
    from blockbuilder.training.sources import class_names_of, locate

    section = document.get("train")
    dataset = section.get("dataset") if isinstance(section, Map) else "digits"
    where = document.loc_of("classes")
    if not isinstance(dataset, str) or not dataset.startswith(("folder:", "npz:", "digits")):
        if not required:
            return None
        raise SpecError(f"classes: auto counts the classes of train.dataset when it is digits, a folder: or an "
                        f"npz: file; write the number for {shown(dataset)}", where, "classes")
    if dataset == "digits" and not required:
        return None
    source = locate(dataset, section.loc_of("dataset"))[0] if isinstance(section, Map) else dataset
    try:
        names = class_names_of(source)
    except DataError as problem:
        if not required:
            return None
        raise SpecError(f"classes: auto cannot count the classes: {problem}", where, "classes") from None
    return len(names) if names else None


def _input_name(document: Map) -> str:
    value = document.get("input_name", "input")
    if not isinstance(value, str) or not INPUT_NAME.fullmatch(value):
        raise SpecError(f"an input name is letters, digits, '_' and '-' (at most 100), got {shown(value)}",
                        document.loc_of("input_name"), "input_name")
    return value


def _train(document: Map, scope: Mapping[str, Any]) -> Any:
    section = document.get("train") or Map(loc=document.loc_of("train"))
    if not isinstance(section, Map):
        raise SpecError("'train' is a mapping of training settings", document.loc_of("train"), "train")
    values = substitute(section, scope, section.loc, "train")
    if isinstance(values, Map) and "epochs" in values and "phases" in values and _inherited_epochs(document, section):
        values = Map({k: v for k, v in values.items() if k != "epochs"}, loc=values.loc)
        values.locs = {k: v for k, v in section.locs.items() if k != "epochs"}
    from blockbuilder.training.spec import TrainSpec

    try:
        return TrainSpec.model_validate(plain(values))
    except ValidationError as exc:
        raise spec_error(exc, values, section.loc, "train", TrainSpec) from None


def _layer(document: Map, where: Location | None) -> int:
    """How late a value's layer comes: a base file 0, the file itself 1, the command line (``--set``) 2."""
    file = where.file if where is not None else ""
    if file.startswith("--set "):
        return 2
    return 1 if document.loc is not None and file == document.loc.file else 0


def _inherited_epochs(document: Map, section: Map) -> bool:
    """Whether ``train.epochs`` gives way to ``train.phases`` (docs/training.md, *Phases*): it does when
    it comes from an earlier layer than the phases (a file that ``extends:`` the one with ``epochs``),
    or from another base file; written beside them or later, it must equal their total."""
    epochs, phases = section.loc_of("epochs"), section.loc_of("phases")
    if epochs is None or phases is None or epochs.file == phases.file:
        return False
    return _layer(document, epochs) <= _layer(document, phases)


def resolve_report(path_or_name: str | Path, overrides: Iterable[str] = ()) -> tuple[str, SpecError | None]:
    """The merged document as YAML, and the error that validating it gives (``None`` when it is valid).

    ``blockbuilder resolve`` prints both, so a document that fails can still be looked at.

    Raises:
        SpecError / UsageError: when the document cannot even be read and merged.
    """
    document, path = read_document(path_or_name, overrides)
    text = document_yaml(document)
    try:
        from_document(document, path)
    except SpecError as exc:
        return text, exc
    return text, None


__all__ = ["Architecture", "block_depth", "from_document", "load", "loads", "resolve_report"]
