"""Step 3 of expansion: ``$name`` and ``${expr}`` in a value, evaluated in a scope.

A whole-string ``${expr}`` or ``$name`` keeps the value's type (``${filters * 2}`` is a number);
expressions inside a longer string are formatted into it (``stage${i}``). Locations are kept, so an
error in an expression is reported at its line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from blockbuilder.errors import Location, SpecError
from blockbuilder.language.document import Map, Seq
from blockbuilder.language.expressions import ExprError, evaluate

__all__ = ["substitute"]

_FULL_EXPR = re.compile(r"\$\{(.*)\}", re.S)
_NAME_REF = re.compile(r"\$([A-Za-z_]\w*)")
_INLINE_EXPR = re.compile(r"\$\{([^}]*)\}")


def substitute(value: Any, scope: Mapping[str, Any], where: Location | None, doc_path: str) -> Any:
    """``value`` with every ``$name`` and ``${expr}`` replaced (recursively), evaluated in ``scope``."""
    if isinstance(value, str):
        return _substitute_text(value, scope, where, doc_path)
    if isinstance(value, Map):
        result = Map(loc=value.loc)
        for key, item in value.items():
            result[key] = substitute(item, scope, value.loc_of(key), f"{doc_path}.{key}")
        result.locs, result.key_locs = dict(value.locs), dict(value.key_locs)
        return result
    if isinstance(value, Seq):
        items = [substitute(item, scope, value.loc_of(i), f"{doc_path}[{i}]") for i, item in enumerate(value)]
        seq = Seq(items, loc=value.loc)
        seq.locs = list(value.locs)
        return seq
    return value


def _substitute_text(text: str, scope: Mapping[str, Any], where: Location | None, doc_path: str) -> Any:
    if "$" not in text:
        return text
    try:
        full = _FULL_EXPR.fullmatch(text)
        if full and "${" not in full.group(1):
            return evaluate(full.group(1), scope)
        ref = _NAME_REF.fullmatch(text)
        if ref:
            return evaluate(ref.group(1), scope)
        return _INLINE_EXPR.sub(lambda m: _format(evaluate(m.group(1), scope)), text)
    except ExprError as exc:
        raise SpecError(str(exc), where, doc_path) from None


def _format(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
