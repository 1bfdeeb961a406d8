"""User-defined blocks: ``blocks:`` entries with typed parameters and a body written in YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blockbuilder.blocks import get_block
from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq, loc_of

PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "number": (int, float), "bool": bool, "str": str, "list": list,
    "block": (str, dict), "any": object,
}
DEFINITION_KEYS = ("params", "inputs", "body", "doc")
INPUT_NAME = re.compile(r"[A-Za-z_][\w-]{0,99}")
MAX_INPUTS = 64


@dataclass(frozen=True)
class Param:
    """One parameter: its type name, whether it is required, its default."""

    kind: str
    required: bool
    default: Any = None


@dataclass(frozen=True)
class UserBlock:
    """A block defined in YAML under ``blocks:``."""

    name: str
    loc: Location | None
    body: Any
    body_loc: Location | None
    params: Mapping[str, Param]
    inputs: tuple[str, ...] = ()  # names of its inputs in its body (none: one input, unnamed)

    @property
    def doc_path(self) -> str:
        return f"blocks.{self.name}"

    def bind(self, args: Map, where: Location | None, path: str) -> dict[str, Any]:
        """Check call arguments against the parameters; return the parameter values."""
        for key in args:
            if key not in self.params:
                raise SpecError(f"block '{self.name}' has no parameter {shown(key)}"
                                f"{did_you_mean(key, self.params)}", args.loc_of(key), f"{path}.{key}")
        values = {}
        for name, param in self.params.items():
            if name not in args:
                if param.required:
                    raise SpecError(f"block '{self.name}' needs parameter '{name}'", where, path)
                values[name] = param.default
                continue
            value = args[name]
            if not _fits(value, param.kind):
                raise SpecError(f"expected {param.kind} for parameter '{name}', got {shown(value)}",
                                args.loc_of(name), f"{path}.{name}")
            values[name] = value
        return values


def _fits(value: Any, kind: str) -> bool:
    """Strict: a boolean is never a number, a string never a number."""
    if kind == "any":
        return True
    if isinstance(value, bool):
        return kind == "bool"
    return isinstance(value, PARAM_TYPES[kind])


def user_blocks(document: Map) -> dict[str, UserBlock]:
    """The ``blocks:`` section, checked: names, parameter declarations, bodies."""
    blocks = document.get("blocks") or Map()
    if not isinstance(blocks, Map):
        raise SpecError("'blocks' maps block names to definitions", loc_of(document, "blocks"), "blocks")
    result = {}
    for name, definition in blocks.items():
        where = blocks.key_loc(name)
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"block name {shown(name)} is not an identifier", where, f"blocks.{name}")
        if get_block(name) is not None:
            raise SpecError(f"'{name}' is a built-in block type; choose another name", where, f"blocks.{name}")
        result[name] = _definition(name, definition, blocks.loc_of(name) or where)
    return result


def _definition(name: str, definition: Any, where: Location | None) -> UserBlock:
    path = f"blocks.{name}"
    if not isinstance(definition, Map):
        raise SpecError("a block definition is a mapping with 'params' and 'body'", where, path)
    for key in definition:
        if key not in DEFINITION_KEYS:
            raise SpecError(f"unknown key {shown(key)}{did_you_mean(key, DEFINITION_KEYS)}",
                            definition.key_loc(key), f"{path}.{key}")
    if "body" not in definition:
        raise SpecError("a block definition needs a 'body'", where, path)
    params = definition.get("params")
    return UserBlock(name, where, definition["body"], definition.loc_of("body"),
                     _params(Map(loc=where) if params is None else params, definition.loc_of("params"),
                             f"{path}.params"), _inputs(definition, f"{path}.inputs"))


def _inputs(definition: Map, path: str) -> tuple[str, ...]:
    """``inputs: [x, p]``: the names its body reads its inputs by (``from: p``), the first where it starts."""
    if "inputs" not in definition:
        return ()
    value, where = definition["inputs"], definition.loc_of("inputs")
    names = list(value) if isinstance(value, Seq) else [value]
    if not 1 <= len(names) <= MAX_INPUTS or not all(isinstance(n, str) and INPUT_NAME.fullmatch(n) for n in names):
        raise SpecError(f"'inputs' names the block's inputs (letters, digits, '_' and '-'; 1 to {MAX_INPUTS} "
                        f"of them), got {shown(value)}", where, path)
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise SpecError(f"input '{twice}' is named twice", where, path)
    return tuple(names)


def _params(params: Any, where: Location | None, path: str) -> dict[str, Param]:
    if not isinstance(params, Map):
        raise SpecError(f"'params' maps each parameter to a type ({', '.join(PARAM_TYPES)}) or a default "
                        f"value, got {shown(params)}", where, path)
    parsed = {}
    for name, declared in params.items():
        at, at_path = params.loc_of(name), f"{path}.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"parameter name {shown(name)} is not an identifier", params.key_loc(name), at_path)
        if isinstance(declared, Map):
            if set(declared) - {"type", "default"} or "type" not in declared:
                raise SpecError("write a parameter as a type, a default, or {type: T, default: V}", at, at_path)
            kind = _kind(declared["type"], declared.loc_of("type"), at_path)
            if "default" in declared and declared["default"] is not None and not _fits(declared["default"], kind):
                raise SpecError(f"the default {shown(declared['default'])} is not {kind}", declared.loc_of("default"),
                                f"{at_path}.default")
            parsed[name] = Param(kind, "default" not in declared, declared.get("default"))
        elif isinstance(declared, str) and declared in PARAM_TYPES:
            parsed[name] = Param(declared, True)
        else:
            parsed[name] = Param("any", False, declared)
    return parsed


def _kind(name: Any, where: Location | None, path: str) -> str:
    if name not in PARAM_TYPES:
        raise SpecError(f"unknown parameter type {shown(name)}{did_you_mean(name, PARAM_TYPES)} "
                        f"(types: {', '.join(PARAM_TYPES)})", where, path)
    return str(name)
