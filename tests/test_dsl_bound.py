"""dsl/filter and dsl/chart bound to the user's fields (issue #25): the bound language is exactly the
packaged one restricted to the fields and their types, on both engines, with the same typed values;
every spec form gives the same fields; bad specs are refused; the CLI's --fields reaches the loop."""

from __future__ import annotations

import datetime
import enum
import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator, Literal, Optional, Union

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dsl_filter import values as any_values

import constrain
from constrain import dsl
from constrain.cli import main
from constrain.dsl import _fields
from constrain.dsl._terminals import number_regex
from constrain.dsl.chart import Chart, Encoding
from constrain.dsl.filter import And, Comparison, Expr, In, Not, Or
from constrain.grammar.lint import check_grammar
from constrain.server import RandomWalkBackend, Server, ServerThread

# every type, an enum with characters a Lark literal must escape, a dotted path
ODD = 'a "q" \\ é\u2028\x7f'
FIELDS: dict[str, Any] = {
    "amount": "number",
    "qty": "integer",
    "country": {"type": "string", "enum": ["DE", "FR", ODD]},
    "note": "string",
    "created": "date",
    "vip": "boolean",
    "user.city": "string",
}
TYPES = {"amount": "number", "qty": "integer", "country": "string", "note": "string", "created": "date",
         "vip": "boolean", "user.city": "string"}
ENUM = ("DE", "FR", ODD)

FILTER = dsl.filter.grammar(FIELDS, name="dsl/filter[orders]")
CHART = dsl.chart.grammar(FIELDS, name="dsl/chart[orders]")
UNBOUND_FILTER = constrain.load_grammar("dsl/filter")
UNBOUND_CHART = constrain.load_grammar("dsl/chart")

# field sets of every shape the examples and the chart's classes must cope with
FIELD_SETS: list[dict[str, Any]] = [
    FIELDS,
    {"d": "date"},
    {"flag": "boolean"},
    {"n": "integer"},
    {"status": {"enum": ["open"]}},
    {"x": "number", "y": "number"},
    {"a": "string", "b": "string", "in": "integer", "not": "boolean"},  # keywords are not reserved
]


def refused_by_both(grammar: constrain.Grammar, text: str) -> constrain.ValidationError:
    """Both engines refuse ``text``; the llguidance error, located."""
    with pytest.raises(constrain.ValidationError) as lark_error:
        grammar.parse(text)
    assert lark_error.value.line is not None and lark_error.value.column is not None
    error = grammar.llg_error(text)
    assert error is not None and error.offset is not None and error.line is not None
    return error


def outputs(grammar: constrain.Grammar) -> tuple[str, ...]:
    """The texts of a grammar's examples (``Example.output``)."""
    return tuple(getattr(e, "output", e) for e in grammar.examples)


def accepted_by_both(grammar: constrain.Grammar, text: str) -> bool:
    lark_ok = True
    try:
        grammar.parse(text)
    except constrain.ValidationError:
        lark_ok = False
    assert lark_ok == grammar.matches(text), f"engines disagree on {text!r}"
    return lark_ok


# -- typed expressions over the fields ---------------------------------------------------------------

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "number": st.one_of(st.integers(-(10**17), 10**17), st.floats(min_value=-1e308, max_value=1e308)),
    "integer": st.integers(-(10**17), 10**17),
    "string": st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    "date": st.dates(),
    "boolean": st.booleans(),
}


def _field_values(name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(ENUM) if name == "country" else _VALUES[TYPES[name]]


@st.composite
def _typed_leaf(draw: st.DrawFn) -> Expr:
    name = draw(st.sampled_from(sorted(TYPES)))
    if TYPES[name] != "boolean" and draw(st.booleans()):  # booleans take = and != only
        return In(name, tuple(draw(st.lists(_field_values(name), min_size=1, max_size=3))))
    ops = ["=", "!="] if TYPES[name] == "boolean" else ["=", "!=", "<", "<=", ">", ">="]
    return Comparison(name, draw(st.sampled_from(ops)), draw(_field_values(name)))


def _tree(leaves: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
            inner.map(Not),
        ),
        max_leaves=6,
    )


