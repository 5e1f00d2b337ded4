"""``dsl/filter``: search/filter expressions as a typed tree.

    status = "open" AND (priority >= 2 OR NOT assignee IN ("bot", "ci")) AND created < 2024-06-01

Precedence, loosest first: ``OR``, ``AND``, ``NOT``; keywords are ASCII and case-insensitive.
Values are JSON-style strings, numbers (``int`` or ``float``), ISO dates and ``true``/``false``.
``str(expr)`` renders the expression back in the DSL; parsing that text gives an equal value.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Union

import lark

from .._typed import run_transformer
from ..errors import InputError

__all__ = ["Expr", "Comparison", "In", "And", "Or", "Not", "Value", "Op", "GRAMMAR", "from_tree"]

GRAMMAR = "dsl/filter"

Value = Union[str, bool, int, float, datetime.date]
Op = Literal["=", "!=", "<", "<=", ">", ">="]
OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=")

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?")
_MAX_STRING = 256


class Expr:
    """A filter expression. ``str()`` gives the DSL text; ``evaluate(record)`` applies it to a mapping."""

    _precedence = 4

    def to_text(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_text()

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        """Apply the filter to a record (dotted fields reach into nested mappings).

        A comparison with a missing field or values of incomparable types is false.
        """
        raise NotImplementedError


def _check_field(name: str) -> None:
    if not isinstance(name, str) or not _FIELD.fullmatch(name):
        raise InputError(f"not a filter field path: {name!r} (letters, digits, '_', dotted, <= 64 per part)")


def _check_value(value: Any) -> None:
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise InputError(f"filter string longer than {_MAX_STRING} characters")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise InputError("filter string contains an unpaired surrogate")
    elif isinstance(value, bool) or isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return
    elif isinstance(value, (int, float)):
        if not _NUMBER.fullmatch(render_value(value)):
            raise InputError(f"number {value!r} is outside the filter language (finite, < 1e18)")
    else:
        raise InputError(f"filter values are str, int, float, bool or datetime.date, not {type(value).__name__}")


def render_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


def _resolve(record: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Comparison(Expr):
    field: str
    op: Op
    value: Value

    def __post_init__(self) -> None:
        _check_field(self.field)
        if self.op not in OPS:
            raise InputError(f"unknown comparison operator {self.op!r}; one of {' '.join(OPS)}")
        _check_value(self.value)
        if isinstance(self.value, bool) and self.op not in ("=", "!="):
            raise InputError(f"booleans compare only with = and !=, not {self.op}")

    def to_text(self) -> str:
        return f"{self.field} {self.op} {render_value(self.value)}"

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        found, actual = _resolve(record, self.field)
        if not found or isinstance(actual, bool) != isinstance(self.value, bool):
            return False
        try:
            return bool(_COMPARE[self.op](actual, self.value))
        except TypeError:
            return False


@dataclass(frozen=True)
class In(Expr):
    field: str
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        _check_field(self.field)
        if not isinstance(self.values, tuple) or not self.values:
            raise InputError("IN needs a non-empty tuple of values")
        for value in self.values:
            _check_value(value)

    def to_text(self) -> str:
        return f"{self.field} IN ({', '.join(render_value(v) for v in self.values)})"

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        found, actual = _resolve(record, self.field)
        return found and any(Comparison(self.field, "=", v).evaluate(record) for v in self.values)


def _operand(expr: Expr, parent_precedence: int) -> str:
    text = expr.to_text()
    return f"({text})" if expr._precedence <= parent_precedence else text


@dataclass(frozen=True)
class And(Expr):
    operands: tuple[Expr, ...]
    _precedence = 2

    def __post_init__(self) -> None:
        _check_operands("And", self.operands)

    def to_text(self) -> str:
        return " AND ".join(_operand(e, self._precedence) for e in self.operands)

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        return all(e.evaluate(record) for e in self.operands)


@dataclass(frozen=True)
class Or(Expr):
    operands: tuple[Expr, ...]
    _precedence = 1

    def __post_init__(self) -> None:
        _check_operands("Or", self.operands)

    def to_text(self) -> str:
        return " OR ".join(_operand(e, self._precedence) for e in self.operands)

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        return any(e.evaluate(record) for e in self.operands)


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr
    _precedence = 3

    def __post_init__(self) -> None:
        if not isinstance(self.operand, Expr):
            raise InputError(f"Not takes an Expr, not {type(self.operand).__name__}")

    def to_text(self) -> str:
        return "NOT " + _operand(self.operand, And._precedence)

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        return not self.operand.evaluate(record)


def _check_operands(kind: str, operands: Any) -> None:
    if not isinstance(operands, tuple) or len(operands) < 2 or not all(isinstance(e, Expr) for e in operands):
        raise InputError(f"{kind} takes a tuple of at least two Expr operands")


@dataclass(frozen=True)
class _Group:
    """A parenthesised expression while transforming: keeps ``(a OR b) OR c`` apart from ``a OR b OR c``."""

    expr: Expr


def decode_string(token: str) -> str:
    """The value of a JSON-style string literal; an unpaired surrogate escape is refused."""
    value: str = json.loads(token)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError(f"string {token} contains an unpaired surrogate escape")
    return value


def _ungroup(node: Any) -> Any:
    return node.expr if isinstance(node, _Group) else node


class FilterTransformer(lark.Transformer):
    """Turns a ``dsl/filter`` tree into an ``Expr``; a value the grammar admits but Python cannot hold
    (2023-02-30, 1e999) raises ``ValueError``, located by ``run_transformer``. Reusable for grammars
    that embed the filter language (``// include: dsl/filter as filter``) through
    ``lark.visitors.merge_transformers(base, filter=FilterTransformer())``."""

    def start(self, children: list[Any]) -> Expr:
        return _ungroup(children[0])

    def group(self, children: list[Any]) -> _Group:
        return _Group(_ungroup(children[0]))

    def or_(self, children: list[Any]) -> Or:
        left, right = children[0], _ungroup(children[1])
        return Or(left.operands + (right,)) if isinstance(left, Or) else Or((_ungroup(left), right))

    def and_(self, children: list[Any]) -> And:
        left, right = children[0], _ungroup(children[1])
        return And(left.operands + (right,)) if isinstance(left, And) else And((_ungroup(left), right))

    def not_(self, children: list[Any]) -> Not:
        return Not(_ungroup(children[0]))

    def comparison(self, children: list[Any]) -> Comparison:
        field, op, value = children
        return Comparison(str(field), str(op), value)  # type: ignore[arg-type]

    def membership(self, children: list[Any]) -> In:
        return In(str(children[0]), tuple(children[1:]))

    def string(self, children: list[lark.Token]) -> str:
        return decode_string(children[0])

    def number(self, children: list[lark.Token]) -> int | float:
        token = children[0]
        if not any(c in token for c in ".eE"):
            return int(token)
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(f"number {token} is out of range")
        return value

    def date(self, children: list[lark.Token]) -> datetime.date:
        token = children[0]
        try:
            return datetime.date.fromisoformat(str(token))
        except ValueError as exc:
            raise ValueError(f"invalid date {token}: {exc}") from None

    def true(self, children: list[lark.Token]) -> bool:
        return True

    def false(self, children: list[lark.Token]) -> bool:
        return False


def from_tree(text: str, tree: lark.Tree) -> Expr:
    """The typed value of a validated ``dsl/filter`` text (registered in ``constrain._typed.TYPERS``)."""
    return run_transformer(FilterTransformer().transform, text, tree, GRAMMAR)  # type: ignore[no-any-return]


def parse(text: str) -> Expr:
    """Validate ``text`` with both engines and return its ``Expr``."""
    from ..grammar import load_grammar

    return load_grammar(GRAMMAR).parse_typed(text)  # type: ignore[no-any-return]
