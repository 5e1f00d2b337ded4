"""dsl/cron: field ranges in the grammar (both engines), names, located range errors, round trip,
and schedule semantics against croniter as an independent implementation."""

from __future__ import annotations

import calendar
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain.dsl.cron import FIELDS, Cron, CronField, Every, Span

GRAMMAR = constrain.load_grammar("dsl/cron")
ORDER = list(FIELDS)


def with_field(name: str, text: str) -> str:
    parts = ["*"] * 5
    parts[ORDER.index(name)] = text
    return " ".join(parts)


def accepted(text: str) -> bool:
    """Both engines' verdict; fails the test if they disagree."""
    llg = GRAMMAR.matches(text)
    try:
        GRAMMAR.parse(text)
        lark_ok = True
    except constrain.ValidationError:
        lark_ok = False
    assert llg == lark_ok, f"engines disagree on {text!r}: llguidance {llg}, lark {lark_ok}"
    return llg


@pytest.mark.parametrize("name", ORDER)
def test_field_ranges_are_in_the_grammar(name: str) -> None:
    spec = FIELDS[name]
    for value in range(spec.low, spec.high + 1):
        assert accepted(with_field(name, str(value)))
        assert accepted(with_field(name, f"{value:02d}"))
        assert accepted(with_field(name, f"*/{value}")) == (value >= 1)
    for value in (spec.high + 1, spec.high + 10, 100):
        assert not accepted(with_field(name, str(value)))
        assert not accepted(with_field(name, f"*/{value}"))
    if spec.low > 0:
        assert not accepted(with_field(name, "0"))
    assert not accepted(with_field(name, "-1"))
    assert not accepted(with_field(name, f"{spec.low}-{spec.high}/0"))


def test_names_map_to_numbers() -> None:
    for number in range(1, 13):
        name = calendar.month_abbr[number]
        for spelling in (name.upper(), name.lower(), name):
            assert GRAMMAR.parse_typed(with_field("month", spelling)).month == CronField("month", (Span(number),))
    for python_weekday in range(7):  # Monday = 0 in Python; Sunday = 0 in cron
        name = calendar.day_abbr[python_weekday]
        cron_day = (python_weekday + 1) % 7
        value = GRAMMAR.parse_typed(with_field("day_of_week", name.upper()))
        assert value.day_of_week == CronField("day_of_week", (Span(cron_day),))
    assert not accepted(with_field("month", "JANUARY"))
    assert not accepted(with_field("day_of_week", "SUNDAY"))
    assert not accepted(with_field("month", "ſep"))  # long s: keywords stay ASCII


def test_structure() -> None:
    cron = GRAMMAR.parse_typed("*/15 9-17 * jan-MAR,OCT 1-5/2,0")
    assert cron == Cron(
        CronField("minute", (Every(15),)),
        CronField("hour", (Span(9, 17),)),
        CronField("day_of_month", (Every(),)),
        CronField("month", (Span(1, 3), Span(10))),
        CronField("day_of_week", (Span(1, 5, 2), Span(0))),
    )
    assert str(cron) == "*/15 9-17 * 1-3,10 1-5/2,0"
    assert cron.day_of_week.values() == frozenset({0, 1, 3, 5})
    assert GRAMMAR.parse_typed("0 0 * * 7").day_of_week.values() == frozenset({0})


@pytest.mark.parametrize(
    "text", ["* * * *", "* * * * * *", "*  * * * *x", "1,,2 * * * *", "5/15 * * * *", "* * * * MON-", " * * * * *",
             "* * * * * ", "@daily", "*/ * * * *", "1-2-3 * * * *"],
)
def test_malformed(text: str) -> None:
    assert not accepted(text)


