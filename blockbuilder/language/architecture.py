"""``load``: a path or zoo name -> a checked :class:`Architecture` (no TensorFlow involved)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blockbuilder.language.document import Map, Seq, load_text
from blockbuilder.errors import Location, SpecError
from blockbuilder.language.expand import Expander, spec_error_from_pydantic
from blockbuilder.blocks.registry import Node, get_block
from blockbuilder.language.resolve import check_top_level, plain, read_document

MAX_INPUT_SIZE = 8192


@dataclass
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
    """

    name: str
    source: Path | None
    document: Map
    input_shape: tuple[int, ...]
    classes: int | None
    root: Node
    train: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    input_name: str = "input"

    @property
    def depth(self) -> int:
        """Weight layers (conv, dense) on the longest input-to-output path."""
        return block_depth(self.root)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.root.output_shape

    def to_yaml(self) -> str:
        """The resolved document (``extends`` merged, ``--set`` applied) as YAML text."""
        return yaml.safe_dump(plain(self.document), sort_keys=False, default_flow_style=None, width=100)


def block_depth(node: Node) -> int:
    """Depth of one block by the weight-layer rule."""

    def depth_of(nodes: list[Node]) -> int:
        return sum(get_block(n.type).depth(n, depth_of) for n in nodes)

    return depth_of([node])


def load(path_or_name: str | Path, overrides: Iterable[str] = ()) -> Architecture:
    """Read, merge, expand and check an architecture.

    Args:
        path_or_name: A YAML file, or the name of an architecture in the zoo (``resnet50``).
        overrides: ``--set`` style ``path.to.key=value`` strings.

    Raises:
        SpecError: for a bad file (with file, line and column).
        UsageError: when the file or zoo name does not exist, or an override is malformed.
    """
    document, path = read_document(path_or_name, overrides)
    return from_document(document, path)


def loads(text: str, overrides: Iterable[str] = (), filename: str = "<string>") -> Architecture:
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
    return from_document(document, None)


def from_document(document: Map, path: Path | None) -> Architecture:
    """Check a merged document and expand its network."""
    check_top_level(document)
    expander = Expander(document)
    scope = _variables(document, expander)
    input_shape = _input_shape(document, expander, scope)
    classes = _classes(document, expander, scope)
    if classes is not None:
        scope["classes"] = classes
    name = expander.substitute(document.get("name") or (path.stem if path else "model"),
                               document.loc_of("name"), "name")
    root = expander.expand_network(document["network"], input_shape, scope)
    train = _train(document, expander)
    meta = plain(document.get("meta") or {})
    return Architecture(name=str(name), source=path, document=document, input_shape=input_shape,
                        classes=classes, root=root, train=train, meta=meta,
                        input_name=str(document.get("input_name", "input")))


def _variables(document: Map, expander: Expander) -> dict[str, Any]:
    variables = document.get("variables") or Map()
    if not isinstance(variables, Map):
        raise SpecError("'variables' maps names to values", document.loc_of("variables"), "variables")
    scope: dict[str, Any] = {}
    if isinstance(document.get("classes"), int):
        scope["classes"] = document["classes"]
    for key, value in variables.items():
        if not str(key).isidentifier():
            raise SpecError(f"variable name '{key}' is not an identifier", variables.loc_of(key),
                            f"variables.{key}")
        expander.scope = scope
        scope[key] = expander.substitute(value, variables.loc_of(key), f"variables.{key}")
    expander.scope = scope
    return scope


def _input_shape(document: Map, expander: Expander, scope: dict[str, Any]) -> tuple[int, ...]:
    value = expander.substitute(document["input"], document.loc_of("input"), "input")
    if isinstance(value, Map) and "shape" in value:
        value = value["shape"]
    ok = isinstance(value, (list, Seq)) and len(value) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INPUT_SIZE for v in value)
    if not ok:
        raise SpecError(f"expected [height, width, channels] of positive integers (at most "
                        f"{MAX_INPUT_SIZE}), got {plain(value)!r}", document.loc_of("input"), "input")
    return tuple(value)


def _classes(document: Map, expander: Expander, scope: dict[str, Any]) -> int | None:
    if "classes" not in document:
        return None
    value = expander.substitute(document["classes"], document.loc_of("classes"), "classes")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"expected a positive integer, got {value!r}", document.loc_of("classes"), "classes")
    return value


def _train(document: Map, expander: Expander) -> Any:
    section = document.get("train") or Map(loc=document.loc_of("train"))
    if not isinstance(section, Map):
        raise SpecError("'train' is a mapping of training settings", document.loc_of("train"), "train")
    values = expander.substitute(section, section.loc, "train")
    try:
        from blockbuilder.training.spec import TrainSpec
    except ImportError:  # pragma: no cover - training support not installed
        return plain(values)
    from pydantic import ValidationError

    try:
        return TrainSpec.model_validate(plain(values))
    except ValidationError as exc:
        error = exc.errors()[0]
        raw: Any = values
        for step in error["loc"][:-1]:
            raw = raw[step] if isinstance(raw, (Map, Seq)) and _has(raw, step) else raw
        exc_path = "train" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"][:-1])
        raise _nested(exc, raw, section.loc, exc_path) from None


def _has(container: Any, key: Any) -> bool:
    return key in container if isinstance(container, dict) else isinstance(key, int) and key < len(container)


def _nested(exc: Any, raw: Any, where: Location | None, path: str) -> SpecError:
    from blockbuilder.training.spec import TrainSpec

    error = exc.errors()[0]
    model = TrainSpec
    for step in error["loc"][:-1]:
        annotation = getattr(model, "model_fields", {}).get(step)
        inner = getattr(annotation, "annotation", None)
        model = inner if hasattr(inner, "model_fields") else model
    trimmed = type("E", (), {"errors": lambda self: [{**error, "loc": error["loc"][-1:]}]})()
    return spec_error_from_pydantic(trimmed, raw if isinstance(raw, Map) else Map(), where, path, model)
