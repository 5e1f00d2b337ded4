"""``dsl/schedule``: a schedule in words, converted to the ``Cron`` that fires at the same times.

    at 7:45 am on weekdays                        45 7 * * 1-5
    at 2:30 pm and 4:30 pm                        30 14,16 * * *
    every 2 hours from 8 am to 6 pm in june       0 8-18/2 * 6 *
    every hour at minute 20 on the 1st and 15th   20 * 1,15 * *
    cron */5 * * * *                              */5 * * * *

A small model copies a request's own words ("at 2:30 PM", "on July 4") far more reliably than it
writes cron's five fields in their order: ``dsl/cron`` names this grammar as the one its values are
written in (``// written-as: dsl/schedule``), so ``generate(..., grammar="dsl/cron")`` asks for words
and returns the validated cron text and its ``Cron``. ``cron`` followed by five fields keeps every cron
schedule writable.

What the words cannot say in one cron line is refused, located, by the conversion: clock times whose
minutes differ between hours (``at 9:30 and 10:45``), a step that does not fit its field, a window that
ends before it starts, a date that never occurs.
"""

from __future__ import annotations

from typing import Any

import lark
from lark.visitors import merge_transformers

from ..grammar._typed import run_transformer
from .cron import MONTH_DAYS, Cron, CronTransformer, CronField, CronItem, Every, Span, never_fires

__all__ = ["GRAMMAR", "from_tree", "parse"]

GRAMMAR = "dsl/schedule"

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _items(values: list[int]) -> tuple[CronItem, ...]:
    """Sorted values as cron items, runs of three or more as ranges (``1,2,3,5`` -> ``1-3,5``)."""
    ordered = sorted(set(values))
    items: list[CronItem] = []
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            run = ordered[start:i]
            if len(run) >= 3:
                items.append(Span(run[0], run[-1]))
            else:
                items.extend(Span(v) for v in run)
            start = i
    return tuple(items)


def _field(name: str, items: tuple[CronItem, ...] | None) -> CronField:
    return CronField(name, items or (Every(),))


class _Clock:
    def __init__(self, hour: int, minute: int) -> None:
        self.hour, self.minute = hour, minute