@pytest.mark.parametrize(
    ("text", "bad"),
    [("0 0 * 5,DEC-FEB *", "DEC-FEB"), ("30-10 * * * *", "30-10"), ("0\t0\t* * fri-mon/2", "fri-mon/2")],
)
def test_backwards_range_is_located(text: str, bad: str) -> None:
    assert accepted(text)
    with pytest.raises(constrain.ValidationError) as info:
        GRAMMAR.parse_typed(text)
    position = text.index(bad)
    assert info.value.engine == "semantic"
    assert (info.value.offset, info.value.line, info.value.column) == (position, 1, position + 1)
    assert "backwards" in str(info.value)


def items(name: str, *, star_first_only: bool = False) -> st.SearchStrategy[CronField]:
    spec = FIELDS[name]
    value = st.integers(spec.low, spec.high)
    step = st.integers(1, spec.high)
    span = st.one_of(
        st.builds(Span, value),
        # start < end: croniter reads a one-value range such as `0-0` as `*` (its bug, not ours)
        st.tuples(value, value, st.none() | step)
        .filter(lambda t: t[0] != t[1])
        .map(lambda t: Span(min(t[0], t[1]), max(t[0], t[1]), t[2])),
    )
    item = span if star_first_only else st.one_of(span, st.builds(Every, st.none() | step))
    field = st.lists(item, min_size=1, max_size=4).map(lambda xs: CronField(name, tuple(xs)))
    return st.one_of(st.just(CronField(name, (Every(),))), field) if star_first_only else field


crons = st.builds(Cron, *(items(name) for name in ORDER))


@settings(max_examples=150, deadline=None)
@given(crons)
def test_round_trip(cron: Cron) -> None:
    text = str(cron)
    assert GRAMMAR.parse_typed(text) == cron
    assert str(GRAMMAR.parse_typed(text)) == text


# Day fields either exactly `*` or without `*` items: there croniter and Vixie cron agree on how the
# two day fields combine (croniter treats `*/n` as restricted; Vixie cron, and this module, as `*`).
comparable_crons = st.builds(
    Cron, items("minute"), items("hour"), items("day_of_month", star_first_only=True), items("month"),
    items("day_of_week", star_first_only=True),
)


@settings(max_examples=80, deadline=None)
@given(comparable_crons, st.data())
def test_matches_agrees_with_croniter(cron: Cron, data: st.DataObject) -> None:
    croniter = pytest.importorskip("croniter").croniter

    def near(field: CronField, low: int, high: int) -> int:  # mostly values the field admits
        return data.draw(st.sampled_from(sorted(field.values())) | st.integers(low, high))

    when = datetime.datetime(
        data.draw(st.integers(2000, 2040)), near(cron.month, 1, 12), data.draw(st.integers(1, 28)),
        near(cron.hour, 0, 23), near(cron.minute, 0, 59),
    )
    assert cron.matches(when) == croniter.match(str(cron), when)


def test_matches_a_working_week() -> None:
    cron = GRAMMAR.parse_typed("*/15 9-17 * * MON-FRI")
    start = datetime.datetime(2024, 6, 3)  # a Monday
    minutes = [start + datetime.timedelta(minutes=m) for m in range(7 * 24 * 60)]
    fired = [m for m in minutes if cron.matches(m)]
    assert len(fired) == 5 * 9 * 4  # 9:00..17:45 every 15 minutes, Monday to Friday
    assert {m.weekday() for m in fired} == {0, 1, 2, 3, 4}
    assert {m.hour for m in fired} == set(range(9, 18)) and {m.minute for m in fired} == {0, 15, 30, 45}


@pytest.mark.parametrize(
    "build",
    [
        lambda: CronField("minute", (Span(60),)),
        lambda: CronField("hour", (Span(5, 1),)),
        lambda: CronField("day_of_month", (Span(0),)),
        lambda: CronField("minute", (Every(0),)),
        lambda: CronField("minute", (Span(1, None, 5),)),
        lambda: CronField("minute", ()),
        lambda: CronField("second", (Every(),)),
        lambda: Cron(*(CronField("minute", (Every(),)) for _ in range(5))),
    ],
)
def test_models_refuse_what_cron_cannot_say(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(constrain.InputError):
        build()
