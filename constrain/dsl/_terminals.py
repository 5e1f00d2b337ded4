"""Generated terminals of the packaged DSL grammars: checks that are finite (cron ranges, steps, the
day/month combinations that never occur, a float's exponent, a calendar date) spelled as regexes.

The ``.lark`` files hold the output between ``// generated`` markers; ``python -m constrain.dsl._terminals``
rewrites those blocks, and ``tests/test_dsl_terminals.py`` fails when a file and this module drift.
The typed checks in ``cron.py`` and ``filter.py`` state the same rules in Python, and the tests prove
both sides agree string by string where the sets are finite.

Every alternation lists longer spellings first: Lark's dynamic lexer takes the first match of a
terminal's regex (Python ``re``), so ``12`` must be tried before ``1``.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import Callable, Iterable

from .cron import FIELDS, MONTH_DAYS, FieldSpec

Keep = Callable[[int | None, int | None, int | None], bool]

__all__ = ["CRON_FIELDS", "cron_terminals", "filter_terminals", "month_class", "rewrite"]

SHORT_MONTHS = frozenset(m for m, days in enumerate(MONTH_DAYS, start=1) if days < 31)  # 2, 4, 6, 9, 11


# -- spelling sets of small integers -------------------------------------------------------------------


def _char_class(digits: Iterable[int]) -> str:
    ds = sorted(set(digits))
    runs: list[str] = []
    for _, group in itertools.groupby(enumerate(ds), key=lambda p: p[1] - p[0]):
        run = [d for _, d in group]
        if len(run) == 1:
            runs.append(str(run[0]))
        elif len(run) == 2:
            runs.append(f"{run[0]}{run[1]}")
        else:
            runs.append(f"{run[0]}-{run[-1]}")
    body = "".join(runs)
    return body if len(ds) == 1 else f"[{body}]"


def _name(name: str) -> str:
    return "".join(f"[{c.lower()}{c}]" for c in name)


def _tiers(values: Iterable[int], names: dict[int, str]) -> list[list[str]]:
    """Regex alternatives for a set of values, in tiers that must be tried in order: two-digit numbers,
    one-digit numbers (with an optional leading zero), then names."""
    vs = sorted(set(values))
    two = [v for v in vs if v >= 10]
    one = [v for v in vs if v < 10]
    tiers: list[list[str]] = [[], [], []]
    by_units: dict[tuple[int, ...], list[int]] = {}
    for tens, group in itertools.groupby(two, key=lambda v: v // 10):
        by_units.setdefault(tuple(v % 10 for v in group), []).append(tens)
    for units, tens_digits in by_units.items():
        tiers[0].append(f"{_char_class(tens_digits)}{_char_class(units)}")
    if one:
        tiers[1].append(f"0?{_char_class(one)}")
    tiers[2] += [_name(names[v]) for v in vs if v in names]
    return tiers


def spell(values: Iterable[int], names: dict[int, str] | None = None) -> str:
    """One regex matching exactly the spellings of ``values`` (longest first)."""
    alternatives = [a for tier in _tiers(values, names or {}) for a in tier]
    if not alternatives:
        raise ValueError("no values to spell")
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def _group(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


# -- cron -----------------------------------------------------------------------------------------------


CRON_FIELDS = FIELDS


def item_values(spec: FieldSpec, start: int | None, end: int | None, step: int | None) -> frozenset[int]:
    """The values of one item: ``*`` (start None), ``a``, ``a-b``, with an optional ``/step``."""
    low, high = (spec.low, spec.high) if start is None else (start, start if end is None else end)
    return frozenset(range(low, high + 1, step or 1))


def month_class(values: frozenset[int]) -> str:
    """``FEB`` (only February), ``SHORT`` (months of at most 30 days, not only February) or ``LONG``."""
    if values <= {2}:
        return "FEB"
    return "SHORT" if values <= SHORT_MONTHS else "LONG"


def _follow_regex(spec: FieldSpec, end_re: str, bare: bool, steps: tuple[int, ...]) -> str:
    if not steps:
        return end_re
    step_re = spell(steps)
    return f"{end_re}(?:/{step_re})?" if bare else f"{end_re}/{step_re}"


def _items_regex(spec: FieldSpec, keep: Keep) -> str | None:
    """The regex of every item of ``spec`` for which ``keep(start, end, step)`` holds; None if none does.

    Ranges (with their steps) come first, then single values, then ``*`` forms."""
    named = spec.named
    values = range(spec.low, spec.high + 1)
    # start -> end -> (bare range kept?, the steps kept)
    table: dict[int, dict[int, tuple[bool, tuple[int, ...]]]] = {}
    for start in values:
        for end in range(start, spec.high + 1):
            bare = keep(start, end, None)
            steps = tuple(s for s in spec.steps if keep(start, end, s))
            if bare or steps:
                table.setdefault(start, {})[end] = (bare, steps)
    follows = {follow for ends in table.values() for follow in ends.values()}
    shared = next(iter(follows)) if len(follows) == 1 else None
    ranges: list[str] = []
    for start, ends in table.items():
        start_re = spell([start], {start: named[start]} if start in named else {})
        if shared is not None:  # every range may be followed by the same steps: say them once, below
            ranges.append(f"{start_re}-{spell(ends, {v: n for v, n in named.items() if v in ends})}")
            continue
        # group ends by what may follow them; within each spelling tier (two digits, one digit, names)
        # so that no shorter spelling is tried before a longer one it is a prefix of
        by_follow: dict[tuple[bool, tuple[int, ...]], list[int]] = {}
        for end, follow in ends.items():
            by_follow.setdefault(follow, []).append(end)
        tiered: list[list[str]] = [[], [], []]
        for (bare, steps), group in by_follow.items():
            for tier, spelled in enumerate(_tiers(group, {v: n for v, n in named.items() if v in group})):
                if spelled:
                    tiered[tier].append(_follow_regex(spec, _group(spelled), bare, steps))
        ranges.append(f"{start_re}-{_group([a for tier in tiered for a in tier])}")
    alternatives: list[str] = []
    if ranges and shared is not None:
        alternatives.append(_follow_regex(spec, _group(ranges), *shared))
    else:
        alternatives += ranges
    singles = [v for v in values if keep(v, None, None)]
    if singles:
        alternatives.append(spell(singles, {v: n for v, n in named.items() if v in singles}))
    star_steps = tuple(s for s in spec.steps if keep(None, None, s))
    star_bare = keep(None, None, None)
    if star_steps or star_bare:
        alternatives.append(_follow_regex(spec, r"\*", star_bare, star_steps))
    return "|".join(alternatives) if alternatives else None


def _forward(start: int | None, end: int | None) -> bool:
    return start is None or end is None or start <= end


def cron_terminals() -> dict[str, str]:
    """Terminal name -> regex of whole cron items, one terminal per class the grammar's rules need."""
    f = CRON_FIELDS

    def field(spec: FieldSpec, extra: Keep = lambda a, b, s: True) -> str:
        regex = _items_regex(spec, lambda a, b, s: _forward(a, b) and extra(a, b, s))
        assert regex is not None
        return regex

    def day_start(test: Callable[[int], bool]) -> Keep:
        return lambda a, b, s: test(1 if a is None else a)  # the least day an item admits is its start

    def month_of(cls: str) -> Keep:
        return lambda a, b, s: month_class(item_values(f["month"], a, b, s)) == cls

    return {
        "MINUTE": field(f["minute"]),
        "HOUR": field(f["hour"]),
        "DAY_LOW": field(f["day_of_month"], day_start(lambda d: d <= 29)),
        "DAY_30": field(f["day_of_month"], day_start(lambda d: d == 30)),
        "DAY_31": field(f["day_of_month"], day_start(lambda d: d == 31)),
        "MONTH_FEB": field(f["month"], month_of("FEB")),
        "MONTH_SHORT": field(f["month"], month_of("SHORT")),
        "MONTH_LONG": field(f["month"], month_of("LONG")),
        "WEEKDAY_STAR": field(f["day_of_week"], lambda a, b, s: a is None),
        "WEEKDAY": field(f["day_of_week"], lambda a, b, s: a is not None),
    }


