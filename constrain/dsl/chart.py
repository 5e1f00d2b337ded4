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

``grammar(fields)`` binds the spec to your data: only the fields listed, each with the encoding types
its data type allows (``ENCODING_TYPES``), aggregates that fit, and the bound filter language.
"""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import lark
from lark.visitors import merge_transformers

from ..grammar import Example
from ..grammar._typed import run_transformer
from ..errors import InputError
from . import filter as filter_dsl
from . import _fields
from ._fields import Field
from .filter import Expr, _check_field, _ungroup, decode_string

if TYPE_CHECKING:
    from ..grammar import Grammar

__all__ = ["Chart", "Encoding", "Mark", "FieldType", "Aggregate", "GRAMMAR", "from_tree", "grammar"]

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
    """The typed value of a validated ``dsl/chart`` text (registered in ``constrain.grammar._typed.TYPERS``)."""
    transformer = merge_transformers(ChartTransformer(), filter=filter_dsl.FilterTransformer())
    return run_transformer(transformer.transform, text, tree, GRAMMAR)  # type: ignore[no-any-return]


def parse(text: str) -> Chart:
    """Validate ``text`` with both engines and return its ``Chart``."""
    from ..grammar import load_grammar

    return load_grammar(GRAMMAR).parse_typed(text)  # type: ignore[no-any-return]


# -- bound to a list of fields ------------------------------------------------------------------------

# a field's data type -> its class, and the encoding types each class allows
FIELD_CLASSES: dict[str, str] = {
    "number": "numeric", "integer": "numeric", "date": "temporal", "string": "categorical", "boolean": "categorical",
}
ENCODING_TYPES: dict[str, tuple[str, ...]] = {
    "numeric": ("quantitative", "ordinal", "nominal"),
    "temporal": ("temporal", "ordinal"),
    "categorical": ("nominal", "ordinal"),
}
# these aggregates count, so their values are numbers whatever the field (the number of distinct countries)
COUNTING = frozenset({"count", "distinct"})


def aggregate_types(aggregate: str, field_class: str) -> tuple[str, ...]:
    """The encoding types of ``aggregate(field)`` for a field of ``field_class``: those
    ``AGGREGATE_TYPES`` allows that the field's class allows too (any, for counting aggregates)."""
    candidates = get_args(FieldType) if aggregate in COUNTING else ENCODING_TYPES[field_class]
    return tuple(t for t in candidates if t in AGGREGATE_TYPES[aggregate])


def grammar(fields: Any, *, records: str = "records", name: str = "dsl/chart[fields]") -> Grammar:
    """``dsl/chart`` bound to ``fields``: encodings name only those fields, with the types their data
    types allow (``ENCODING_TYPES``; aggregates by ``aggregate_types``), ``count(*)`` stays, and
    ``filter:`` takes ``dsl.filter.grammar(fields)``'s language. ``fields`` and ``records`` as for
    ``dsl.filter.grammar``; ``parse_typed`` returns the same ``Chart``. The grammar carries a
    ``description`` and ``examples``.
    """
    return _bound_grammar(_fields.field_list(fields), name, _fields.records_noun(records))


@functools.lru_cache(maxsize=32)
def _bound_grammar(fields: tuple[Field, ...], name: str, records: str) -> Grammar:
    transformer = merge_transformers(ChartTransformer(), filter=filter_dsl.FilterTransformer())
    return _fields.bound_grammar(  # type: ignore[no-any-return]
        GRAMMAR, fields, name, summary="Chart specs", description=describe(fields),
        examples=worked_examples(fields, records), text=lambda head: bound_text(fields, head),
        transform=transformer.transform, extra=["include: dsl/filter as filter"],
    )


def bound_text(fields: tuple[Field, ...], header: str) -> str:
    """The packaged ``dsl/chart`` grammar with its encoding rules generated from ``fields``, embedding
    the bound filter grammar."""
    from ..grammar._compose import expand, mangle_name
    from ..grammar import _packaged_text

    by_class: dict[str, list[str]] = {}
    for group in filter_dsl.field_groups(fields):
        by_class.setdefault(FIELD_CLASSES[group.type], []).append(mangle_name(group.terminal, "filter"))
    terminals: dict[str, str] = {}  # name -> definition, shared between classes

    def terminal(prefix: str, words: tuple[str, ...]) -> str:
        name = prefix + "_" + "_".join(w.upper() for w in words)
        terminals[name] = f"{name}: {_fields.literals(words)}"
        return name

    alternatives: list[str] = []
    rules: list[str] = []
    for cls in ENCODING_TYPES:
        if cls not in by_class:
            continue
        rules.append(f"_{cls}_field: {' | '.join(by_class[cls])}")
        rules.append(f"?{cls}_ref: _{cls}_field -> field")
        alternatives.append(f"{cls}_ref _SP {terminal('TYPE', _ordered(ENCODING_TYPES[cls]))}")
        by_types: dict[tuple[str, ...], list[str]] = {}
        for aggregate in AGGREGATE_TYPES:
            types = _ordered(aggregate_types(aggregate, cls))
            if aggregate != "count" and types:
                by_types.setdefault(types, []).append(aggregate)
        for number, (types, aggregates) in enumerate(by_types.items(), start=1):
            rule = f"{cls}_aggregate_{number}"
            rules.append(f'?{rule}: {terminal("AGGREGATE", tuple(aggregates))} "(" _{cls}_field ")" -> aggregate')
            alternatives.append(f"{rule} _SP {terminal('TYPE', types)}")
    rules.append('?count_ref: "count(*)" -> count')
    alternatives.append(f"count_ref _SP {terminal('TYPE', _ordered(AGGREGATE_TYPES['count']))}")
    generated = "\n".join(["encoding: " + "\n        | ".join(alternatives), *rules, *terminals.values()]) + "\n"
    # the filter's STRING stays for the title line, even with no string field
    filter_text = filter_dsl.bound_text(fields, "", keep=("STRING",))
    own = _fields.rebuild(_packaged_text(GRAMMAR), {"encoding"}, generated, header)
    return expand(own, lambda name: filter_text if name == filter_dsl.GRAMMAR else _packaged_text(name))


