"""``dsl/cron``: five-field cron schedules as a typed value.

    */15 9-17 * * MON-FRI      every 15 minutes from 9:00 to 17:45, Monday to Friday

Every rule of the language is in the grammar, so a model constrained by it writes only valid
schedules: field ranges (minute 0-59, hour 0-23, day 1-31, month 1-12 or JAN-DEC, weekday 0-7 or
SUN-SAT, 0 and 7 both Sunday), ranges whose start is not after their end, steps from 1 to the field's
maximum, and no schedule that can never fire (``0 0 30 2 *``, ``0 0 31 4,6 *``: the least day of the
month exceeds every listed month's length while the weekday field starts with ``*``). The grammar's
terminals are generated from ``FIELDS`` by ``constrain.dsl._terminals``; the same rules are checked
here (``CronField``, ``Cron``, ``never_fires``) for values built in Python. Checks left to Python only:
none. Month and weekday names become numbers; ``str(cron)`` renders the numeric form.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, Union

import lark

from ..grammar._typed import run_transformer
from ..errors import InputError

__all__ = ["Cron", "CronField", "Every", "Span", "CronItem", "FIELDS", "GRAMMAR", "from_tree", "never_fires"]

GRAMMAR = "dsl/cron"

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most days each month has


@dataclass(frozen=True)
class FieldSpec:
    """One cron field: its value range, and the names that stand for numbers (first name = ``first``)."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    first: int = 0

    @property
    def named(self) -> dict[int, str]:
        """Value -> its name (``{1: "JAN", ...}``)."""
        return {self.first + i: name for i, name in enumerate(self.names)}

    @property
    def steps(self) -> range:
        """The steps an item may take (``*/n``, ``a-b/n``): 1 to the field's maximum."""
        return range(1, self.high + 1)

    def number(self, token: str) -> int:
        upper = token.upper()
        if upper in self.names:
            return self.names.index(upper) + self.first
        return int(token)


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("minute", 0, 59),
        FieldSpec("hour", 0, 23),
        FieldSpec("day_of_month", 1, 31),
        FieldSpec("month", 1, 12, MONTH_NAMES, 1),
        FieldSpec("day_of_week", 0, 7, WEEKDAY_NAMES, 0),
    )
}


@dataclass(frozen=True)
class Every:
    """``*`` (every value) or ``*/step``."""

    step: int | None = None

    def to_text(self) -> str:
        return "*" if self.step is None else f"*/{self.step}"


@dataclass(frozen=True)
class Span:
    """``start``, ``start-end`` or ``start-end/step``."""

    start: int
    end: int | None = None
    step: int | None = None

    def to_text(self) -> str:
        text = str(self.start) if self.end is None else f"{self.start}-{self.end}"
        return text if self.step is None else f"{text}/{self.step}"


CronItem = Union[Every, Span]


@dataclass(frozen=True)
class CronField:
    """One field of a schedule: its name (a key of ``FIELDS``) and its comma-separated items."""

    name: str
    items: tuple[CronItem, ...]

    def __post_init__(self) -> None:
        spec = FIELDS.get(self.name)
        if spec is None:
            raise InputError(f"unknown cron field {self.name!r}; one of {', '.join(FIELDS)}")
        if not isinstance(self.items, tuple) or not self.items:
            raise InputError(f"cron field {self.name} needs a non-empty tuple of items")
        for item in self.items:
            _check_item(spec, item)

    def to_text(self) -> str:
        return ",".join(item.to_text() for item in self.items)

    def __str__(self) -> str:
        return self.to_text()

    @property
    def is_star(self) -> bool:
        """Whether the field starts with ``*`` (cron then ANDs rather than ORs the two day fields)."""
        return isinstance(self.items[0], Every)

    def values(self) -> frozenset[int]:
        """The concrete values the field admits (weekday 7 is folded onto 0, both Sunday)."""
        spec = FIELDS[self.name]
        out: set[int] = set()
        for item in self.items:
            if isinstance(item, Every):
                high = 6 if self.name == "day_of_week" else spec.high
                out.update(range(spec.low, high + 1, item.step or 1))
            else:
                out.update(range(item.start, (item.start if item.end is None else item.end) + 1, item.step or 1))
        if self.name == "day_of_week" and 7 in out:
            out.discard(7)
            out.add(0)
        return frozenset(out)


