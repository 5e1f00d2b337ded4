"""Regexes over JSON string *text*: ECMA-262 patterns and their JSON encoding.

A JSON Schema ``pattern`` constrains the decoded string, but a grammar sees the encoded text
(``"a\\"b"``). Patterns are parsed into the shared regex AST over code points (``constrain._regex``:
nodes, character sets, the ECMA-262 parser) and analysed, simplified and re-emitted here as a regex over
the encoded form: characters JSON must escape appear escaped, every other character appears
literally. The emitted syntax is the part lark (Python ``re``) and llguidance (Rust regex) read the
same way: classes with ``\\xNN`` / ``\\uNNNN`` escapes, ``(?:)``, ``|`` and counted quantifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from .._regex.charsets import (
    ANY, MAX_CP, SURROGATES, Intervals, chars, contains, intersect, minus, negate, normalize, union,
)
from .._regex.ecma import DIGIT, DOT, LINE_TERMINATORS, MAX_REPEAT, SPACE, WORD, parse
from .._regex.nodes import AltNode, AnchorNode, CharNode, Node, PatternError, RepNode, SeqNode

__all__ = [
    # the shared AST and character sets, as the rest of json_schema has always imported them from here
    "ANY", "MAX_CP", "SURROGATES", "Intervals", "chars", "contains", "intersect", "minus", "negate",
    "normalize", "union", "DIGIT", "DOT", "LINE_TERMINATORS", "MAX_REPEAT", "SPACE", "WORD", "parse",
    "AltNode", "AnchorNode", "CharNode", "Node", "PatternError", "RepNode", "SeqNode",
    # patterns over JSON string text
    "QUOTE", "JSON_CHAR_FULL", "JSON_CHAR_CANONICAL", "json_char", "char_class", "literal_char",
    "quantify", "scan_groups", "canonical_literal", "emit", "translate", "Translation",
    "has_anchor", "length_bounds", "check_safe", "simplify",
]

_MUST_ESCAPE = normalize([(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)])
_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}


# -- emitting ------------------------------------------------------------------------------------------
def _class_char(cp: int) -> str:
    """One code point inside a class.

    lark turns ``\\xNN`` / ``\\uNNNN`` escapes into raw characters before Python's ``re`` sees the
    regex, so characters that mean something in a class are escaped with a backslash instead.
    """
    if 0x30 <= cp <= 0x39 or 0x41 <= cp <= 0x5A or 0x61 <= cp <= 0x7A:
        return chr(cp)
    if chr(cp) in _CLASS_SPECIAL:
        return "\\" + chr(cp)
    if cp < 0x80:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return chr(cp)


_CLASS_SPECIAL = "\\]^-[&~"
_SPECIAL = "\\.+*?()[]{}|^$&~"


def literal_char(cp: int) -> str:
    """One code point as a regex atom (outside a class)."""
    if chr(cp) in _SPECIAL:
        return "\\" + chr(cp)
    return _class_char(cp)


def char_class(s: Intervals) -> str:
    """A regex class for a non-empty set, negated when that is shorter."""
    s = normalize(s)
    if len(s) == 1 and s[0][0] == s[0][1]:
        return literal_char(s[0][0])
    complement = minus(ANY, s)
    use_negated = len(complement) < len(s)
    body = complement if use_negated else s
    parts = []
    for lo, hi in body:
        parts.append(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}")
    inner = "".join(parts)
    if use_negated:
        # a negated class matches surrogates in Python; they cannot occur in decoded UTF-8 anyway
        return f"[^{inner}]" if inner else "[\\x00-\\x7f]"  # pragma: no branch
    return f"[{inner}]"


def json_char(s: Intervals) -> str:
    """A regex for one decoded character from ``s`` as it appears inside a JSON string."""
    s = normalize(s)
    alts: list[str] = []
    raw = minus(s, _MUST_ESCAPE)
    if raw:
        alts.append(char_class(raw))
    for cp, short in _SHORT_ESCAPES.items():
        if contains(s, cp):
            alts.append("\\\\" + _class_char(ord(short)))
    controls = intersect(s, ((0x00, 0x1F),))
    if controls == ((0x00, 0x1F),):
        alts.append("\\\\u00[01][0-9a-fA-F]")
    else:
        for lo, hi in controls:
            for cp in range(lo, hi + 1):
                alts.append("\\\\u00" + "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{cp:02x}"))
    if not alts:
        raise PatternError("empty character class")
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


_HEX = "[0-9a-fA-F]"
QUOTE = "\\x22"
"""A double quote in a terminal regex: lark rewrites a raw ``"`` that follows a backslash."""
JSON_CHAR_FULL = (
    '(?:[^\\x22\\\\\\x00-\\x1f]|\\\\(?:[\\x22\\\\\\x2fbfnrt]'
    f"|u(?:[0-9a-cA-Ce-fE-F]{_HEX}{{3}}|[dD][0-7]{_HEX}{{2}}|[dD][89abAB]{_HEX}{{2}}\\\\u[dD][c-fC-F]{_HEX}{{2}})))"
)
"""Any one decoded character inside a JSON string, in any spelling JSON allows (surrogate pairs as one)."""

