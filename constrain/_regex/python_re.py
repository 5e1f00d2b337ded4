"""Python ``re`` regular expressions (lark terminals) -> the shared AST.

The regex is read by Python's own parser (``re._parser``), so a class, flag or escape means here
exactly what it means to lark: character sets are computed as code-point intervals (``\\d \\w \\s``
with Python's Unicode meaning, or ASCII under the ``a`` flag; ``i`` expanded to every case variant
Python's matcher accepts; ``.`` without the ``s`` flag excluding ``\\n``).

What a lexer takes for a token is a regular language only without lazy quantifiers, anchors, word
boundaries, lookaround, backreferences, conditional groups, possessive quantifiers, atomic groups and
the locale flag: those are refused (``UnsupportedConstruct``, naming the construct). An invalid regex
raises ``re.error``.
"""

from __future__ import annotations

import functools
import re
import re._constants as _sc  # type: ignore[import-not-found]
import re._parser as _sre_parse  # type: ignore[import-not-found]
from typing import Callable, Iterable

from .charsets import ANY, ASCII_DIGIT, ASCII_WORD, MAX_CP, SURROGATES, Intervals, intersect, minus, without_surrogates
from .nodes import AltNode, CharNode, Node, PatternError, RepNode, SeqNode

__all__ = ["parse", "UnsupportedConstruct"]

_SURROGATE_LO, _SURROGATE_HI = SURROGATES[0]


class UnsupportedConstruct(PatternError):
    """The regex uses a construct (the message names it) that has no regular-language meaning here."""


def parse(regex: str) -> Node:
    parsed = _sre_parse.parse(regex)
    return _sub(parsed, parsed.state.flags)


# ---------------------------------------------------------------------------------------------------
# character sets with Python's meaning


def _from_predicate(pred: Callable[[str], bool]) -> Intervals:
    ranges: list[tuple[int, int]] = []
    start = None
    for cp in range(MAX_CP + 2):
        inside = cp <= MAX_CP and not (_SURROGATE_LO <= cp <= _SURROGATE_HI) and pred(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return without_surrogates(ranges)


@functools.lru_cache(maxsize=None)
def _category(code: object) -> Intervals:
    """Python's meaning of ``\\d \\s \\w`` (Unicode by default) as intervals."""
    c = _sc
    if code in (c.CATEGORY_DIGIT, c.CATEGORY_NOT_DIGIT):
        base = _from_predicate(str.isdecimal)
    elif code in (c.CATEGORY_SPACE, c.CATEGORY_NOT_SPACE):
        base = _from_predicate(str.isspace)
    elif code in (c.CATEGORY_WORD, c.CATEGORY_NOT_WORD):
        base = _from_predicate(lambda ch: ch.isalnum() or ch == "_")
    else:
        raise KeyError(code)
    negated = code in (c.CATEGORY_NOT_DIGIT, c.CATEGORY_NOT_SPACE, c.CATEGORY_NOT_WORD)
    return minus(ANY, base) if negated else base


_ASCII_CATEGORY = {"DIGIT": ASCII_DIGIT, "SPACE": ((0x09, 0x0D), (0x20, 0x20)), "WORD": ASCII_WORD}


def _ascii_category(code: object) -> Intervals:
    name = str(code).replace("CATEGORY_", "")
    negated = name.startswith("NOT_")
    base = _ASCII_CATEGORY[name.replace("NOT_", "")]
    return minus(ANY, base) if negated else base


@functools.lru_cache(maxsize=1)
def _cased() -> tuple[int, ...]:
    """Code points that have case variants (the only ones an ``i`` flag can add or remove)."""
    import _sre  # type: ignore[import-not-found]

    return tuple(
        cp for cp in range(MAX_CP + 1)
        if not (_SURROGATE_LO <= cp <= _SURROGATE_HI) and _sre.unicode_iscased(cp)
    )


@functools.lru_cache(maxsize=1)
def _cased_ranges() -> Intervals:
    return without_surrogates((cp, cp) for cp in _cased())


def _ignorecase(plain: Intervals, python_class: str) -> Intervals:
    """The set Python's case-insensitive matcher accepts for ``python_class``, whose case-sensitive set
    is ``plain``: only code points with case variants can change, and Python itself decides each."""
    matcher = re.compile(python_class, re.IGNORECASE)
    uncased_part = intersect(plain, minus(ANY, _cased_ranges()))
    cased_part = [(cp, cp) for cp in _cased() if matcher.fullmatch(chr(cp))]
    return without_surrogates(list(uncased_part) + cased_part)


def _class_item(op: object, av: object, flags: int = 0) -> str:
    """One sre class item back as Python regex text (to let Python decide case-insensitive membership)."""
    c = _sc
    if op is c.NEGATE:
        return "^"
    if op is c.LITERAL:
        return f"\\U{av:08x}"
    if op is c.NOT_LITERAL:
        return f"[^\\U{av:08x}]"
    if op is c.RANGE:
        lo, hi = av  # type: ignore[misc]
        return f"\\U{lo:08x}-\\U{hi:08x}"
    if op is c.CATEGORY:
        if flags & re.ASCII:
            return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _ascii_category(av))
        letter = {"DIGIT": "d", "SPACE": "s", "WORD": "w"}[str(av).replace("CATEGORY_", "").replace("NOT_", "")]
        return "\\" + (letter.upper() if "NOT_" in str(av) else letter)
    raise AssertionError(op)