def _check_item(spec: FieldSpec, item: Any) -> None:
    if isinstance(item, Every):
        bounds = [] if item.step is None else [("step", item.step, 1, spec.high)]
    elif isinstance(item, Span):
        if item.step is not None and item.end is None:
            raise InputError(f"{spec.name}: a step needs a range (a-b/n), got {item!r}")
        bounds = [("start", item.start, spec.low, spec.high)]
        if item.end is not None:
            bounds.append(("end", item.end, spec.low, spec.high))
        if item.step is not None:
            bounds.append(("step", item.step, 1, spec.high))
    else:
        raise InputError(f"{spec.name}: items are Every or Span, not {type(item).__name__}")
    for what, value, low, high in bounds:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{spec.name}: {what} {value!r} is outside {low}-{high}")
    if isinstance(item, Span) and item.end is not None and item.start > item.end:
        raise InputError(f"{spec.name}: range start {item.start} is after its end {item.end}")


@dataclass(frozen=True)
class Cron:
    """A five-field schedule. ``str()`` gives the cron text; ``matches(dt)`` applies cron's rules."""

    minute: CronField
    hour: CronField
    day_of_month: CronField
    month: CronField
    day_of_week: CronField

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if not isinstance(value, CronField) or value.name != name:
                raise InputError(f"Cron.{name} must be CronField({name!r}, ...)")
        problem = never_fires(self.day_of_month, self.month, self.day_of_week)
        if problem:
            raise InputError(problem)

    def to_text(self) -> str:
        return " ".join(getattr(self, name).to_text() for name in FIELDS)

    def __str__(self) -> str:
        return self.to_text()

    def matches(self, when: datetime.datetime) -> bool:
        """Whether the schedule fires at ``when`` (to the minute).

        As in Vixie cron: when both day fields are restricted, either one matching is enough.
        """
        if when.minute not in self.minute.values() or when.hour not in self.hour.values():
            return False
        if when.month not in self.month.values():
            return False
        day_ok = when.day in self.day_of_month.values()
        weekday_ok = (when.weekday() + 1) % 7 in self.day_of_week.values()
        if self.day_of_month.is_star or self.day_of_week.is_star:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def never_fires(day_of_month: CronField, month: CronField, day_of_week: CronField) -> str | None:
    """Why a schedule with these day fields can never fire, or None when it can.

    Only when the weekday field starts with ``*`` (cron then ANDs the day fields) and the day field does
    not: then some listed day must exist in some listed month (February has 29 days at most)."""
    if not day_of_week.is_star or day_of_month.is_star:
        return None
    least = min(day_of_month.values())
    if any(least <= MONTH_DAYS[m - 1] for m in month.values()):
        return None
    return f"day of month {day_of_month} never occurs in month {month}, so the schedule never fires"


_ITEM = re.compile(r"(?:(?P<star>\*)|(?P<start>[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?)(?:/(?P<step>[0-9]+))?")


def item_of(spec: FieldSpec, text: str) -> CronItem:
    """The item a grammar terminal spells (``*/5``, ``MON-FRI``, ``1-31/2``); checked by ``CronField``."""
    m = _ITEM.fullmatch(text)
    if m is None:
        raise ValueError(f"not a cron {spec.name} item: {text!r}")
    step = int(m["step"]) if m["step"] else None
    if m["star"]:
        return Every(step)
    return Span(spec.number(m["start"]), spec.number(m["end"]) if m["end"] else None, step)


class CronTransformer(lark.Transformer):
    """Turns a ``dsl/cron`` tree into a ``Cron``. The grammar has already refused every invalid schedule;
    the checks of ``CronField`` and ``Cron`` run again for values built in Python. Reusable for grammars
    that embed cron (``merge_transformers(base, cron=CronTransformer())``)."""

    def start(self, children: list[CronField]) -> Cron:
        problem = never_fires(*children[2:])
        if problem:
            raise ValueError(problem)
        return Cron(*children)

    def _field(name: str) -> Any:  # type: ignore[misc]
        # items are read here rather than in terminal callbacks, which `merge_transformers` cannot prefix
        def method(self: CronTransformer, children: list[lark.Token]) -> CronField:
            spec = FIELDS[name]
            return CronField(name, tuple(item_of(spec, str(token)) for token in children))

        return method

    minute = _field("minute")
    hour = _field("hour")
    dom_low = dom_30 = dom_31 = _field("day_of_month")
    month = month_feb = month_not_feb = month_short = month_not_short = _field("month")
    day_of_week = dow_restricted = _field("day_of_week")
    del _field


def from_tree(text: str, tree: lark.Tree) -> Cron:
    """The typed value of a validated ``dsl/cron`` text (registered in ``constrain.grammar._typed.TYPERS``)."""
    return run_transformer(CronTransformer().transform, text, tree, GRAMMAR)  # type: ignore[no-any-return]


def parse(text: str) -> Cron:
    """Validate ``text`` with both engines and return its ``Cron``."""
    from ..grammar import load_grammar

    return load_grammar(GRAMMAR).parse_typed(text)  # type: ignore[no-any-return]
