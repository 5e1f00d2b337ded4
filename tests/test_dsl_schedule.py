"""``dsl/schedule``: schedules in words, converted to the ``Cron`` that fires at the same times, and
``dsl/cron`` asked for in that written form by ``generate`` (against a real server on 127.0.0.1)."""

from __future__ import annotations

import datetime
import random
from typing import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain import Grammar, providers
from constrain.dsl.cron import Cron
from constrain.errors import InputError, ValidationError
from constrain.server import RandomWalkBackend, Server, ServerThread

from _fault_server import FaultServer, fault_server, served  # noqa: F401  (fixtures)

SCHEDULE = constrain.load_grammar("dsl/schedule")
CRON = constrain.load_grammar("dsl/cron")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
Fires = Callable[[datetime.datetime], bool]


def clock_words(hour: int, minute: int, style: int) -> str:
    """One clock time as people write it: 24-hour, 12-hour with am/pm (several spellings), noon, midnight."""
    if style == 0 or (style == 3 and (hour, minute) not in ((0, 0), (12, 0))):
        return f"{hour}:{minute:02d}" if minute or style == 0 else f"{hour}"
    if style == 3:
        return "noon" if hour == 12 else "midnight"
    twelve = hour % 12 or 12
    meridiem = ("am", "AM", "a.m.")[style - 1] if hour < 12 else ("pm", "PM", "p.m.")[style - 1]
    return f"{twelve}{':%02d' % minute if minute else ''} {meridiem}"


@st.composite
def schedules(draw: st.DrawFn) -> tuple[str, Fires]:
    """A schedule in words and, computed from the same choices without cron, when it fires."""
    kind = draw(st.sampled_from(["at", "minutes", "hours", "hour", "window"]))
    if kind == "at":
        hours = draw(st.sets(st.integers(0, 23), min_size=1, max_size=4))
        minutes = draw(st.sets(st.integers(0, 59), min_size=1, max_size=3))
        times = sorted((h, m) for h in hours for m in minutes)
        style = draw(st.integers(0, 3))
        words = "at " + ", ".join(clock_words(h, m, style) for h, m in times)
        in_day: Fires = lambda dt: (dt.hour, dt.minute) in times  # noqa: E731
    elif kind == "minutes":
        step = draw(st.integers(1, 59))
        words = f"every {step} minutes"
        in_day = lambda dt: dt.minute % step == 0  # noqa: E731
    elif kind == "hours":
        step, at = draw(st.integers(1, 23)), draw(st.integers(0, 59))
        words = f"every {step} hours at minute {at}"
        in_day = lambda dt: dt.hour % step == 0 and dt.minute == at  # noqa: E731
    elif kind == "hour":
        first, last = draw(st.integers(0, 23)), draw(st.integers(0, 23))  # last < first: past midnight
        words = f"every hour from {clock_words(first, 0, draw(st.integers(0, 2)))} to {clock_words(last, 0, 0)}"
        in_day = lambda dt: dt.minute == 0 and (first <= dt.hour <= last if first <= last else not last < dt.hour < first)  # noqa: E731
    else:  # every few minutes in a window of whole hours, which ends before its last clock
        step = draw(st.sampled_from([5, 10, 15, 20, 30]))
        first = draw(st.integers(0, 23))
        last = draw(st.integers(0, 23).filter(lambda h: h != first))
        words = f"every {step} minutes from {clock_words(first, 0, 1)} to {clock_words(last, 0, 2)}"
        hours = [h % 24 for h in range(first, first + (last - first) % 24)]
        in_day = lambda dt: dt.minute % step == 0 and dt.hour in hours  # noqa: E731
    days = draw(st.sampled_from(["", "weekdays", "weekends", "list", "range", "ordinals"]))
    on_day: Fires = lambda dt: True  # noqa: E731
    if days == "weekdays":
        words += " on weekdays"
        on_day = lambda dt: dt.weekday() < 5  # noqa: E731
    elif days == "weekends":
        words += " on weekends"
        on_day = lambda dt: dt.weekday() >= 5  # noqa: E731
    elif days == "list":
        chosen = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=4)))
        words += " on " + " and ".join(WEEKDAYS[d] + "s" for d in chosen)
        on_day = lambda dt: (dt.weekday() + 1) % 7 in chosen  # noqa: E731
    elif days == "range":
        monday_on, until = sorted(draw(st.lists(st.integers(1, 6), min_size=2, max_size=2)))
        words += f" from {WEEKDAYS[monday_on]} to {WEEKDAYS[until]}"
        on_day = lambda dt: monday_on <= (dt.weekday() + 1) % 7 <= until  # noqa: E731
    elif days == "ordinals":
        dates = sorted(draw(st.sets(st.integers(1, 28), min_size=1, max_size=3)))
        suffix = lambda d: "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")  # noqa: E731
        words += " on the " + ", ".join(f"{d}{suffix(d)}" for d in dates)
        on_day = lambda dt: dt.day in dates  # noqa: E731
    months = sorted(draw(st.sets(st.integers(1, 12), max_size=3)))
    if months:
        words += " in " + " and ".join(MONTHS[m - 1] for m in months)
    in_month: Fires = (lambda dt: dt.month in months) if months else (lambda dt: True)  # noqa: E731
    return words, lambda dt: in_day(dt) and on_day(dt) and in_month(dt)


