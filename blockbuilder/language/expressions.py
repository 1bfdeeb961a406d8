"""Safe arithmetic expressions for ``${...}`` values.

The text is parsed with :func:`ast.parse` and walked with a whitelist: numbers, names bound in the
current scope, ``+ - * / // % **``, comparisons, ``and``/``or``/``not``, ``a if c else b`` and calls
to a handful of pure functions. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from blockbuilder.errors import did_you_mean, shown

MAX_LENGTH = 500
MAX_MAGNITUDE = 10**15

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
MAX_DIGITS = 15


def _round(value: int | float, digits: int | None = None) -> int | float:
    """``round`` with its digits bounded: ``round(5, -10**8)`` would build a 100-million-digit number."""
    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int) or abs(digits) > MAX_DIGITS):
        raise ValueError(f"round's digits must be an integer between -{MAX_DIGITS} and {MAX_DIGITS}, got {digits}")
    return round(value, digits) if digits is not None else round(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
    "int": int,
    "abs": abs,
}


class ExprError(ValueError):
    """An expression that cannot be evaluated (the message says why)."""


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate ``text`` with the names in ``scope``.

    Raises:
        ExprError: on syntax outside the grammar, unknown names, or arithmetic errors.
    """
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid expression {shown(text)}: {exc.msg}") from None
    _check_every_branch(tree.body, scope)
    return _Evaluator(scope).visit(tree.body)


_UNARY = (ast.USub, ast.UAdd, ast.Not)


def _check_every_branch(tree: ast.expr, scope: Mapping[str, Any]) -> None:
    """The grammar and the names of the whole expression, the branches evaluation does not take too (the
    other side of ``a if c else b``, what ``and``/``or`` and a comparison chain cut short): a misspelt
    name there is an error at once, not in a later file that takes the branch."""
    functions = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr) or id(node) in functions:
            continue
        if not hasattr(_Evaluator, "visit_" + type(node).__name__):
            raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression")
        if isinstance(node, ast.Name) and node.id not in scope:
            raise ExprError(f"unknown name '{node.id}'{did_you_mean(node.id, scope)}")
        if isinstance(node, ast.Call):
            _check_call(node)
        wrong = ((isinstance(node, ast.BinOp) and type(node.op) not in _BINARY)
                 or (isinstance(node, ast.UnaryOp) and not isinstance(node.op, _UNARY))
                 or (isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops)))
        if wrong:
            raise ExprError(f"operator in '{ast.unparse(node)}' is not allowed")


def _check_call(node: ast.Call) -> str:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name is None or name not in FUNCTIONS or node.keywords:
        raise ExprError(f"call '{ast.unparse(node.func)}' is not allowed "
                        f"(functions: {', '.join(FUNCTIONS)})")
    return name


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.scope = scope

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression")
        return _checked(method(node))

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, str) and len(node.value) > 100:
            raise ExprError("string constant too long")
        if isinstance(node.value, (int, float, bool, str)) or node.value is None:
            return node.value
        raise ExprError(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.scope:
            return self.scope[node.id]
        raise ExprError(f"unknown name '{node.id}'{did_you_mean(node.id, self.scope)}")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExprError(f"operator in '{ast.unparse(node)}' is not allowed")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ExprError(f"exponent {right} too large")
        try:
            return op(_number(left), _number(right))
        except (ZeroDivisionError, OverflowError, TypeError) as exc:
            raise ExprError(f"cannot compute '{ast.unparse(node)}': {exc}") from None

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -_number(value)
        if isinstance(node.op, ast.UAdd):
            return +_number(value)
        if isinstance(node.op, ast.Not):
            return not value
        raise ExprError(f"'{ast.unparse(node)}' is not allowed")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        values = (self.visit(v) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise ExprError(f"comparison in '{ast.unparse(node)}' is not allowed")
            right = self.visit(right_node)
            try:
                if not op(left, right):
                    return False
            except TypeError as exc:
                raise ExprError(f"cannot compare in '{ast.unparse(node)}': {exc}") from None
            left = right
        return True

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        container, index = self.visit(node.value), self.visit(node.slice)
        if not isinstance(container, list) or isinstance(index, bool) or not isinstance(index, int):
            raise ExprError(f"'{ast.unparse(node)}': only a list can be indexed, by an integer")
        if not -len(container) <= index < len(container):
            raise ExprError(f"'{ast.unparse(node)}': index {index} out of range (list of {len(container)})")
        return container[index]

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        name = _check_call(node)
        args = [_number(self.visit(a)) for a in node.args]
        try:
            return FUNCTIONS[name](*args)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExprError(f"cannot compute '{ast.unparse(node)}': {exc}") from None


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"expected a number, got {shown(value)}")
    return value


def _checked(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or abs(value) > MAX_MAGNITUDE:
            raise ExprError(f"value {value} out of range (at most {MAX_MAGNITUDE:g})")
    return value