typed_exprs = _tree(_typed_leaf())

# anything the packaged language holds, over our fields and near misses of them
_NAMES = sorted(TYPES) + ["Germany", "amoun", "amount2", "user", "user.cit", "Amount", "vip.x"]


def _any_comparison(name: str, op: str, value: Any) -> Comparison:
    return Comparison(name, "=" if isinstance(value, bool) and op not in ("=", "!=") else op, value)


_loose_values = st.one_of(any_values, st.sampled_from(ENUM))
loose_exprs = _tree(st.one_of(
    st.builds(_any_comparison, st.sampled_from(_NAMES), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), _loose_values),
    st.builds(In, st.sampled_from(_NAMES), st.lists(_loose_values, min_size=1, max_size=3).map(tuple)),
))


def _fits(name: str, value: Any) -> bool:
    kind = TYPES.get(name)
    if kind is None:
        return False
    if name == "country":
        return value in ENUM and isinstance(value, str)
    return {
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "date": isinstance(value, datetime.date),
        "boolean": isinstance(value, bool),
    }[kind]


def well_typed(expr: Expr) -> bool:
    """Whether every comparison in ``expr`` names a bound field with a value of its type."""
    if isinstance(expr, Comparison):
        return _fits(expr.field, expr.value)
    if isinstance(expr, In):
        return TYPES.get(expr.field) != "boolean" and all(_fits(expr.field, v) for v in expr.values)
    if isinstance(expr, Not):
        return well_typed(expr.operand)
    assert isinstance(expr, (And, Or))
    return all(well_typed(e) for e in expr.operands)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_exprs)
def test_typed_expressions_round_trip_under_bound_and_unbound(expr: Expr) -> None:
    text = str(expr)
    assert FILTER.parse_typed(text) == expr
    assert UNBOUND_FILTER.parse_typed(text) == expr
    chart = Chart("bar", Encoding("country", "nominal"), Encoding("amount", "quantitative", "sum"), filter=expr)
    assert CHART.parse_typed(str(chart)) == chart == UNBOUND_CHART.parse_typed(str(chart))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loose_exprs)
def test_bound_language_is_the_packaged_one_restricted_to_fields_and_types(expr: Expr) -> None:
    """Differential: of the packaged language's expressions, the bound grammar takes exactly the well-typed
    ones over its fields, on both engines, and reads them as the packaged grammar does."""
    text = str(expr)
    assert UNBOUND_FILTER.parse_typed(text) == expr
    if well_typed(expr):
        assert FILTER.parse_typed(text) == expr
    else:
        refused_by_both(FILTER, text)


@pytest.mark.parametrize(("text", "offset"), [
    ("Germany = 100", 0),
    ("amount = \"x\"", 9),
    ("qty = 1.5", 7),
    ("qty IN (1, 2e3)", 12),
    ("vip < 1", 4),
    ("vip = 1", 6),
    ("vip IN (true)", 4),  # booleans are compared with = and != only
    ("created > \"2024-01-01\"", 10),
    ("country = \"IT\"", 11),
    ("country = \"D\\u0045\"", 12),  # an enum value is written in its one canonical spelling
    ("note = 1 OR amount > 1", 7),
    ("amount > 1 AND user.town = \"x\"", 20),
    ("amounts > 1", 6),
])
def test_unknown_fields_and_wrong_types_are_refused_where_they_start(text: str, offset: int) -> None:
    assert UNBOUND_FILTER.parse_typed(text) is not None  # the packaged language holds each of them
    error = refused_by_both(FILTER, text)
    assert error.offset == offset, error


@pytest.mark.parametrize("text", [
    'not vip = TRUE aNd (qty in (1,2) or note >= "a")',
    "NOT(amount=1)",
    "amount\t>=\t-2.5e10 OR\tcreated = 2024-02-29",
    '( country IN ( "DE" ,"FR" ) )',
    "user.city != \"Zürich\" AND NOT NOT vip != false",
    f"country = {json.dumps(ODD, ensure_ascii=False)}",
])
def test_every_form_of_the_packaged_language_stays(text: str) -> None:
    value = FILTER.parse_typed(text)
    assert isinstance(value, Expr) and value == UNBOUND_FILTER.parse_typed(text)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_walks_of_the_bound_filter_are_in_the_packaged_language(seed: int) -> None:
    for text in FILTER.sample(30, seed=seed):
        value = FILTER.parse_typed(text)
        assert UNBOUND_FILTER.parse_typed(text) == value and well_typed(value)