class ScheduleTransformer(lark.Transformer):
    """Turns a ``dsl/schedule`` tree into a ``Cron``; a ``ValueError`` raised here is located by
    ``run_transformer`` at the part it was converting."""

    # -- clock times --------------------------------------------------------------------------------
    def clock12(self, children: list[lark.Token]) -> _Clock:
        hour = int(children[0])
        minute = int(children[1]) if len(children) == 3 else 0
        pm = str(children[-1]).lower().startswith("p")
        return _Clock(hour % 12 + (12 if pm else 0), minute)

    def clock24(self, children: list[lark.Token]) -> _Clock:
        return _Clock(int(children[0]), int(children[1]) if len(children) == 2 else 0)

    def noon(self, _: list[Any]) -> _Clock:
        return _Clock(12, 0)

    def midnight(self, _: list[Any]) -> _Clock:
        return _Clock(0, 0)

    def window(self, children: list[_Clock]) -> tuple[_Clock, _Clock]:
        return (children[0], children[1]) if len(children) == 2 else (children[0], _Clock(23, 59))

    def past(self, children: list[lark.Token]) -> int:
        return int(children[0])

    # -- when in the day: (minute items, hour items) ----------------------------------------------------
    def at_times(self, children: list[_Clock]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...]]:
        minutes = sorted({c.minute for c in children})
        hours = sorted({c.hour for c in children})
        wanted = {(c.hour, c.minute) for c in children}
        for hour in hours:
            for minute in minutes:
                if (hour, minute) not in wanted:
                    raise ValueError(f"cron fires at every listed minute of every listed hour, so these times also give "
                                     f"{hour}:{minute:02d}; list times that share their minutes, or ask for two schedules")
        return _items(minutes), _items(hours)

    def every_minute(self, children: list[Any]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
        return _minute_steps(1, children[0] if children else None)

    def every_minutes(self, children: list[Any]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
        return _minute_steps(int(children[0]), children[1] if len(children) > 1 else None)

    def every_hour(self, children: list[Any]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
        return _hour_steps(1, children)

    def every_hours(self, children: list[Any]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
        return _hour_steps(int(children[0]), children[1:])

    # -- days and months: (field name, items) ----------------------------------------------------------
    def every_day(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return []

    def weekdays(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_week", (Span(1, 5),))]

    def weekends(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_week", (Span(0), Span(6)))]

    def on_weekdays(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_week", _items([_weekday(t) for t in children]))]

    def weekday_range(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        first, last = _weekday(children[0]), _weekday(children[1])
        if last < first:  # saturday to monday: the week wraps at sunday
            return [("day_of_week", _items([*range(first, 7), *range(0, last + 1)]))]
        return [("day_of_week", _items(list(range(first, last + 1))))]

    def on_days(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_month", _items([int(str(t)[:-2]) for t in children]))]

    def on_days_of(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        days = [int(str(t)[:-2]) for t in children if t.type == "ORDINAL"]
        months = [_month(t) for t in children if t.type == "MONTH"]
        return [("day_of_month", _items(days)), ("month", _items(months))]

    def odd_days(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_month", (Span(1, 31, 2),))]

    def even_days(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("day_of_month", (Span(2, 30, 2),))]

    def on_date(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        month = _month(children[0])
        days = [int(t) for t in children[1:]]
        late = [d for d in days if d > MONTH_DAYS[month - 1]]
        if late:
            raise ValueError(f"{str(children[0]).capitalize()} has no day {late[0]}")
        return [("month", (Span(month),)), ("day_of_month", _items(days))]

    def in_months(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("month", _items([_month(t) for t in children]))]

    def every_other_month(self, _: list[Any]) -> list[tuple[str, tuple[CronItem, ...]]]:
        return [("month", (Every(2),))]

    def month_range(self, children: list[lark.Token]) -> list[tuple[str, tuple[CronItem, ...]]]:
        first, last = _month(children[0]), _month(children[1])
        if last < first:  # november to february: the year wraps at december
            return [("month", _items([*range(first, 13), *range(1, last + 1)]))]
        return [("month", _items(list(range(first, last + 1))))]

    # -- the whole schedule ------------------------------------------------------------------------------
    def start(self, children: list[Any]) -> Cron:
        (minutes, hours), *parts = children
        fields: dict[str, tuple[CronItem, ...]] = {}
        for part in parts:
            for name, items in part:
                if name in fields:
                    raise ValueError(f"the {name.replace('_', ' ')} is given twice")
                fields[name] = items
        day_of_month = _field("day_of_month", fields.get("day_of_month"))
        month = _field("month", fields.get("month"))
        day_of_week = _field("day_of_week", fields.get("day_of_week"))
        problem = never_fires(day_of_month, month, day_of_week)
        if problem:
            raise ValueError(problem)
        return Cron(_field("minute", minutes), _field("hour", hours), day_of_month, month, day_of_week)

    def cron(self, children: list[Cron]) -> Cron:
        return children[0]


def _hours(first: int, last: int) -> list[int]:
    """The hours from ``first`` to ``last``, both included, past midnight when ``last`` comes before."""
    return list(range(first, last + 1)) if last >= first else [*range(first, 24), *range(0, last + 1)]


def _hour_field(hours: list[int], step: int = 1) -> tuple[CronItem, ...]:
    if len(hours) > 1 and hours == list(range(hours[0], hours[-1] + 1, step)):
        return (Span(hours[0], hours[-1], step if step > 1 else None),) if step > 1 or len(hours) >= 3 else _items(hours)
    return _items(hours)


def _minute_steps(step: int, window: tuple[_Clock, _Clock] | None) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
    """Every ``step`` minutes (cron's ``*/step``: from :00 each hour), within ``window`` if given: it starts
    at its first clock's minute, and ends at its last clock, or before it when that is on the hour. A window
    cron cannot follow exactly in one line (a first run past the step, a last hour that runs on after the
    end) is refused with the times it would add."""
    if window is None:
        return ((Every(step) if step > 1 else Every()),), None
    first, last = window
    offset = first.minute
    if offset >= step:
        raise ValueError(f"cron repeats the same minutes every hour, so a {step}-minute step that starts at "
                         f"{first.hour}:{offset:02d} also runs at {first.hour}:{offset % step:02d}; start the window "
                         f"at {first.hour}:{offset % step:02d} or on the hour")
    final = offset + step * ((59 - offset) // step)  # the last minute of each hour it runs at
    if last.minute == 0 and (last.hour, 0) != (first.hour, first.minute):
        end = (last.hour - 1) % 24
    elif last.minute >= offset:
        end = last.hour
        if final > last.minute:
            raise ValueError(f"cron repeats the same minutes every hour, so the last hour also runs at "
                             f"{last.hour}:{final:02d}, after {last.hour}:{last.minute:02d}; end the window at "
                             f"{last.hour}:{final:02d} or on the hour")
    else:
        end = (last.hour - 1) % 24
    minutes: tuple[CronItem, ...] = (Span(offset, 59, step) if step > 1 else Span(offset, 59),) if offset else (
        (Every(step) if step > 1 else Every()),)
    return minutes, _hour_field(_hours(first.hour, end))


def _hour_steps(step: int, children: list[Any]) -> tuple[tuple[CronItem, ...], tuple[CronItem, ...] | None]:
    """Every ``step`` hours at one minute (``at minute m``, else the window's first minute, else :00),
    within ``window`` if given: its hours, the last clock's hour included (``from 9 am to 5 pm`` runs at
    5 pm, as people read it), past midnight when the window is."""
    minute = next((c for c in children if isinstance(c, int)), None)
    window = next((c for c in children if isinstance(c, tuple)), None)
    if window is None:
        return (Span(minute or 0),), ((Every(step) if step > 1 else Every()),)
    first, last = window
    if minute is None:
        minute = first.minute
    start = first.hour if minute >= first.minute else (first.hour + 1) % 24
    hours = _hours(start, last.hour)[::step]
    return (Span(minute),), _hour_field(hours, step)


def _weekday(token: lark.Token) -> int:
    return _WEEKDAYS.index(str(token)[:3].lower())


def _month(token: lark.Token) -> int:
    return _MONTHS.index(str(token)[:3].lower()) + 1


def from_tree(text: str, tree: lark.Tree) -> Cron:
    """The ``Cron`` of a validated ``dsl/schedule`` text (registered in ``constrain.grammar._typed.TYPERS``)."""
    transformer = merge_transformers(ScheduleTransformer(), cron=CronTransformer())
    return run_transformer(transformer.transform, text, tree, GRAMMAR)  # type: ignore[no-any-return]


def parse(text: str) -> Cron:
    """Validate ``text`` with both engines and return the ``Cron`` it describes."""
    from ..grammar import load_grammar

    return load_grammar(GRAMMAR).parse_typed(text)  # type: ignore[no-any-return]