# -- filter ---------------------------------------------------------------------------------------------

MAX_INT_DIGITS = 18
MAX_MAGNITUDE = 308
"""A number's integer digits plus its exponent are at most 308, so its magnitude is below 1e308 (the
largest float is 1.797e308): the grammar and ``filter.number_in_range`` use this same rule."""


def _at_most(limit: int) -> str:
    """Exponent digits (1 to 3, leading zeros allowed) whose value is at most ``limit`` (0..999)."""
    out: list[str] = []
    # three-digit spellings d1 d2 d3 <= limit, by the first digit that is smaller
    padded = f"{limit:03d}"
    for i in range(3):
        digit = int(padded[i])
        if digit > 0:
            out.append(padded[:i] + _char_class(range(0, digit)) + "[0-9]" * (2 - i))
    out.append(padded)
    three = "|".join(out)
    two = "[0-9]{1,2}" if limit >= 99 else None
    return f"(?:{three}|{two})" if two else f"(?:{three})"


def number_regex() -> str:
    frac = r"(?:\.[0-9]{1,20})?"
    alternatives = []
    for digits in range(MAX_INT_DIGITS, 0, -1):
        head = "[1-9]" + ("[0-9]" * (digits - 1) if digits <= 3 else f"[0-9]{{{digits - 1}}}")
        heads = f"(?:{head}|0)" if digits == 1 else head
        alternatives.append(f"{heads}{frac}(?:[eE](?:-[0-9]{{1,3}}|\\+?{_at_most(MAX_MAGNITUDE - digits)}))?")
    return "-?(?:" + "|".join(alternatives) + ")"