def moments(rng: random.Random, n: int) -> Iterator[datetime.datetime]:
    start = datetime.datetime(2025, 1, 1)
    for _ in range(n):
        yield start + datetime.timedelta(minutes=rng.randrange(2 * 366 * 24 * 60))


@settings(max_examples=150, deadline=None)
@given(schedules(), st.integers(0, 2**32 - 1))
def test_words_fire_when_they_say(schedule: tuple[str, Fires], seed: int) -> None:
    """Differential: the converted cron fires exactly when the words' own meaning (computed without
    cron) does, on random minutes and on the first firings the words give."""
    words, fires = schedule
    cron = SCHEDULE.parse_typed(words)
    assert isinstance(cron, Cron) and CRON.parse_typed(str(cron)) == cron
    rng = random.Random(seed)
    checked = list(moments(rng, 300))
    day = datetime.datetime(2025, 1, 1)
    checked += [day + datetime.timedelta(minutes=m) for m in range(0, 7 * 24 * 60, 1) if fires(day + datetime.timedelta(minutes=m))][:200]
    for moment in checked:
        assert cron.matches(moment) == fires(moment), (words, str(cron), moment)


@pytest.mark.parametrize(("words", "cron"), [
    ("at 7:45 am on weekdays", "45 7 * * 1-5"),
    ("at 2:30 PM and 4:30 PM every day", "30 14,16 * * *"),
    ("at 12:30 am", "30 0 * * *"),
    ("at 12 pm on weekends", "0 12 * * 0,6"),
    ("at noon on july 4", "0 12 4 7 *"),
    ("at noon on the 15th of march, june, september and december", "0 12 15 3,6,9,12 *"),
    ("every 10 minutes from 9:00 to 16:50 from monday to friday", "*/10 9-16 * * 1-5"),
    ("every 10 minutes from 9 am to 5 pm", "*/10 9-16 * * *"),
    ("every 20 minutes from midnight until 5:40 am", "*/20 0-5 * * *"),
    ("every 2 hours from 8 am to 6 pm", "0 8-18/2 * * *"),
    ("every 12 hours starting at 6 am", "0 6-18/12 * * *"),
    ("every 20 minutes from 10 pm to 2 am", "*/20 0,1,22,23 * * *"),
    ("every 2 hours from 10 pm to 4 am", "0 0,2,4,22 * * *"),
    ("every hour at minute 5 from 9 am through 5 pm", "5 9-17 * * *"),
    ("every 15 minutes from 2:00 am to 2:45 am", "*/15 2 * * *"),
    ("every hour at minute 15 on the 1st and 15th", "15 * 1,15 * *"),
    ("at 4 am on odd days", "0 4 1-31/2 * *"),
    ("at midnight on the 1st in every other month", "0 0 1 */2 *"),
    ("at 8 am from saturday to monday", "0 8 * * 0,1,6"),
    ("at 9 am from november to february", "0 9 * 1,2,11,12 *"),
    ("Cron */5 9-17 * * MON-FRI", "*/5 9-17 * * 1-5"),
])
def test_worded_examples(words: str, cron: str) -> None:
    assert str(SCHEDULE.parse_typed(words)) == cron


