"""Character sets as sorted, disjoint, inclusive code-point intervals."""

from __future__ import annotations

from typing import Iterable

__all__ = [
    "Intervals", "MAX_CP", "SURROGATES", "ANY", "ASCII_DIGIT", "ASCII_WORD",
    "normalize", "union", "negate", "minus", "intersect", "without_surrogates", "chars", "contains",
]

MAX_CP = 0x10FFFF
SURROGATES = ((0xD800, 0xDFFF),)

Intervals = tuple[tuple[int, int], ...]


def normalize(intervals: Iterable[tuple[int, int]]) -> Intervals:
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def union(*sets: Intervals) -> Intervals:
    return normalize([iv for s in sets for iv in s])


def negate(s: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    prev = 0
    for lo, hi in normalize(s):
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CP:
        out.append((prev, MAX_CP))
    return tuple(out)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def minus(a: Intervals, b: Intervals) -> Intervals:
    return intersect(a, negate(b))


def without_surrogates(intervals: Iterable[tuple[int, int]]) -> Intervals:
    """``intervals`` normalized, surrogates cut out (they cannot occur in text)."""
    return minus(normalize(intervals), SURROGATES)


def chars(text: str) -> Intervals:
    return normalize([(ord(c), ord(c)) for c in text])


def contains(s: Intervals, cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in s)


ANY = minus(((0, MAX_CP),), SURROGATES)
"""Every character text can hold."""

ASCII_DIGIT = ((0x30, 0x39),)
ASCII_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
"""``\\d`` and ``\\w`` in ECMA-262, and in Python under the ``a`` flag."""