def _leap_years() -> str:
    # divisible by 4 and not by 100, or by 400 (year 0000 is not a date)
    by4 = "0[48]|[2468][048]|[13579][26]"
    return f"[0-9][0-9](?:{by4})|(?:{by4})00"


def date_regex() -> str:
    year = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    day31 = "(?:0[1-9]|[12][0-9]|3[01])"
    day30 = "(?:0[1-9]|[12][0-9]|30)"
    day28 = "(?:0[1-9]|1[0-9]|2[0-8])"
    return (
        f"{year}-(?:(?:0[13578]|1[02])-{day31}|(?:0[469]|11)-{day30}|02-{day28})"
        f"|(?:{_leap_years()})-02-29"
    )


def string_regex() -> str:
    """JSON string syntax without lone surrogate escapes (a high escape must have its low one)."""
    hex_ = "[0-9a-fA-F]"
    not_surrogate = rf"\\u(?:[0-9a-cA-Ce-fE-F]{hex_}{{3}}|[dD][0-7]{hex_}{{2}})"
    pair = rf"\\u[dD][89abAB]{hex_}{{2}}\\u[dD][c-fC-F]{hex_}{{2}}"
    return rf'"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|{not_surrogate}|{pair}){{0,256}}"'


def _decimal_at_most(limit: int) -> str:
    """Decimal numbers 0..``limit`` without leading zeros (prefix ``0*`` to allow them)."""
    text = str(limit)
    shorter = [] if len(text) == 1 else ["0", "[1-9]" + ("" if len(text) == 2 else f"[0-9]{{0,{len(text) - 2}}}")]
    same: list[str] = []
    for i, ch in enumerate(text):
        low = 1 if i == 0 and len(text) > 1 else 0
        if int(ch) > low:
            same.append(text[:i] + _char_class(range(low, int(ch))) + ("" if i == len(text) - 1 else f"[0-9]{{{len(text) - i - 1}}}"))
    same.append(text)
    return "(?:" + "|".join([*same, *shorter]) + ")"


JSON_MAX_MAGNITUDE = 309  # JSON numbers below 1e309 in magnitude: the band above the largest double
JSON_EXACT_DIGITS = 10  # (1.7976931348623157e308) is the typed check's, as are the generous forms below
JSON_EXACT_ZEROS = 20