# ---------------------------------------------------------------------------------------------------
# sre's parse -> nodes


def _sub(pattern: Iterable[tuple[object, object]], flags: int) -> Node:
    if flags & re.LOCALE:
        raise UnsupportedConstruct("the locale flag")
    items = [_item(op, av, flags) for op, av in pattern]
    return items[0] if len(items) == 1 else SeqNode(tuple(items))


def _refusals() -> dict[object, str]:
    c = _sc
    refusals = {
        c.MIN_REPEAT: "a lazy quantifier",
        c.AT: "an anchor or word boundary",
        c.ASSERT: "a lookaround assertion",
        c.ASSERT_NOT: "a negative lookaround assertion",
        c.GROUPREF: "a backreference",
        c.GROUPREF_EXISTS: "a conditional group",
    }
    for name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
        if hasattr(c, name):
            refusals[getattr(c, name)] = "a possessive quantifier or atomic group"
    return refusals


_REFUSALS = _refusals()


def _item(op: object, av: object, flags: int) -> Node:
    c = _sc
    if op is c.LITERAL:
        assert isinstance(av, int)
        if flags & re.IGNORECASE:
            return CharNode(_ignorecase(without_surrogates([(av, av)]), _class_item(op, av)))
        return CharNode(((av, av),), literal=True)
    if op is c.NOT_LITERAL:
        assert isinstance(av, int)
        plain = minus(ANY, ((av, av),))
        return CharNode(_ignorecase(plain, _class_item(op, av)) if flags & re.IGNORECASE else plain)
    if op is c.ANY:
        return CharNode(ANY if flags & re.DOTALL else minus(ANY, ((10, 10),)))
    if op is c.IN:
        return _in_set(av, flags)  # type: ignore[arg-type]
    if op is c.BRANCH:
        _, branches = av  # type: ignore[misc]
        return AltNode(tuple(_sub(b, flags) for b in branches))
    if op is c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av  # type: ignore[misc]
        return _sub(sub, (flags | add_flags) & ~del_flags)
    if op is c.MAX_REPEAT:
        lo, hi, sub = av  # type: ignore[misc]
        return RepNode(_sub(sub, flags), lo, None if hi is c.MAXREPEAT else hi)
    raise UnsupportedConstruct(_REFUSALS.get(op, f"the regex construct {op}"))


def _in_set(items: list[tuple[object, object]], flags: int) -> CharNode:
    c = _sc
    negate = False
    ranges: list[tuple[int, int]] = []
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            ranges.append((av, av))  # type: ignore[arg-type]
        elif op is c.RANGE:
            ranges.append(av)  # type: ignore[arg-type]
        elif op is c.CATEGORY:
            ranges.extend(_ascii_category(av) if flags & re.ASCII else _category(av))
        else:
            raise UnsupportedConstruct(f"the class item {op}")
    plain = minus(ANY, without_surrogates(ranges)) if negate else without_surrogates(ranges)
    if not flags & re.IGNORECASE:
        return CharNode(plain)
    python_class = "[" + "".join(_class_item(op, av, flags) for op, av in items) + "]"
    return CharNode(_ignorecase(plain, python_class))
