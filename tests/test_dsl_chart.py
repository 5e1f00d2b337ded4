"""dsl/chart: the embedded filter, typed values, located aggregate errors, round trip, and the
Vega-Lite output checked by Altair against the Vega-Lite schema."""

from __future__ import annotations

import datetime
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dsl_filter import exprs, fields

import constrain
from constrain.dsl.chart import AGGREGATE_TYPES, Chart, Encoding, FieldType, Mark
from constrain.dsl.filter import And, Comparison, In, Not, Or

GRAMMAR = constrain.load_grammar("dsl/chart")

EXAMPLE = """mark: bar
x: month temporal
y: sum(sales) quantitative
color: region nominal
filter: region = "EU" AND (year >= 2020 OR NOT channel IN ("web", "shop"))
title: "Sales by month"
"""


def test_example() -> None:
    chart = GRAMMAR.parse_typed(EXAMPLE)
    assert chart == Chart(
        mark="bar",
        x=Encoding("month", "temporal"),
        y=Encoding("sales", "quantitative", "sum"),
        color=Encoding("region", "nominal"),
        filter=And((
            Comparison("region", "=", "EU"),
            Or((Comparison("year", ">=", 2020), Not(In("channel", ("web", "shop"))))),
        )),
        title="Sales by month",
    )
    assert str(chart) == EXAMPLE


def test_the_filter_is_embedded_not_copied() -> None:
    assert "// include: dsl/filter as filter" in _packaged_source("dsl/chart")
    assert "filter__expr" in GRAMMAR.text and "FILTER__FIELD" in GRAMMAR.text
    assert "\nstart: expr" not in GRAMMAR.text  # the filter's own start rule is dropped
    # whatever dsl/filter accepts, the chart's filter line accepts, with the same typed value
    for text in ("a = 1", "NOT (b IN (1, 2) OR c != \"x\")", "d >= 2024-01-31 AND e = TRUE"):
        expected = constrain.load_grammar("dsl/filter").parse_typed(text)
        chart = GRAMMAR.parse_typed(f"mark: line\nx: a ordinal\ny: b quantitative\nfilter: {text}")
        assert chart.filter == expected


def _packaged_source(name: str) -> str:
    from constrain.grammar._packaged import catalog

    return catalog()[name].path.read_text(encoding="utf-8")


def test_minimal_and_count() -> None:
    chart = GRAMMAR.parse_typed("mark: point\nx: a quantitative\ny: count(*) quantitative")
    assert chart == Chart("point", Encoding("a", "quantitative"), Encoding(None, "quantitative", "count"))
    assert chart.to_vega_lite()["encoding"]["y"] == {"type": "quantitative", "aggregate": "count"}


@pytest.mark.parametrize(
    "text",
    [
        "mark: bar\nx: a nominal",  # y is required
        "mark: bars\nx: a nominal\ny: b nominal",
        "mark: bar\ny: b nominal\nx: a nominal",  # fixed order
        "mark: bar\nx: a nominal\ny: b nominal\nfilter: a = ",
        "mark: bar\nx: a Nominal\ny: b nominal",
        "mark: bar\nx: a nominal\ny: b nominal\n\n",
        "mark: bar\nx: a\ny: b nominal",
        "mark: bar\nx: count(a) quantitative\ny: b nominal",
        "mark: bar\nx: a nominal\ny: b nominal\ntitle: 'x'",
    ],
)
def test_both_engines_refuse(text: str) -> None:
    assert not GRAMMAR.matches(text)
    with pytest.raises(constrain.ValidationError):
        GRAMMAR.parse(text)


