"""A pydantic validation error, said as one ``SpecError`` at the offending key in plain words."""

from __future__ import annotations

import re
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
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    steps = list(error["loc"])
    if error["type"] in _TYPE_ERRORS and steps and steps[-1] in _TYPE_NAMES:
        steps = steps[:-1]  # the member of a union pydantic tried (str | list[str]) is not a place in the file
    place, container, model = where, raw, spec_class
    for step in steps:
        if _union_member(step):
            continue
        place = loc_of(container, step) or place
        if error["type"] == "extra_forbidden" and step == steps[-1] and isinstance(container, Map):
            place = container.key_loc(step) or place
        inner = _field_model(model, step)
        container = container[step] if _has(container, step) else None
        model = inner or model
    path = doc_path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in steps if not _union_member(p))
    if words is not None:
        return SpecError(words(dict(error), spec_class, [p for p in steps if not _union_member(p)]),
                         place or where, path)
    return SpecError(plain_message(error, model), place or where, path)


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
    fields = getattr(model, "model_fields", {})
    annotation = getattr(fields.get(step), "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
