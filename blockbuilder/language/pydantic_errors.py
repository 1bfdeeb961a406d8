"""A pydantic validation error, said as one ``SpecError`` at the offending key in plain words."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq, loc_of

_KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


#: A section's own wording of an error: ``words(error, model, steps) -> message`` (steps: the keys to it).
Words = Callable[[dict[str, Any], type[BaseModel], list[Any]], str]
_TYPE_ERRORS = ("literal_error", "float_type", "int_type", "bool_type", "string_type")
_TYPE_NAMES = ("str", "list[str]", "int", "float")


def spec_error(exc: ValidationError, raw: Any, where: Location | None, doc_path: str,
               spec_class: type[BaseModel], words: Words | None = None) -> SpecError:
    """The first pydantic error (an unknown key first) as a ``SpecError`` located at its key.

    The one translator of pydantic errors: every section and block spec goes through it.

    Args:
        exc: The validation error.
        raw: The located document the values came from (a ``Map``), for line and column.
        where: Where to point when the key has no location of its own.
        doc_path: The document path of ``raw``.
        spec_class: The model that refused, for did-you-mean suggestions.
        words: A section's own wording (``search:`` lists the choices); default :func:`plain_message`.
    """
    errors = _meant(list(exc.errors()), spec_class)
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    steps = list(error["loc"])
    if error["type"] in _TYPE_ERRORS and steps and steps[-1] in _TYPE_NAMES:
        steps = steps[:-1]  # the member of a union pydantic tried (str | list[str]) is not a place in the file
    members = _members(steps, spec_class)
    keys = [step for step, member in zip(steps, members) if not member]
    place, container, model = where, raw, spec_class
    for step, member in zip(steps, members):
        if member:
            model = member if isinstance(member, type) else model
            continue
        place = loc_of(container, step) or place
        if error["type"] == "extra_forbidden" and step == steps[-1] and isinstance(container, Map):
            place = container.key_loc(step) or place
        inner = _field_model(model, step)
        container = container[step] if _has(container, step) else None
        model = inner or model
    path = doc_path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in keys)
    if words is not None:
        return SpecError(words(dict(error), spec_class, keys), place or where, path)
    return SpecError(plain_message(error, model), place or where, path)


def _meant(errors: list[Any], spec_class: type[BaseModel]) -> list[Any]:
    """Of the errors of a value that fits no member of a union, those of the member it was meant for.

    Pydantic reports every member; the one kept (:func:`_misfit`) is the member of the value's kind
    (a mapping: the model, not ``'none' | 'batchnorm'``) with the fewest complaints, the first on a tie.
    """
    unions: dict[tuple[Any, ...], dict[Any, list[Any]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        for at, member in enumerate(_members(list(loc), spec_class)):
            if member:
                unions.setdefault(loc[:at], {}).setdefault(loc[at], []).append(error)
    dropped: set[int] = set()
    for prefix in sorted(unions, key=len):  # a union around another first
        rivals = {member: kept for member, group in unions[prefix].items()
                  if (kept := [e for e in group if id(e) not in dropped])}
        if len(rivals) > 1:
            best = min(rivals, key=lambda member: _misfit(member, rivals[member], len(prefix)))
            dropped |= {id(e) for member, group in rivals.items() if member != best for e in group}
    return [e for e in errors if id(e) not in dropped]


def _misfit(member: Any, errors: list[Any], at: int) -> tuple[bool, bool, int]:
    """How badly a value misses one member of a union (smaller: the member more likely meant): refused
    as a whole for its kind (a string where a number goes), of another kind than the member's tag names,
    and how many complaints."""
    whole = [e for e in errors if len(e["loc"]) == at + 1]  # refused as a whole, not in a part
    other_kind = bool(whole) and all(e["type"].endswith("_type") or (e["type"] == "literal_error"
                                                                     and not isinstance(e.get("input"), str))
                                     for e in whole)
    value = whole[0].get("input") if whole else None
    return other_kind, not _kin(str(member), value), len(errors)


def _kin(member: str, value: Any) -> bool:
    """Whether a union member's tag names the kind of ``value`` (``constrained-int`` for 1.5)."""
    if isinstance(value, bool):
        return member.startswith("bool")
    if isinstance(value, (int, float)):
        return "int" in member.split("[")[0] or "float" in member.split("[")[0]
    if isinstance(value, str):
        return member.startswith(("literal", "str"))
    if isinstance(value, (list, tuple)):
        return member.startswith(("tuple", "list"))
    return isinstance(value, dict) and (member.isidentifier() or member.startswith("dict"))


