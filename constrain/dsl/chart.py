"""``dsl/chart``: a small declarative chart spec, typed into a model for a plotting library.

    mark: bar
    x: month temporal
    y: sum(sales) quantitative
    color: region nominal
    filter: region = "EU" AND year >= 2020
    title: "Sales by month"

``mark``, ``x`` and ``y`` are required; ``color``, ``size``, ``filter`` and ``title`` are optional and
come in this order. ``filter`` is a ``dsl/filter`` expression, embedded in the grammar by
``// include: dsl/filter as filter``. ``Chart.to_vega_lite()`` gives a Vega-Lite spec (hand it to
Altair's ``alt.Chart.from_dict`` with your data). Aggregates must fit the field type (``sum`` needs
``quantitative``, ``AGGREGATE_TYPES``); the grammar says so, and ``Encoding`` checks it for values built
in Python. The embedded filter's values are bounded in the grammar too (see ``dsl.filter``). Checks left
to Python only: none.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

import lark
from lark.visitors import merge_transformers

from .._typed import run_transformer
from ..errors import InputError
from . import filter as filter_dsl
from .filter import Expr, _check_field, _ungroup, decode_string

__all__ = ["Chart", "Encoding", "Mark", "FieldType", "Aggregate", "GRAMMAR", "from_tree"]

GRAMMAR = "dsl/chart"

Mark = Literal["bar", "line", "point", "area", "tick", "rect", "arc"]
FieldType = Literal["quantitative", "nominal", "ordinal", "temporal"]
Aggregate = Literal["count", "sum", "mean", "median", "min", "max", "distinct"]

# aggregate -> the field types it makes sense for (Vega-Lite's rules, kept as data)
AGGREGATE_TYPES: dict[str, frozenset[str]] = {
    "count": frozenset({"quantitative"}),
    "distinct": frozenset({"quantitative"}),
    "sum": frozenset({"quantitative"}),
    "mean": frozenset({"quantitative"}),
    "median": frozenset({"quantitative"}),
    "min": frozenset({"quantitative", "temporal", "ordinal"}),
    "max": frozenset({"quantitative", "temporal", "ordinal"}),
}
CHANNELS = ("x", "y", "color", "size")
_MAX_TITLE = 256


def _aggregate_problem(aggregate: str | None, field_type: str) -> str | None:
    if aggregate is None or field_type in AGGREGATE_TYPES[aggregate]:
        return None
    allowed = " or ".join(sorted(AGGREGATE_TYPES[aggregate]))
    return f"aggregate {aggregate} needs a {allowed} field, not {field_type}"


@dataclass(frozen=True)
class Encoding:
    """A channel's data: ``field`` (None only for ``count(*)``), its type, and an optional aggregate."""

    field: str | None
    type: FieldType
    aggregate: Aggregate | None = None

    def __post_init__(self) -> None:
        if self.type not in get_args(FieldType):
            raise InputError(f"unknown field type {self.type!r}; one of {', '.join(get_args(FieldType))}")
        if self.aggregate is not None and self.aggregate not in AGGREGATE_TYPES:
            raise InputError(f"unknown aggregate {self.aggregate!r}; one of {', '.join(AGGREGATE_TYPES)}")
        if (self.field is None) != (self.aggregate == "count"):
            raise InputError("count takes no field (count(*)); every other encoding needs a field")
        if self.field is not None:
            _check_field(self.field)
        problem = _aggregate_problem(self.aggregate, self.type)
        if problem:
            raise InputError(problem)

    def to_text(self) -> str:
        if self.aggregate == "count":
            ref = "count(*)"
        elif self.aggregate:
            ref = f"{self.aggregate}({self.field})"
        else:
            ref = str(self.field)
        return f"{ref} {self.type}"

    def to_vega_lite(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.field is not None:
            out["field"] = self.field
        out["type"] = self.type
        if self.aggregate is not None:
            out["aggregate"] = self.aggregate
        return out


@dataclass(frozen=True)
class Chart:
    mark: Mark
    x: Encoding
    y: Encoding
    color: Encoding | None = None
    size: Encoding | None = None
    filter: Expr | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        if self.mark not in get_args(Mark):
            raise InputError(f"unknown mark {self.mark!r}; one of {', '.join(get_args(Mark))}")
        for channel in CHANNELS:
            value = getattr(self, channel)
            if not (isinstance(value, Encoding) or value is None and channel in ("color", "size")):
                raise InputError(f"Chart.{channel} must be an Encoding")
        if self.filter is not None and not isinstance(self.filter, Expr):
            raise InputError("Chart.filter must be a dsl.filter Expr")
        if self.title is not None:
            if not isinstance(self.title, str) or len(self.title) > _MAX_TITLE:
                raise InputError(f"Chart.title must be a string of at most {_MAX_TITLE} characters")
            if any(0xD800 <= ord(c) <= 0xDFFF for c in self.title):
                raise InputError("Chart.title contains an unpaired surrogate")

    def to_text(self) -> str:
        lines = [f"mark: {self.mark}"]
        for channel in CHANNELS:
            encoding = getattr(self, channel)
            if encoding is not None:
                lines.append(f"{channel}: {encoding.to_text()}")
        if self.filter is not None:
            lines.append(f"filter: {self.filter.to_text()}")
        if self.title is not None:
            lines.append(f"title: {json.dumps(self.title, ensure_ascii=False)}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_text()

    def to_vega_lite(self) -> dict[str, Any]:
        """A Vega-Lite specification without data: attach ``data`` and render (e.g. Altair's
        ``alt.Chart.from_dict``)."""
        spec: dict[str, Any] = {"mark": self.mark}
        if self.title is not None:
            spec["title"] = self.title
        spec["encoding"] = {
            channel: getattr(self, channel).to_vega_lite() for channel in CHANNELS if getattr(self, channel)
        }
        if self.filter is not None:
            spec["transform"] = [{"filter": vega_lite_predicate(self.filter)}]
        return spec


_VEGA_OPS = {"=": "equal", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def vega_lite_predicate(expr: Expr) -> dict[str, Any]:
    """A filter expression as a Vega-Lite predicate (field predicates composed with and/or/not)."""
    if isinstance(expr, filter_dsl.Comparison):
        if expr.op == "!=":
            return {"not": {"field": expr.field, "equal": _vega_value(expr.value)}}
        return {"field": expr.field, _VEGA_OPS[expr.op]: _vega_value(expr.value)}
    if isinstance(expr, filter_dsl.In):
        if len({_vega_kind(v) for v in expr.values}) == 1:  # Vega-Lite's oneOf takes one type of value
            return {"field": expr.field, "oneOf": [_vega_value(v) for v in expr.values]}
        return {"or": [{"field": expr.field, "equal": _vega_value(v)} for v in expr.values]}
    if isinstance(expr, filter_dsl.And):
        return {"and": [vega_lite_predicate(e) for e in expr.operands]}
    if isinstance(expr, filter_dsl.Or):
        return {"or": [vega_lite_predicate(e) for e in expr.operands]}
    if isinstance(expr, filter_dsl.Not):
        return {"not": vega_lite_predicate(expr.operand)}
    raise TypeError(f"not a filter expression: {expr!r}")


def _vega_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _vega_value(value: Any) -> Any:
    if isinstance(value, datetime.date):
        return {"year": value.year, "month": value.month, "date": value.day}
    return value


class ChartTransformer(lark.Transformer):
    """Turns a ``dsl/chart`` tree into a ``Chart``. The embedded filter subtrees (``filter__*``) are
    handled by ``FilterTransformer`` merged in under the ``filter`` namespace."""

    def start(self, children: list[tuple[str, Any]]) -> Chart:
        return Chart(**dict(children))

    def mark_line(self, children: list[lark.Token]) -> tuple[str, Any]:
        return "mark", str(children[0])

    def x_line(self, children: list[Encoding]) -> tuple[str, Any]:
        return "x", children[0]

    def y_line(self, children: list[Encoding]) -> tuple[str, Any]:
        return "y", children[0]

    def color_line(self, children: list[Encoding]) -> tuple[str, Any]:
        return "color", children[0]

    def size_line(self, children: list[Encoding]) -> tuple[str, Any]:
        return "size", children[0]

    def filter_line(self, children: list[Any]) -> tuple[str, Any]:
        return "filter", _ungroup(children[0])

    def title_line(self, children: list[lark.Token]) -> tuple[str, Any]:
        return "title", decode_string(children[0])

    def field(self, children: list[lark.Token]) -> tuple[str | None, str | None]:
        return str(children[0]), None

    def aggregate(self, children: list[lark.Token]) -> tuple[str | None, str | None]:
        return str(children[1]), str(children[0])

    def count(self, children: list[lark.Token]) -> tuple[str | None, str | None]:
        return None, "count"

    def encoding(self, children: list[Any]) -> Encoding:
        (field, aggregate), field_type = children
        problem = _aggregate_problem(aggregate, str(field_type))
        if problem:
            raise ValueError(problem)
        return Encoding(field, str(field_type), aggregate)  # type: ignore[arg-type]


def from_tree(text: str, tree: lark.Tree) -> Chart:
    """The typed value of a validated ``dsl/chart`` text (registered in ``constrain._typed.TYPERS``)."""
    transformer = merge_transformers(ChartTransformer(), filter=filter_dsl.FilterTransformer())
    return run_transformer(transformer.transform, text, tree, GRAMMAR)  # type: ignore[no-any-return]


def parse(text: str) -> Chart:
    """Validate ``text`` with both engines and return its ``Chart``."""
    from ..grammar import load_grammar

    return load_grammar(GRAMMAR).parse_typed(text)  # type: ignore[no-any-return]