# -- chart ---------------------------------------------------------------------------------------------

# (field, plain encoding types, aggregate -> its types): written out, not derived from chart.py
_EXPECTED_ENCODINGS: dict[str, tuple[set[str], dict[str, set[str]]]] = {
    "amount": ({"quantitative", "ordinal", "nominal"},
               {"sum": {"quantitative"}, "mean": {"quantitative"}, "median": {"quantitative"},
                "distinct": {"quantitative"}, "min": {"quantitative", "ordinal"}, "max": {"quantitative", "ordinal"}}),
    "qty": ({"quantitative", "ordinal", "nominal"},
            {"sum": {"quantitative"}, "mean": {"quantitative"}, "median": {"quantitative"},
             "distinct": {"quantitative"}, "min": {"quantitative", "ordinal"}, "max": {"quantitative", "ordinal"}}),
    "created": ({"temporal", "ordinal"},
                {"distinct": {"quantitative"}, "min": {"temporal", "ordinal"}, "max": {"temporal", "ordinal"}}),
    "country": ({"nominal", "ordinal"}, {"distinct": {"quantitative"}, "min": {"ordinal"}, "max": {"ordinal"}}),
    "vip": ({"nominal", "ordinal"}, {"distinct": {"quantitative"}, "min": {"ordinal"}, "max": {"ordinal"}}),
}
_ENCODING_TYPES = ("quantitative", "nominal", "ordinal", "temporal")
_AGGREGATES = ("sum", "mean", "median", "distinct", "min", "max")


@pytest.mark.parametrize("field", sorted(_EXPECTED_ENCODINGS))
def test_chart_encodings_follow_the_field_type(field: str) -> None:
    plain, aggregates = _EXPECTED_ENCODINGS[field]
    for encoding_type in _ENCODING_TYPES:
        refs = [(field, encoding_type in plain)]
        refs += [(f"{a}({field})", encoding_type in aggregates.get(a, set())) for a in _AGGREGATES]
        for ref, expected in refs:
            text = f"mark: bar\nx: {ref} {encoding_type}\ny: count(*) quantitative"
            assert accepted_by_both(CHART, text) == expected, text
            if expected:
                assert CHART.parse_typed(text) == UNBOUND_CHART.parse_typed(text)


_HEAD = "mark: bar\nx: country nominal\ny: "


@pytest.mark.parametrize(("accepted", "refused"), [
    ("mark: bar\nx: ", "Germany nominal\ny: count(*) quantitative"),
    ("mark: bar\nx: created ", "nominal\ny: count(*) quantitative"),
    ("mark: bar\nx: country ", "quantitative\ny: count(*) quantitative"),
    (_HEAD + "sum(", "country) quantitative"),
    (_HEAD + "count(*) quantitative\nfilter: ", "Germany = 1"),
    (_HEAD + "count(*) quantitative\nfilter: amount = ", '"x"'),
])
def test_chart_refuses_unknown_fields_wrong_types_and_a_wrong_filter(accepted: str, refused: str) -> None:
    text = accepted + refused
    UNBOUND_CHART.parse_typed(text)  # in the packaged language
    assert refused_by_both(CHART, text).offset == len(accepted.encode("utf-8"))