def _members(steps: list[Any], spec_class: type[BaseModel]) -> list[type[BaseModel] | bool]:
    """For each step of a pydantic location, the union member it names (a model class, or ``True``
    for a tag like ``constrained-int``), or ``False`` for a key or index of the file."""
    found: list[type[BaseModel] | bool] = []
    annotation: Any = spec_class
    for step in steps:
        choices = _union_args(annotation)
        if isinstance(step, str) and (choices or (annotation is None and _union_member(step))):
            named = next((m for m in choices if isinstance(m, type) and issubclass(m, BaseModel)
                          and m.__name__ == step), None)
            found.append(named or True)
            annotation = named  # a member named by its type (tuple[int, int]): not followed inside
            continue
        found.append(False)
        annotation = _inside(annotation, step)
    return found


def _union_args(annotation: Any) -> tuple[Any, ...]:
    """The members of a union type (``None`` aside: pydantic does not make ``X | None`` a union)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _union_args(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return ()
    members = tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return members if len(members) > 1 else ()


def _inside(annotation: Any, step: Any) -> Any:
    """The type of the value at ``step`` in a value of type ``annotation`` (``None``: not known)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(step) if isinstance(step, str) else None
        return getattr(field, "annotation", None)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Annotated, typing.Union, types.UnionType):  # X | None, or X with constraints
        inner = [a for a in args[:1 if origin is typing.Annotated else None] if a is not type(None)]
        return _inside(inner[0], step) if len(inner) == 1 else None
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and isinstance(step, int) and args:
        return args[0] if len(args) == 1 or args[-1] is Ellipsis else args[step] if step < len(args) else None
    return None


def plain_message(error: Any, spec_class: type[BaseModel]) -> str:
    """Pydantic's message for one error, in the words blockbuilder uses."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    key = next((s for s in reversed(error["loc"]) if isinstance(s, str) and not _union_member(s)), "")
    if kind == "extra_forbidden":
        return f"unknown key '{key}'{did_you_mean(key, spec_class.model_fields)}"
    if kind == "missing":
        return f"missing required key '{key}'"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return f"expected one of {expected}, got {shown(value)}{did_you_mean(value, choices)}"
    if kind == "greater_than" and ctx.get("gt") == 0 and _is_int(value):
        field = getattr(spec_class, "model_fields", {}).get(key)
        if getattr(field, "annotation", None) is int:  # the field's type decides, not the value's
            return f"expected a positive integer, got {value}"
        return f"expected a number greater than 0, got {value}"
    if kind == "value_error":  # a validator's own sentence, already in blockbuilder's words
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    for prefix, name in _KIND_NAMES.items():
        if kind.startswith(prefix + "_"):
            return f"expected {name}, got {shown(value)}"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]}, got {shown(value)}"


def _union_member(step: Any) -> bool:
    """Pydantic names the member of a union it tried (``constrained-int``, ``tuple[...]``): not a key."""
    return isinstance(step, str) and not step.isidentifier()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, (list, Seq)) and isinstance(key, int) and 0 <= key < len(container)


def _field_model(model: Any, step: Any) -> type[BaseModel] | None:
    """The model of the value at ``step`` inside ``model`` (through ``X | None``), if it is one."""
    annotation = _inside(model, step)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and not _union_args(annotation):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