JSON_CHAR_CANONICAL = json_char(ANY)
"""Any one decoded character, spelt the way ``json.dumps(..., ensure_ascii=False)`` spells it (one spelling each)."""


def quantify(atom: str, lo: int, hi: int | None) -> str:
    if (lo, hi) == (1, 1):
        return atom
    if (lo, hi) == (0, 0):
        return ""
    if not _is_atomic(atom):
        atom = f"(?:{atom})"
    if (lo, hi) == (0, None):
        return atom + "*"
    if (lo, hi) == (1, None):
        return atom + "+"
    if (lo, hi) == (0, 1):
        return atom + "?"
    if hi is None:
        return f"{atom}{{{lo},}}"
    if lo == hi:
        return f"{atom}{{{lo}}}"
    return f"{atom}{{{lo},{hi}}}"


_ONE_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.S)


def _is_atomic(rx: str) -> bool:
    if len(rx) == 1 or (rx.startswith("\\") and _ONE_ESCAPE.fullmatch(rx)):
        return rx not in ("\\", )
    if rx.startswith("[") and rx.endswith("]") and rx.count("[") == 1 and not rx.endswith("\\]"):
        return True
    if rx.startswith("(?:") and rx.endswith(")") and _balanced_group(rx):
        return True
    return False


def scan_groups(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """Each character of ``text`` from ``start`` that stands outside escapes and character classes, with
    its index and the group depth after it (a ``(`` counts in, a ``)`` counts out)."""
    depth = 0
    i = start
    in_class = False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        else:
            depth += (c == "(") - (c == ")")
            yield i, c, depth
        i += 1


def _balanced_group(rx: str) -> bool:
    depth = 0
    for i, c, depth in scan_groups(rx):
        if c == ")" and depth == 0 and i != len(rx) - 1:
            return False
    return depth == 0


# -- analysis --------------------------------------------------------------------------------------------
def has_anchor(node: Node) -> bool:
    if isinstance(node, AnchorNode):
        return True
    if isinstance(node, SeqNode):
        return any(has_anchor(i) for i in node.items)
    if isinstance(node, AltNode):
        return any(has_anchor(o) for o in node.options)
    if isinstance(node, RepNode):
        return has_anchor(node.body)
    return False


def length_bounds(node: Node) -> tuple[int, int | None]:
    """Minimum and maximum number of code points the node matches (None: unbounded)."""
    if isinstance(node, CharNode):
        return (1, 1)
    if isinstance(node, AnchorNode):
        return (0, 0)
    if isinstance(node, SeqNode):
        lo, hi = 0, 0
        for item in node.items:
            a, b = length_bounds(item)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if isinstance(node, AltNode):
        bounds = [length_bounds(o) for o in node.options]
        his = [b for _, b in bounds]
        return min(a for a, _ in bounds), (None if None in his else max(h for h in his if h is not None))
    a, b = length_bounds(node.body)
    return a * node.lo, (None if node.hi is None or b is None else b * node.hi)


def _first_last_sets(node: Node) -> tuple[Intervals, Intervals]:
    if isinstance(node, CharNode):
        return node.chars, node.chars
    if isinstance(node, AnchorNode):
        return (), ()
    if isinstance(node, AltNode):
        fs = [_first_last_sets(o) for o in node.options]
        return union(*(f for f, _ in fs)), union(*(l for _, l in fs))
    if isinstance(node, RepNode):
        return _first_last_sets(node.body)
    first: Intervals = ()
    for item in node.items:
        f, _ = _first_last_sets(item)
        first = union(first, f)
        if length_bounds(item)[0] > 0:
            break
    last: Intervals = ()
    for item in reversed(node.items):
        _, l = _first_last_sets(item)
        last = union(last, l)
        if length_bounds(item)[0] > 0:
            break
    return first, last


def check_safe(node: Node) -> None:
    """Refuse patterns that make a backtracking matcher (lark uses Python ``re``) blow up.

    Nested unbounded repetition is refused unless the inner repetition is closed by a mandatory
    character it cannot match (``([a-z]+-)*`` is fine, ``(a+)+`` and ``(\\w+\\s?)*`` are not).
    Nested counted repetitions whose product exceeds ``MAX_REPEAT`` are refused too.
    """
    _check(node, outer_unbounded=False, count_product=1)


def _has_unbounded(node: Node) -> bool:
    if isinstance(node, RepNode):
        return node.hi is None or _has_unbounded(node.body)
    if isinstance(node, SeqNode):
        return any(_has_unbounded(i) for i in node.items)
    if isinstance(node, AltNode):
        return any(_has_unbounded(o) for o in node.options)
    return False


def _check(node: Node, *, outer_unbounded: bool, count_product: int) -> None:
    if isinstance(node, (SeqNode, AltNode)):
        for child in node.items if isinstance(node, SeqNode) else node.options:
            _check(child, outer_unbounded=outer_unbounded, count_product=count_product)
        return
    if not isinstance(node, RepNode):
        return
    repeats = node.hi is None or node.hi > 1
    if repeats and _has_unbounded(node.body) and (node.hi is None or outer_unbounded):
        if not _closed_repetition(node.body):
            raise PatternError("nested unbounded repetition (catastrophic backtracking risk)")
    product = count_product * max(node.hi or node.lo or 1, 1)
    if product > MAX_REPEAT * 10:
        raise PatternError(f"nested repetition counts multiply to over {MAX_REPEAT * 10}")
    _check(node.body, outer_unbounded=outer_unbounded or node.hi is None, count_product=product)


def _all_chars(node: Node) -> Intervals:
    if isinstance(node, CharNode):
        return node.chars
    if isinstance(node, SeqNode):
        return union(*(_all_chars(i) for i in node.items)) if node.items else ()
    if isinstance(node, AltNode):
        return union(*(_all_chars(o) for o in node.options)) if node.options else ()
    if isinstance(node, RepNode):
        return _all_chars(node.body)
    return ()


def _fenced_repetition(items: tuple[Node, ...]) -> bool:
    """The body of a repetition starts (or ends) with a mandatory part whose characters no other part
    can match, and that is one character or is kept from the next iteration's by another mandatory
    part: ``(\\.\\d+)+``, ``(-+[a-z]+)*``, ``((?:\\s+|-)[a-z]+)*`` (not ``(\\w+\\s?)*``). Every iteration then
    begins (ends) exactly at its fence, so a backtracking matcher never tries another split."""
    if len(items) < 2 or any(isinstance(i, AnchorNode) for i in items):
        return False
    for fence, others in ((items[0], items[1:]), (items[-1], items[:-1])):
        if length_bounds(fence)[0] == 0 or intersect(_all_chars(fence), union(*(_all_chars(o) for o in others))):
            continue
        # two iterations' fences never run together: one character each, or something mandatory between
        if length_bounds(fence) == (1, 1) or any(length_bounds(o)[0] > 0 for o in others):
            return True
    return False


def simplify(node: Node) -> Node:
    """Rewrite nested repetitions into equal, flat ones a backtracking matcher handles in linear time:
    ``(A{a,}){b,}`` with a <= 1 is ``A{a*b,}``; ``(A{a,}c)+`` with a <= 1 and c within A is ``A{a,}c``
    (so ``([a-z.]+\\.)+`` is ``[a-z.]+\\.``)."""
    if isinstance(node, SeqNode):
        return SeqNode(tuple(simplify(i) for i in node.items))
    if isinstance(node, AltNode):
        return AltNode(tuple(simplify(o) for o in node.options))
    if not isinstance(node, RepNode):
        return node
    body = _unwrap(simplify(node.body))
    if node.hi is None and isinstance(body, RepNode) and body.hi is None and body.lo <= 1 and isinstance(body.body, CharNode):
        return RepNode(body.body, body.lo * node.lo, None)
    if (
        node.hi is None
        and node.lo <= 1
        and isinstance(body, SeqNode)
        and len(body.items) == 2
        and isinstance(body.items[0], RepNode)
        and body.items[0].hi is None
        and body.items[0].lo <= 1
        and isinstance(body.items[0].body, CharNode)
        and isinstance(body.items[1], CharNode)
        and not minus(body.items[1].chars, body.items[0].body.chars)
    ):
        once = SeqNode(body.items)
        return once if node.lo == 1 else RepNode(once, 0, 1)
    return RepNode(body, node.lo, node.hi)


def _closed_repetition(body: Node) -> bool:
    items = body.items if isinstance(body, SeqNode) else (body,)
    if not items:
        return True
    if _fenced_repetition(items):
        return True
    last = items[-1]
    if not isinstance(last, CharNode):
        return False
    inner: Intervals = ()
    for item in items[:-1]:
        if _has_unbounded(item):
            f, l = _first_last_sets(item)
            inner = union(inner, f, l)
    if any(isinstance(i, AltNode) and _has_unbounded(i) for i in items[:-1]):
        return False
    return not intersect(inner, last.chars)


# -- pattern -> regex over JSON string text -------------------------------------------------------------
def emit(node: Node) -> str:
    if isinstance(node, CharNode):
        if not node.chars:
            raise PatternError("empty character class")
        return json_char(node.chars)
    if isinstance(node, SeqNode):
        return "".join(_group_if_alt(emit(i), i) for i in node.items)
    if isinstance(node, AltNode):
        return "(?:" + "|".join(emit(o) for o in node.options) + ")"
    if isinstance(node, RepNode):
        return quantify(emit(node.body), node.lo, node.hi)
    raise PatternError("anchor inside the pattern (only a leading ^ and trailing $ are supported)")


def _group_if_alt(rx: str, node: Node) -> str:
    return f"(?:{rx})" if isinstance(node, AltNode) and not rx.startswith("(?:") else rx


def _unwrap(node: Node) -> Node:
    while isinstance(node, SeqNode) and len(node.items) == 1:
        node = node.items[0]
    return node


def _branches(node: Node) -> list[Node]:
    node = _unwrap(node)
    if isinstance(node, AltNode):
        return list(node.options)
    if isinstance(node, SeqNode):
        # ^(a|b)$ and (^a|^b) both end up as anchored branches
        items = list(node.items)
        if len(items) >= 1 and isinstance(_unwrap(items[0]), AltNode) and all(
            isinstance(i, AnchorNode) for i in items[1:]
        ):
            return [SeqNode((o, *items[1:])) for o in _unwrap(items[0]).options]  # type: ignore[union-attr]
    return [node]


def _anchors(branch: Node) -> tuple[bool, Node, bool]:
    items = list(branch.items) if isinstance(branch, SeqNode) else [branch]
    start = end = False
    while items and isinstance(items[0], AnchorNode) and items[0].start:
        start = True
        items.pop(0)
    while items and isinstance(items[-1], AnchorNode) and not items[-1].start:
        end = True
        items.pop()
    if len(items) == 1 and isinstance(_unwrap(items[0]), AltNode):
        inner = _unwrap(items[0])
        assert isinstance(inner, AltNode)
        if any(isinstance(_unwrap(o), SeqNode) and any(isinstance(x, AnchorNode) for x in _unwrap(o).items) for o in inner.options):  # type: ignore[union-attr]
            raise PatternError("anchors inside an alternation group")
    return start, SeqNode(tuple(items)), end


@dataclass(frozen=True)
class Translation:
    regex: str  # over JSON string text, without the surrounding quotes
    anchored: bool  # every branch anchored at both ends: the pattern fixes the whole string
    length: tuple[int, int | None]  # code point bounds of matched strings (only meaningful when anchored)
    node: Node


def translate(pattern: str) -> Translation:
    """Translate an ECMA-262 ``pattern`` (search semantics) to a regex over JSON string contents."""
    tree = simplify(parse(pattern))
    check_safe(tree)
    parts: list[str] = []
    anchored = True
    for branch in _branches(tree):
        start, body, end = _anchors(branch)
        rx = emit(body)
        anchored = anchored and start and end
        any_run = JSON_CHAR_FULL + "*"
        parts.append(("" if start else any_run) + rx + ("" if end else any_run))
    regex = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
    return Translation(regex, anchored, length_bounds(tree), tree)


def canonical_literal(text: str) -> str:
    """Regex matching ``text`` exactly as ``json.dumps(..., ensure_ascii=False)`` spells it (no quotes)."""
    import json

    encoded = json.dumps(text, ensure_ascii=False)[1:-1]
    out = []
    for c in encoded:
        out.append("\\\\" if c == "\\" else literal_char(ord(c)))
    return "".join(out)