def test_chart_keeps_count_title_and_every_channel() -> None:
    text = ('mark: arc\nx: min(created) temporal\ny: count(*) quantitative\ncolor: distinct(note) quantitative\n'
            'size: mean(qty) quantitative\nfilter: vip = true AND country IN ("DE")\ntitle: "Orders \\u00e9"\n')
    chart = CHART.parse_typed(text)
    assert isinstance(chart, Chart) and chart == UNBOUND_CHART.parse_typed(text)
    only_dates = dsl.chart.grammar({"d": "date"})  # no string field: the title keeps its STRING terminal
    assert only_dates.parse_typed('mark: tick\nx: d temporal\ny: count(*) quantitative\ntitle: "x"').title == "x"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_walks_of_the_bound_chart_are_in_the_packaged_language(seed: int) -> None:
    for text in CHART.sample(30, seed=seed):
        chart = CHART.parse_typed(text)
        assert UNBOUND_CHART.parse_typed(text) == chart
        for channel in ("x", "y", "color", "size"):
            encoding = getattr(chart, channel)
            if encoding is None or encoding.field is None:
                continue
            plain, aggregates = _EXPECTED_ENCODINGS.get(encoding.field, _EXPECTED_ENCODINGS["country"])
            allowed = plain if encoding.aggregate is None else aggregates[encoding.aggregate]
            assert encoding.type in allowed, text
        assert chart.filter is None or well_typed(chart.filter)


# -- the grammars themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize("fields", FIELD_SETS, ids=lambda f: ",".join(f))
@pytest.mark.parametrize("binder", [dsl.filter.grammar, dsl.chart.grammar], ids=["filter", "chart"])
def test_bound_grammars_check_clean_and_their_examples_are_in_the_language(binder: Any, fields: dict[str, Any]) -> None:
    grammar = binder(fields)
    assert check_grammar(grammar) == []
    unbound = UNBOUND_FILTER if binder is dsl.filter.grammar else UNBOUND_CHART
    examples = outputs(grammar)
    assert 1 <= len(examples) <= 5 and len(set(examples)) == len(examples)
    assert all(e.request for e in grammar.examples)  # worked examples: each answers a request
    for example in examples:
        value = grammar.parse_typed(example)
        assert str(value).rstrip("\n") == example and unbound.parse_typed(example) == value
    for f in _fields.field_list(fields):
        assert f.describe() in grammar.description.split("\n")
    assert grammar.max_tokens == unbound.max_tokens
    assert grammar.name == ("dsl/filter[fields]" if binder is dsl.filter.grammar else "dsl/chart[fields]")


@pytest.mark.parametrize("binder", [dsl.filter.grammar, dsl.chart.grammar], ids=["filter", "chart"])
def test_examples_call_the_records_by_their_noun(binder: Any) -> None:
    default = binder(FIELDS)
    orders = binder(FIELDS, records="orders")
    assert [e.output for e in orders.examples] == [e.output for e in default.examples]  # same outputs
    assert sum("orders" in (e.request or "").split() for e in orders.examples) == 2  # the first two requests
    assert [e.request.replace("orders", "records") for e in orders.examples] == [e.request for e in default.examples]
    assert not any("orders" in (e.request or "") for e in default.examples)
    def rules(g: Any) -> list[str]:
        return [line for line in g.text.splitlines() if not line.startswith("//")]
    assert rules(orders) == rules(default)  # the same language; only what the model is shown differs
    for bad in ("", "  ", "a\nb"):
        with pytest.raises(constrain.InputError, match="plural noun"):
            binder(FIELDS, records=bad)


def test_description_names_each_field_with_its_type_and_values() -> None:
    lines = FILTER.description.split("\n")
    assert "amount (number)" in lines and "qty (integer)" in lines and "created (date)" in lines
    assert f'country (string: "DE", "FR", {json.dumps(ODD, ensure_ascii=False)})' in lines
    assert "AND" in FILTER.description and "IN" in FILTER.description
    assert FILTER.name == "dsl/filter[orders]" and CHART.name == "dsl/chart[orders]"