@pytest.mark.parametrize(("aggregate", "field_type"), [
    (a, t) for a in AGGREGATE_TYPES for t in get_args(FieldType)
])
def test_the_grammar_admits_an_aggregate_exactly_where_it_fits(aggregate: str, field_type: str) -> None:
    """AGGREGATE_TYPES is in the grammar: both engines agree with Encoding's check, pair by pair."""
    ref = "count(*)" if aggregate == "count" else f"{aggregate}(b)"
    text = f"mark: bar\nx: a nominal\ny: {ref} {field_type}\n"
    fits = field_type in AGGREGATE_TYPES[aggregate]
    assert GRAMMAR.matches(text) == fits
    if fits:
        GRAMMAR.parse_typed(text)
        Encoding(None if aggregate == "count" else "b", field_type, aggregate)  # type: ignore[arg-type]
    else:
        with pytest.raises(constrain.ValidationError):
            GRAMMAR.parse(text)
        with pytest.raises(constrain.InputError, match="needs a"):
            Encoding(None if aggregate == "count" else "b", field_type, aggregate)  # type: ignore[arg-type]


def test_filter_errors_inside_a_chart_are_located() -> None:
    text = "mark: bar\nx: a nominal\ny: b quantitative\nfilter: d = 2023-02-29\n"
    with pytest.raises(constrain.ValidationError) as info:
        GRAMMAR.parse_typed(text)
    assert info.value.line == 4 and info.value.column >= len("filter: d = 2023-02-") + 1


def _encodings(channel_types: tuple[str, ...] = get_args(FieldType)) -> st.SearchStrategy[Encoding]:
    plain = st.builds(Encoding, fields, st.sampled_from(channel_types))
    aggregated = st.sampled_from([a for a in AGGREGATE_TYPES if a != "count"]).flatmap(
        lambda a: st.builds(Encoding, fields, st.sampled_from(sorted(AGGREGATE_TYPES[a])), st.just(a))
    )
    return plain | aggregated | st.just(Encoding(None, "quantitative", "count"))


charts = st.builds(
    Chart,
    st.sampled_from(get_args(Mark)),
    _encodings(),
    _encodings(),
    st.none() | _encodings(),
    st.none() | _encodings(),
    st.none() | exprs,
    st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charts)
def test_round_trip(chart: Chart) -> None:
    text = str(chart)
    assert GRAMMAR.parse_typed(text) == chart
    assert GRAMMAR.parse_typed(text.removesuffix("\n")) == chart  # the final newline is optional


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charts)
def test_vega_lite_specs_pass_the_vega_lite_schema(chart: Chart) -> None:
    alt = pytest.importorskip("altair")
    spec = chart.to_vega_lite()
    spec["data"] = {"values": [{"a": 1}]}
    alt.Chart.from_dict(spec, validate=True)  # raises jsonschema's ValidationError when invalid


def test_vega_lite_filter_semantics() -> None:
    chart = GRAMMAR.parse_typed(
        'mark: bar\nx: a nominal\ny: b quantitative\nfilter: d != 2024-01-31 AND k IN (1, "x") AND n IN (1, 2)'
    )
    predicate = chart.to_vega_lite()["transform"][0]["filter"]
    assert predicate == {"and": [
        {"not": {"field": "d", "equal": {"year": 2024, "month": 1, "date": 31}}},
        {"or": [{"field": "k", "equal": 1}, {"field": "k", "equal": "x"}]},  # oneOf needs one value type
        {"field": "n", "oneOf": [1, 2]},
    ]}


@pytest.mark.parametrize(
    "build",
    [
        lambda: Encoding("a", "nominal", "sum"),
        lambda: Encoding(None, "quantitative", "sum"),
        lambda: Encoding("a", "quantitative", "count"),
        lambda: Encoding("a", "colour"),  # type: ignore[arg-type]
        lambda: Chart("pie", Encoding("a", "nominal"), Encoding("b", "nominal")),  # type: ignore[arg-type]
        lambda: Chart("bar", Encoding("a", "nominal"), None),  # type: ignore[arg-type]
        lambda: Chart("bar", Encoding("a", "nominal"), Encoding("b", "nominal"), title="x" * 300),
    ],
)
def test_models_refuse_what_the_language_cannot_say(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(constrain.InputError):
        build()


def test_dates_survive_as_dates() -> None:
    chart = GRAMMAR.parse_typed("mark: line\nx: day temporal\ny: v quantitative\nfilter: day >= 2020-01-01")
    assert chart.filter == Comparison("day", ">=", datetime.date(2020, 1, 1))
