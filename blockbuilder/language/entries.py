"""A block entry as written (:class:`Entry`) and the small pure steps of expanding one: its condition,
its label, the file's ``defaults:``, validation against a block's spec, and how messages name inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from blockbuilder.blocks import Block, block_names, get_block
from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq, loc_of
from blockbuilder.language.graph import Source
from blockbuilder.language.pydantic_errors import spec_error
from blockbuilder.language.resolve import plain
from blockbuilder.language.scope import Scope
from blockbuilder.language.substitute import substitute
from blockbuilder.language.user_blocks import UserBlock

__all__ = ["Entry", "condition", "entry_label", "input_count", "joined", "located", "plain_top", "read_defaults",
           "source_keys", "used_at", "validate_spec"]


@dataclass(frozen=True)
class Entry:
    """One block entry as written: its type, arguments (shorthands made full) and written name."""

    type: str
    args: Map
    name: str | None
    where: Location | None
    doc_path: str
    name_loc: Location | None
    sources: tuple[str, ...] | None = None  # from: as written (None: the previous block)
    source_locs: tuple[Location | None, ...] = ()


def located(value: Any, where: Location | None) -> Any:
    """Plain lists and dicts (a block's ``normalize`` may make them) as located ``Seq``/``Map``."""
    if isinstance(value, (Map, Seq)) or not isinstance(value, (list, dict)):
        return value
    if isinstance(value, dict):
        result = Map({k: located(v, where) for k, v in value.items()}, loc=where)
        result.locs = {k: where for k in value}
        return result
    seq = Seq([located(v, where) for v in value], loc=where)
    seq.locs = [where] * len(value)
    return seq


def validate_spec(block: Block[Any], values: Mapping[str, Any], raw: Map, where: Location | None,
              doc_path: str) -> Any:
    try:
        return block.Spec.model_validate(dict(values))
    except ValidationError as exc:
        raise spec_error(exc, raw, where, doc_path, block.Spec) from None


def condition(item: Map, scope: Scope, doc_path: str) -> bool:
    """An entry's ``if:``, evaluated: true keeps the entry, false leaves it out; anything else is an error."""
    where, path = item.loc_of("if"), f"{doc_path}.if"
    value = substitute(item["if"], scope.names, where, path)
    if not isinstance(value, bool):
        raise SpecError(f"'if' is true or false (a condition like \"${{stride == 2}}\"), got {shown(plain(value))}",
                        where, path)
    return value


def entry_label(entry: Entry) -> str:
    """The base of a block's automatic name: its type, or an activation's function (``relu1``)."""
    function = entry.args.get("function")
    if entry.type == "activation" and isinstance(function, str) and function.isidentifier() and function != "none":
        return function
    return entry.type


def read_defaults(document: Map, users: Mapping[str, UserBlock]) -> Map:
    defaults = document.get("defaults") or Map()
    if not isinstance(defaults, Map):
        raise SpecError("'defaults' maps block types to their default arguments", loc_of(document, "defaults"),
                        "defaults")
    for key, value in defaults.items():
        if not (isinstance(key, str) and (key in users or get_block(key) is not None)):
            raise SpecError(f"unknown block type {shown(key)}{did_you_mean(key, [*block_names(), *users])}",
                            defaults.key_loc(key), f"defaults.{key}")
        if not isinstance(value, Map):
            raise SpecError("defaults of a block type are a mapping of its arguments", defaults.loc_of(key),
                            f"defaults.{key}")
    return defaults


def used_at(exc: SpecError, name: str, where: Location | None) -> SpecError:
    if " (in block '" in exc.message or where is None:
        return exc
    return SpecError(f"{exc.message} (in block '{name}' used at {where})", exc.location, exc.path)


def plain_top(values: Map) -> dict[str, Any]:
    return {key: plain(value) for key, value in values.items()}


def source_keys(inputs: tuple[Source, ...] | None) -> tuple[str, ...]:
    return tuple(source.key for source in inputs) if inputs else ()


def input_count(low: int, high: int) -> str:
    if low == high:
        return "one input" if low == 1 else f"{low} inputs"
    return f"{low} to {high} inputs"


def joined(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def known_block(block_type: str) -> Block[Any]:
    """The registered block type ``block_type``, which the reading of the entry has checked exists."""
    block = get_block(block_type)
    assert block is not None, block_type
    return block


def sequence_spec() -> Any:
    """The arguments of a plain ``sequence`` (the wrapper of a body, of the network)."""
    return known_block("sequence").Spec()