@pytest.mark.parametrize("grammar", [FILTER, CHART], ids=["filter", "chart"])
def test_the_text_carries_its_own_header_and_passes_constrain_check(
    grammar: constrain.Grammar, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bound.lark"
    path.write_text(grammar.text, encoding="utf-8")
    assert main(["check", str(path)]) == 0
    assert "clean" in capsys.readouterr().out
    reread = constrain.load_grammar(path)
    assert reread.parser == "earley" and reread.max_tokens == grammar.max_tokens
    printable = [e for e in outputs(grammar) if e.replace("\n", "").isprintable()]
    assert outputs(reread) == tuple(printable)
    escaped = "".join(c if c.isprintable() or c == "\n" else f"\\u{ord(c):04x}" for c in grammar.description)
    assert reread.description == " ".join(escaped.split("\n"))


def test_field_names_are_a_finite_list_of_literals() -> None:
    assert 'NUMBER_FIELD: "amount"\n' in FILTER.text and 'STRING_FIELD: "user.city" | "note"\n' in FILTER.text
    assert not re.search("^FIELD:", FILTER.text, re.M)
    assert "/[A-Za-z_]" not in FILTER.text  # the packaged FIELD regex is gone
    assert "/[A-Za-z_]" not in CHART.text


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=4, unique=True))
def test_any_enum_values_are_exactly_the_values_written(values: list[str]) -> None:
    grammar = dsl.filter.grammar({"s": {"type": "string", "enum": values}})
    for value in values:
        assert grammar.parse_typed(f"s = {json.dumps(value, ensure_ascii=False)}") == Comparison("s", "=", value)
    refused_by_both(grammar, f"s = {json.dumps(''.join(values) + 'x', ensure_ascii=False)}")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(number_regex(), fullmatch=True))
def test_the_integer_terminal_is_the_packaged_numbers_without_fraction_or_exponent(text: str) -> None:
    assert bool(re.fullmatch(_fields.integer_regex(), text)) == (not re.search("[.eE]", text))


@settings(max_examples=100, deadline=None)
@given(st.from_regex(_fields.integer_regex(), fullmatch=True))
def test_integers_are_packaged_numbers(text: str) -> None:
    assert re.fullmatch(number_regex(), text) and isinstance(UNBOUND_FILTER.parse_typed(f"a = {text}").value, int)


# -- spec forms ------------------------------------------------------------------------------------------


class Address(pydantic.BaseModel):
    city: str
    zip: Optional[int] = None


class Order(pydantic.BaseModel):
    amount: float
    qty: int
    country: Literal["DE", "FR"]
    note: Optional[str] = None
    created: datetime.date
    vip: bool
    address: Address
    tags: list[str] = []  # nothing a filter value compares with: left out


ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "qty": {"type": "integer"},
        "country": {"enum": ["DE", "FR"]},
        "note": {"type": ["string", "null"]},
        "created": {"type": "string", "format": "date"},
        "vip": {"type": "boolean"},
        "address": {"$ref": "#/$defs/Address"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"},
                                                         "zip": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}},
}
ORDER_MAPPING: dict[str, Any] = {
    "amount": "number", "qty": "integer", "country": {"type": "string", "enum": ["DE", "FR"]}, "note": "string",
    "created": "date", "vip": "boolean", "address.city": "string", "address.zip": "integer",
}
ORDER_SPEC = {"amount": "number", "qty": "integer", "country": "string", "note": "string", "created": "date",
              "vip": "boolean", "address.city": "string", "address.zip": "integer"}


@pytest.fixture()
def orders_db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE orders (amount REAL, qty INTEGER, country TEXT, note VARCHAR(40), created DATE, '
                   'vip BOOLEAN, "address.city" TEXT, "address.zip" BIGINT)')
    yield path