def json_number_regex() -> str:
    """Every JSON number below 1e309 in magnitude, and every integer (Python ints are unbounded).

    A number whose integer part has k digits takes a positive exponent up to 309 - k (leading zeros and
    '+' allowed) and any negative one (at worst it underflows to 0.0); ``0.0…0d`` with j zeros takes up
    to 309 + j. Exact for integer parts of up to JSON_EXACT_DIGITS digits and up to JSON_EXACT_ZEROS
    zeros; beyond them the bound is that of the longest exact form (generous: the typed check refuses
    what still overflows). The form keeps llguidance's regex derivatives few: no alternative counts the
    digits of a long integer part next to hundreds of others (that exhausts its expression budget).
    Longer alternatives come first for Python's first-match alternation (Lark)."""
    frac = "(?:\\.[0-9]+)?"
    exponent = "[eE]\\+?0*"
    alternatives = [f"[1-9][0-9]*{frac}[eE]-[0-9]+", f"0\\.0{{{JSON_EXACT_ZEROS + 1},}}[1-9][0-9]*[eE][+-]?[0-9]+"]
    for zeros in range(JSON_EXACT_ZEROS, -1, -1):
        head = "0\\." + (f"0{{{zeros}}}" if zeros else "")
        alternatives.append(f"{head}[1-9][0-9]*(?:[eE]-[0-9]+|{exponent}{_decimal_at_most(JSON_MAX_MAGNITUDE + zeros)})")
    alternatives.append("0(?:\\.[0-9]+)?[eE]-[0-9]+")
    alternatives.append("0(?:\\.0+)?[eE][+-]?[0-9]+")  # zero, whatever its exponent
    longest = JSON_MAX_MAGNITUDE - JSON_EXACT_DIGITS - 1
    alternatives.append(f"[1-9][0-9]{{{JSON_EXACT_DIGITS},}}{frac}{exponent}{_decimal_at_most(longest)}")
    common = JSON_MAX_MAGNITUDE - JSON_EXACT_DIGITS  # an exponent every exact integer part takes
    for k in range(JSON_EXACT_DIGITS, 0, -1):
        head = "[1-9]" + (f"[0-9]{{{k - 1}}}" if k > 1 else "")
        bound = JSON_MAX_MAGNITUDE - k
        if bound > common:
            alternatives.append(f"{head}{frac}{exponent}{_decimal_at_most(bound)}")
    alternatives.append(f"[1-9][0-9]{{0,{JSON_EXACT_DIGITS - 1}}}{frac}{exponent}{_decimal_at_most(common)}")
    alternatives.append(f"[1-9][0-9]{{0,{JSON_MAX_MAGNITUDE - 1}}}\\.[0-9]+")
    alternatives.append("0\\.[0-9]+")
    alternatives.append("[1-9][0-9]*|0")
    return "-?(?:" + "|".join(alternatives) + ")"


def json_terminals() -> dict[str, str]:
    return {"NUMBER": json_number_regex()}


def filter_terminals() -> dict[str, str]:
    return {"STRING": string_regex(), "NUMBER": number_regex(), "DATE": date_regex()}


# -- the .lark files ------------------------------------------------------------------------------------

GENERATED = {"dsl/cron": cron_terminals, "dsl/filter": filter_terminals, "json": json_terminals}
_BEGIN = "// generated by `python -m constrain.dsl._terminals`: edit constrain/dsl/_terminals.py, not here"
_END = "// end of generated terminals"
_SLASH = re.compile(r"(?<!\\)/")  # a slash ends a /regex/ in Lark: escape it
_ESCAPED_SLASH = "\\\\/"


def render(terminals: dict[str, str]) -> str:
    lines = [f"{name}: /{_SLASH.sub(_ESCAPED_SLASH, regex)}/" for name, regex in terminals.items()]
    return "\n".join([_BEGIN, *lines, _END])


def rewrite(text: str, terminals: dict[str, str]) -> str:
    """``text`` with its generated block replaced by ``terminals``."""
    pattern = re.compile(re.escape(_BEGIN) + r".*?" + re.escape(_END), re.S)
    if not pattern.search(text):
        raise ValueError("no generated block in the grammar")
    return pattern.sub(lambda _: render(terminals), text)


def grammar_path(name: str) -> Path:
    from ..grammar._packaged import grammars_dir  # the checkout's grammars/, or the wheel's constrain/grammars

    return grammars_dir() / f"{name}.lark"


def main() -> int:
    for name, make in GENERATED.items():
        path = grammar_path(name)
        old = path.read_text(encoding="utf-8")
        new = rewrite(old, make())
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