@pytest.mark.parametrize(("words", "needle", "column"), [
    ("at 9:30 and 10:45", "also give 9:45", 1),
    ("every 15 minutes from 9:15 to 17:00", "also runs at 9:00", 1),
    ("every 10 minutes from 9:05 to 10:45", "also runs at 10:55", 1),
    ("at 9 am on february 30", "February has no day 30", 9),
    ("at 9 am on the 31st in april", "never fires", 1),
])
def test_what_one_cron_line_cannot_say_is_refused_where_it_is_written(words: str, needle: str, column: int) -> None:
    with pytest.raises(ValidationError) as caught:
        SCHEDULE.parse_typed(words)
    assert needle in str(caught.value) and (caught.value.line, caught.value.column) == (1, column)


def test_every_walk_converts_or_is_refused_located() -> None:
    """What a model constrained by the grammar can write: each walk is a cron schedule (that dsl/cron
    accepts) or a located ValidationError; refusals stay rare (the few checks a grammar cannot state)."""
    refused = 0
    walks = SCHEDULE.sample(300, seed=11)
    for text in walks:
        try:
            cron = SCHEDULE.parse_typed(text)
        except ValidationError as exc:
            refused += 1
            assert exc.line == 1 and 1 <= exc.column <= len(text)
            continue
        assert CRON.parse_typed(str(cron)) == cron
    assert refused <= 0.1 * len(walks)


def test_written_as_comes_from_the_header_or_the_constructor() -> None:
    assert CRON.written_as is not None and CRON.written_as.name == "dsl/schedule"
    assert CRON.from_written("at 6 pm on the 10th") == "0 18 10 * *"
    plain = Grammar('start: "a"\n')
    assert plain.written_as is None
    with pytest.raises(InputError):
        plain.from_written("a")
    mine = Grammar(CRON.text, written_as=SCHEDULE)
    assert mine.written_as is SCHEDULE and mine.with_transformer(lambda tree: tree).written_as is SCHEDULE


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with ServerThread(Server(RandomWalkBackend(seed=5))) as url:
        yield url


def test_generate_asks_for_words_and_returns_cron(server: str) -> None:
    provider = providers.get("openai", base_url=server)
    for variant in range(4):
        result = constrain.generate(f"every weekday at 9:30 (#{variant})", grammar="dsl/cron", provider=provider,
                                    max_tokens=400)  # random-walk pieces are bytes, not tokens
        assert result.written is not None and result.attempts[-1].raw == result.written
        assert result.raw == str(SCHEDULE.parse_typed(result.written)) and result.value == CRON.parse_typed(result.raw)
        assert result.grammar.name == "dsl/cron" and result.to_dict()["written"] == result.written


def test_the_words_grammar_is_what_the_server_receives(served: tuple[FaultServer, str]) -> None:
    fault_server, url = served
    provider = providers.get("openai", base_url=url)
    constrain.generate("hourly", grammar="dsl/cron", provider=provider, max_tokens=400)
    constrain.generate("hourly", grammar="dsl/cron", provider=provider, max_tokens=400, describe=False)
    first, last = (seen.body["tools"][0]["format"]["definition"] for seen in fault_server.requests_to("/responses"))
    assert first == SCHEDULE.text and last == CRON.text


def test_a_list_one_cron_line_cannot_say_is_fed_back(served: tuple[FaultServer, str]) -> None:
    fault_server, url = served
    fault_server.scripted_backend.scripted.extend(["at 9:30 and 10:45", "at 9:30 am and 10:30 am"])
    result = constrain.generate("at 9:30 and 10:30", grammar="dsl/cron", provider=providers.get("openai", base_url=url))
    assert result.raw == "30 9,10 * * *" and [a.ok for a in result.attempts] == [False, True]
    assert "also give 9:45" in str(result.attempts[0].error)
    feedback = fault_server.requests_to("/responses")[-1].body["input"]
    assert any("at 9:30 and 10:45" in str(m.get("content")) for m in feedback)