def test_every_spec_form_gives_the_same_fields(orders_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert dsl.fields_spec(Order) == dsl.fields_spec(ORDER_SCHEMA) == dsl.fields_spec(ORDER_MAPPING) == ORDER_SPEC
    assert dsl.fields_of_table(orders_db, "orders") == ORDER_SPEC
    with sqlite3.connect(orders_db) as connection:
        assert dsl.fields_of_table(connection, "orders") == ORDER_SPEC
    # with the enum values too, so the grammars are the same text
    assert dsl.field_list(Order) == dsl.field_list(ORDER_SCHEMA) == dsl.field_list(ORDER_MAPPING)
    assert dsl.filter.grammar(Order).text == dsl.filter.grammar(ORDER_SCHEMA).text
    assert dsl.chart.grammar(Order).text == dsl.chart.grammar(ORDER_MAPPING).text

    # and through load_fields, as --fields SPEC names them
    schema_file = tmp_path / "order.json"
    schema_file.write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    (tmp_path / "shop_models.py").write_text(
        "import datetime, typing, pydantic\n"
        "class Address(pydantic.BaseModel):\n    city: str\n    zip: typing.Optional[int] = None\n"
        "class Order(pydantic.BaseModel):\n    amount: float\n    qty: int\n    country: typing.Literal['DE', 'FR']\n"
        "    note: typing.Optional[str] = None\n    created: datetime.date\n    vip: bool\n    address: Address\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    flat = ",".join(f"{k}:{v}" for k, v in ORDER_SPEC.items())
    for spec in (str(schema_file), "shop_models:Order", flat, f"sqlite:{orders_db}:orders"):
        assert dsl.fields_spec(dsl.load_fields(spec)) == ORDER_SPEC, spec
    assert dsl.field_list(dsl.load_fields("shop_models:Order")) == dsl.field_list(Order)
    assert dsl.fields_spec(dsl.load_fields("amount:number")) == {"amount": "number"}


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Node(pydantic.BaseModel):
    label: str
    colour: Colour
    seen: Optional[Literal["yes"]] = None
    at: datetime.datetime
    size: Union[int, float]
    mixed: Union[int, str] = 0
    parent: Optional["Node"] = None  # a cycle: its fields are listed once


class Flight(pydantic.BaseModel):
    flight: str = pydantic.Field(description="the flight number, not an airport")
    destination: Optional[Literal["JFK", "LHR"]] = pydantic.Field(None, description="IATA code of the arrival")
    stops: int = pydantic.Field(ge=0)
    note: str = pydantic.Field(description="x" * 400)


def test_descriptions_reach_the_prompt_not_the_language() -> None:
    fields = {f.name: f for f in dsl.field_list(Flight)}
    assert fields["flight"].describe() == "flight (string): the flight number, not an airport"
    assert fields["destination"].describe() == 'destination (string: "JFK", "LHR"): IATA code of the arrival'
    assert fields["stops"].describe() == "stops (integer)"
    assert len(fields["note"].describe()) < 200 and fields["note"].describe().endswith("...")
    grammar = dsl.filter.grammar(Flight)
    assert fields["flight"].describe() in grammar.description.split("\n")
    assert grammar.parse_typed('flight = "KL1234"') == Comparison("flight", "=", "KL1234")
    refused_by_both(grammar, 'destination = "CDG"')
    assert check_grammar(grammar) == []
    # the same from a plain JSON Schema and from a {name: schema} mapping
    schema = {"type": "object", "properties": {"flight": {"type": "string", "description": "the flight number"}}}
    assert dsl.field_list(schema)[0].describe() == "flight (string): the flight number"
    assert dsl.field_list({"flight": schema["properties"]["flight"]}) == dsl.field_list(schema)


def test_pydantic_enums_dates_unions_and_cycles() -> None:
    fields = {f.name: f for f in dsl.field_list(Node)}
    assert list(fields) == ["label", "colour", "seen", "at", "size"]
    assert fields["colour"].enum == ("red", "blue") and fields["seen"].enum == ("yes",)
    assert fields["at"].type == "date" and fields["size"].type == "number"
    grammar = dsl.filter.grammar(Node)
    assert grammar.parse_typed('colour = "red"') == Comparison("colour", "=", "red")
    refused_by_both(grammar, 'colour = "green"')


def test_sqlite_declared_types() -> None:
    expected = {"INTEGER": "integer", "BIGINT": "integer", "REAL": "number", "NUMERIC(10,2)": "number",
                "FLOAT": "number", "DOUBLE PRECISION": "number", "DECIMAL(5,2)": "number", "DATE": "date",
                "DATETIME": "date", "TIMESTAMP": "date", "BOOLEAN": "boolean", "BOOL": "boolean", "TEXT": "string",
                "NVARCHAR(20)": "string", "BLOB": "string", "": "string", "TIME": "string"}
    assert {t: _fields.sqlite_type(t) for t in expected} == expected
    invoice = dsl.fields_of_table("chinook", "Invoice")  # the packaged database, by name
    assert invoice["InvoiceDate"] == "date" and invoice["Total"] == "number" and invoice["BillingCountry"] == "string"


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "no fields"),
    ({"order date": "date"}, "'order date'"),
    ({"amount": "str"}, "unknown type 'str'"),
    ({"amount": "array"}, "unknown type"),
    ({"1st": "number"}, "'1st'"),
    ({".".join("abcdefghi"): "number"}, "a.b.c"),
    ({"a" * 65: "number"}, "aaaa"),
    ({"s": {"type": "string", "enum": ["x" * 257]}}, "longer than 256"),
    ({"s": {"type": "array"}}, "'s'"),
    ({"type": "object", "properties": {"tags": {"type": "array"}}}, "no fields"),
    ({"type": "object", "properties": {"a": {"$ref": "http://example.com/s.json"}}}, "local"),
    (42, "not int"),
    ("amount:number", "not str"),
])
def test_bad_field_specs_are_input_errors(fields: Any, message: str) -> None:
    for binder in (dsl.filter.grammar, dsl.chart.grammar):
        with pytest.raises(constrain.InputError) as error:
            binder(fields)
        assert message in str(error.value)


