"""dsl/cron: field ranges, forward ranges, steps and never-firing schedules in the grammar (both engines,
item by item against the Python checks), names, round trip, and schedule semantics against croniter as
an independent implementation."""

from __future__ import annotations

import calendar
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain.dsl.cron import FIELDS, MONTH_DAYS, Cron, CronField, CronItem, Every, Span, item_of, never_fires

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


def lark_refuses(text: str) -> bool:
    """Whether Lark refuses ``text`` (cheap when it does: the parse stops at the first bad byte)."""
    try:
        GRAMMAR.parse(text)
    except constrain.ValidationError:
        return True
    return False


def field_of(name: str, text: str) -> CronField:
    spec = FIELDS[name]
    return CronField(name, tuple(item_of(spec, part) for part in text.split(",")))


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


def item_spellings(name: str) -> list[tuple[str, CronItem]]:
    """Every item of a field in one numeric spelling, with the value Python builds for it (or None)."""
    spec = FIELDS[name]
    out: list[tuple[str, CronItem]] = [("*", Every())]
    out += [(f"*/{s}", Every(s)) for s in range(0, spec.high + 2)]
    values = range(spec.low - 1, spec.high + 2)
    out += [(f"{a}", Span(a)) for a in values]
    out += [(f"{a}-{b}", Span(a, b)) for a in values for b in values]
    steps = (0, 1, 2, 7, spec.high, spec.high + 1)
    out += [(f"{a}-{b}/{s}", Span(a, b, s)) for a in values for b in values for s in steps if (a + b + s) % 11 == 0]
    return out


@pytest.mark.parametrize("name", ORDER)
def test_grammar_admits_an_item_exactly_when_python_accepts_it(name: str) -> None:
    """Ranges run forward, steps stay in 1..max, values in range: the grammar and CronField agree."""
    for text, item in item_spellings(name):
        try:
            CronField(name, (item,))
            python_ok = True
        except constrain.InputError:
            python_ok = False
        text = with_field(name, text)
        assert GRAMMAR.matches(text) == python_ok, text
    for text, item in item_spellings(name)[::37]:  # Lark (Earley, ~4 ms a parse) on a spread of them
        accepted(with_field(name, text))


@pytest.mark.parametrize(("text", "bad"), [("0 0 * 5,DEC-FEB *", 8), ("30-10 * * * *", 0), ("0\t0\t* * fri-mon/2", 8)])
def test_backwards_range_is_refused_by_both_engines_where_it_starts(text: str, bad: int) -> None:
    assert not accepted(text)
    with pytest.raises(constrain.ValidationError) as info:
        GRAMMAR.parse(text)
    assert info.value.offset >= bad  # the refusal is inside the backwards item, not before it
    with pytest.raises(constrain.InputError, match="after its end"):
        CronField("month", (Span(12, 2),))


def day_month_cases() -> list[tuple[str, str, str]]:
    doms = ["29", "30", "31", "30,31", "31,30", "31-31", "30-31/2", "1,31", "*/30", "*", "31,*", "28-31"]
    months = ["2", "FEB", "4", "4,6,9,11", "2-6/2", "2-4/2", "9-11/2", "1", "2,7", "*", "*/2", "2-3/2", "1-12/11"]
    return [(d, m, w) for d in doms for m in months for w in ("*", "*/2", "MON", "1-5,*")]


DATES = [datetime.date(2000, 1, 1) + datetime.timedelta(days=d) for d in range(366 * 28)]  # every weekday of every day


def test_schedules_that_never_fire_are_not_in_the_language() -> None:
    """Independently of the grammar's classes: a schedule is in the language iff it fires on some date."""
    never = 0
    for dom, month, dow in day_month_cases():
        days, months = field_of("day_of_month", dom), field_of("month", month)
        weekdays = field_of("day_of_week", dow)
        d_values, m_values, w_values = days.values(), months.values(), weekdays.values()
        both = days.is_star or weekdays.is_star  # Vixie cron: AND the day fields if either starts with *

        def on(date: datetime.date) -> bool:
            day_ok, weekday_ok = date.day in d_values, (date.weekday() + 1) % 7 in w_values
            return date.month in m_values and (day_ok and weekday_ok if both else day_ok or weekday_ok)

        fires = any(on(date) for date in DATES)
        text = f"0 0 {dom} {month} {dow}"
        assert GRAMMAR.matches(text) == fires and lark_refuses(text) != fires, text
        assert (never_fires(days, months, weekdays) is None) == fires, text
        never += not fires
    assert 0 < never < len(day_month_cases())
    with pytest.raises(constrain.InputError, match="never fires"):
        Cron(CronField("minute", (Span(0),)), CronField("hour", (Span(0),)), CronField("day_of_month", (Span(30),)),
             CronField("month", (Span(2),)), CronField("day_of_week", (Every(),)))
    assert MONTH_DAYS[1] == 29 and accepted("0 0 29 2 *")


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


def schedules(*fields: st.SearchStrategy[CronField]) -> st.SearchStrategy[Cron]:
    """Crons from field strategies, without the schedules that never fire (not in the language)."""
    return st.tuples(*fields).filter(lambda f: never_fires(*f[2:]) is None).map(lambda f: Cron(*f))


crons = schedules(*(items(name) for name in ORDER))


@settings(max_examples=150, deadline=None)
@given(crons)
def test_round_trip(cron: Cron) -> None:
    text = str(cron)
    assert GRAMMAR.parse_typed(text) == cron
    assert str(GRAMMAR.parse_typed(text)) == text


# Day fields either exactly `*` or without `*` items: there croniter and Vixie cron agree on how the
# two day fields combine (croniter treats `*/n` as restricted; Vixie cron, and this module, as `*`).
comparable_crons = schedules(
    items("minute"), items("hour"), items("day_of_month", star_first_only=True), items("month"),
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