def _ordered(types: tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
    return tuple(t for t in get_args(FieldType) if t in types)


def worked_examples(fields: tuple[Field, ...], records: str = "records") -> tuple[Example, ...]:
    """Requests over ``fields`` (the things charted called ``records``, as the first two requests say)
    and the charts they mean, shown to the model as worked examples: a
    total by category; a largest value by another category; a trend over time for one value of a
    category (a filter); two numbers against each other colored by a category (as many of these as the
    fields' types allow). Each optional line appears only where its request asks for it."""
    dates = [f for f in fields if FIELD_CLASSES[f.type] == "temporal"]
    categories = filter_dsl.categories(fields) + [f for f in fields if f.type == "boolean"]
    numbers = filter_dsl.measures(fields)
    words = filter_dsl._words
    out: list[Example] = []

    def add(chart: Chart, request: str) -> None:
        out.append(Example(str(chart).rstrip("\n"), request))

    if categories and numbers:
        add(Chart("bar", Encoding(categories[0].name, "nominal"), Encoding(numbers[0].name, "quantitative", "sum")),
            f"total {words(numbers[0])} of {records} per {words(categories[0])}, as bars")
        other = categories[1] if len(categories) > 1 else categories[0]
        add(Chart("bar", Encoding(other.name, "nominal"), Encoding(numbers[0].name, "quantitative", "max")),
            f"largest {words(numbers[0])} of {records} for each {words(other)} as a bar chart")
    if dates and numbers:
        request = f"average {words(numbers[0])} over {words(dates[0])} as a line"
        where = None
        if categories and categories[0].type == "string":
            text, where = filter_dsl._phrase(categories[0], 0)
            request += f", {text} only"
        add(Chart("line", Encoding(dates[0].name, "temporal"), Encoding(numbers[0].name, "quantitative", "mean"),
                  filter=where), request)
    if len(numbers) >= 2:
        color = Encoding(categories[0].name, "nominal") if categories else None
        request = f"scatter plot with {words(numbers[0])} on x and {words(numbers[1])} on y"
        add(Chart("point", Encoding(numbers[0].name, "quantitative"), Encoding(numbers[1].name, "quantitative"),
                  color=color), request + (f", colored by {words(categories[0])}" if categories else ""))
    if not out:  # a single kind of field: count its values
        first = fields[0]
        kind = "temporal" if first.type == "date" else "ordinal" if first.type in ("number", "integer") else "nominal"
        add(Chart("bar", Encoding(first.name, kind), Encoding(None, "quantitative", "count")),  # type: ignore[arg-type]
            f"number of {records} by {words(first)}")
    return tuple(dict.fromkeys(out))


def describe(fields: tuple[Field, ...]) -> str:
    """What the model is told about the bound chart language: its syntax, then one line per field."""
    classes = {"numeric": "A number or integer field", "temporal": "A date field",
               "categorical": "A string or boolean field"}
    typing = " ".join(f"{classes[cls]} is {_either(types)}." for cls, types in ENCODING_TYPES.items())
    return "\n".join([
        "A chart spec, one `key: value` line each, in this order: mark, x, y, then optionally color, size, "
        f"filter and title. mark is one of {', '.join(get_args(Mark))}. x, y, color and size are encodings: "
        "`FIELD TYPE`, `AGGREGATE(FIELD) TYPE` or `count(*) quantitative`. " + typing + " sum, mean and median "
        "take a number or integer field and are quantitative; distinct(FIELD) counts the values of any field "
        "and is quantitative; min and max keep the field's type (not nominal).",
        "filter is a filter expression: comparisons `FIELD OP VALUE` (OP is one of = != < <= > >=) and lists "
        "`FIELD IN (VALUE, ...)`, combined with AND, OR, NOT and parentheses; each field takes only values of "
        "its type: strings in double quotes, numbers, dates as YYYY-MM-DD, booleans true or false (= and != "
        "only). title is a string in double quotes.",
        "Write color, size, filter and title only when the request asks for them. Aggregates: total is sum, "
        "average is mean, largest, longest or latest is max, smallest, lowest or earliest is min, how many is "
        "count(*), how many different is distinct.",
        "Fields:",
        *(f.describe() for f in fields),
    ])


def _either(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