def test_bad_load_specs_are_input_errors(orders_db: Path, tmp_path: Path) -> None:
    cases = {
        "": "empty",
        "nonsense": "expected module:Model",
        "a:number,b": "expected name:type",
        "a:number,b:text": "unknown type 'text'",
        "a:number,a:date": "named twice",
        "sqlite:x": "sqlite:PATH:TABLE",
        f"sqlite:{orders_db}:nope": "tables: orders",
        f"sqlite:{tmp_path / 'missing.sqlite'}:orders": "not found",
        str(tmp_path / "missing.json"): "cannot read",
        "no_such_module_xyz:Model": "cannot import",
    }
    for spec, message in cases.items():
        with pytest.raises(constrain.InputError) as error:
            dsl.filter.grammar(dsl.load_fields(spec))
        assert message in str(error.value), spec


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("not a database\n" * 100, encoding="utf-8")
    with pytest.raises(constrain.InputError, match="cannot read table"):
        dsl.fields_of_table(path, "t")


# -- command line ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with ServerThread(Server(RandomWalkBackend(seed=0))) as url:
        yield url


@pytest.mark.parametrize("name", ["dsl/filter", "dsl/chart"])
def test_cli_generate_with_fields(name: str, server: str, orders_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No model: a grammar-enforcing server walks the bound grammar it is sent."""
    spec = f"sqlite:{orders_db}:orders"
    code = main(["generate", "--grammar", name, "--fields", spec, "--provider", "openai", "--base-url", server,
                 "--json", "orders over 100 from Germany"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["grammar"] == f"{name}[{spec}]"
    bound = (dsl.filter if name == "dsl/filter" else dsl.chart).grammar(dsl.fields_of_table(orders_db, "orders"))
    value = bound.parse_typed(out["output"])
    assert constrain.load_grammar(name).parse_typed(out["output"]) == value


@pytest.mark.parametrize(("argv", "message"), [
    (["--grammar", "json", "--fields", "a:number"], "--grammar dsl/filter or --grammar dsl/chart"),
    (["--grammar", "dsl/cron", "--fields", "a:number"], "--grammar dsl/filter or --grammar dsl/chart"),
    (["--schema", "x.json", "--fields", "a:number"], "--grammar dsl/filter or --grammar dsl/chart"),
    (["--grammar", "dsl/filter", "--fields", "order date:date"], "'order date'"),
    (["--grammar", "dsl/chart", "--fields", "a:numbr,b:date"], "unknown type 'numbr'"),
    (["--grammar", "dsl/chart", "--fields", "a:numbr"], "as name:type, the type is one of string, number"),
    (["--grammar", "dsl/filter", "--records", "orders"], "--records names the records of a DSL bound to --fields"),
    (["--grammar", "dsl/cron", "--records", "orders"], "--records names the records of a DSL bound to --fields"),
    (["--grammar", "dsl/filter", "--fields", "a:number", "--records", " "], "plural noun"),
])
def test_cli_fields_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", *argv, "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1", "a prompt"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
