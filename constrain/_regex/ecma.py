"""ECMA-262 regular expressions (JSON Schema ``pattern``) -> the shared AST.

The flavour's meanings: ``\\d \\w`` are ASCII, ``\\s`` and ``.`` follow ECMA-262 (``.`` excludes the
line terminators), ``[]`` is the empty class, ``\\u{...}`` and surrogate-pair escapes name one code
point. Lazy quantifiers are read as greedy ones (the same language). Lookaround, backreferences, word
boundaries and property escapes are refused (``PatternError``).
"""

from __future__ import annotations

from .charsets import ANY, ASCII_DIGIT, ASCII_WORD, SURROGATES, Intervals, chars, minus, negate, normalize
from .nodes import AltNode, AnchorNode, CharNode, Node, PatternError, RepNode, SeqNode

__all__ = ["parse", "MAX_REPEAT", "DIGIT", "WORD", "SPACE", "LINE_TERMINATORS", "DOT"]

MAX_REPEAT = 1000
"""Largest ``{m,n}`` count accepted in a pattern (bigger counts blow up automaton sizes)."""

DIGIT = ASCII_DIGIT
WORD = ASCII_WORD
SPACE = normalize(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
     (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
LINE_TERMINATORS = normalize([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
DOT = minus(ANY, LINE_TERMINATORS)

_CLASS_ESCAPES = {"d": DIGIT, "w": WORD, "s": SPACE, "D": negate(DIGIT), "W": negate(WORD), "S": negate(SPACE)}
_CONTROL_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B, "0": 0x00}


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def fail(self, what: str) -> PatternError:
        return PatternError(f"{what} at offset {self.i} of pattern {self.p!r}")

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def parse(self) -> Node:
        node = self.alternation()
        if self.i != len(self.p):
            raise self.fail("unbalanced ')'")
        return node

    def alternation(self) -> Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else AltNode(tuple(options))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified())
        return items[0] if len(items) == 1 else SeqNode(tuple(items))

    def quantified(self) -> Node:
        atom = self.atom()
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{" and self._counted_ahead():
                lo, hi = self._counted()
            else:
                return atom
            if self.peek() == "?":  # lazy: same language
                self.i += 1
            if isinstance(atom, AnchorNode):
                raise self.fail("quantified anchor")
            if (hi is not None and hi > MAX_REPEAT) or lo > MAX_REPEAT:
                raise self.fail(f"repetition count over {MAX_REPEAT}")
            if hi is not None and hi < lo:
                raise self.fail("repetition range out of order")
            atom = RepNode(atom, lo, hi)

    def _counted_ahead(self) -> bool:
        j = self.p.find("}", self.i)
        if j < 0:
            return False
        body = self.p[self.i + 1 : j]
        lo, _, hi = body.partition(",")
        return lo.isdigit() and (hi == "" or hi.isdigit())

    def _counted(self) -> tuple[int, int | None]:
        j = self.p.index("}", self.i)
        body = self.p[self.i + 1 : j]
        self.i = j + 1
        if "," not in body:
            n = int(body)
            return n, n
        lo, hi = body.split(",", 1)
        return int(lo), (int(hi) if hi else None)

    def atom(self) -> Node:
        c = self.peek()
        if c == "(":
            return self.group()
        if c == "[":
            return CharNode(self.char_class())
        if c == ".":
            self.i += 1
            return CharNode(DOT)
        if c == "^":
            self.i += 1
            return AnchorNode(True)
        if c == "$":
            self.i += 1
            return AnchorNode(False)
        if c == "\\":
            escaped = self.escape(in_class=False)
            return CharNode(escaped, literal=len(escaped) == 1 and escaped[0][0] == escaped[0][1])
        if c in ("*", "+", "?"):
            raise self.fail("nothing to repeat")
        if c == "{" and self._counted_ahead():
            raise self.fail("nothing to repeat")
        self.i += 1
        return CharNode(chars(c), literal=True)

    def group(self) -> Node:
        self.i += 1
        if self.p.startswith("?:", self.i):
            self.i += 2
        elif self.p.startswith("?<", self.i) and self.p[self.i + 2 : self.i + 3] not in ("=", "!"):
            end = self.p.find(">", self.i)
            if end < 0:
                raise self.fail("unterminated group name")
            self.i = end + 1
        elif self.peek() == "?":
            raise self.fail("lookaround or group flag (not expressible in a grammar)")
        node = self.alternation()
        if self.peek() != ")":
            raise self.fail("missing ')'")
        self.i += 1
        return node

    def char_class(self) -> Intervals:
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        items: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.peek()
            if c == "":
                raise self.fail("unterminated character class")
            if c == "]" and not first:
                self.i += 1
                break
            if c == "]" and first:  # ECMA: [] is the empty class, []...] is not special
                self.i += 1
                break
            first = False
            lo_set = self.class_atom()
            if self.peek() == "-" and self.p[self.i + 1 : self.i + 2] not in ("]", ""):
                self.i += 1
                hi_set = self.class_atom()
                if len(lo_set) != 1 or lo_set[0][0] != lo_set[0][1] or len(hi_set) != 1 or hi_set[0][0] != hi_set[0][1]:
                    raise self.fail("class escape used as a range bound")
                lo, hi = lo_set[0][0], hi_set[0][0]
                if lo > hi:
                    raise self.fail("character range out of order")
                items.append((lo, hi))
            else:
                items.extend(lo_set)
        s = normalize(items)
        return minus(ANY, s) if negated else minus(s, SURROGATES)

    def class_atom(self) -> Intervals:
        c = self.peek()
        if c == "\\":
            return self.escape(in_class=True)
        self.i += 1
        return chars(c)

    def escape(self, *, in_class: bool) -> Intervals:
        self.i += 1
        c = self.peek()
        if c == "":
            raise self.fail("trailing backslash")
        self.i += 1
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c == "0" and self.peek().isdigit():
            raise self.fail("octal escape")
        if c in _CONTROL_ESCAPES:
            return chars(chr(_CONTROL_ESCAPES[c]))
        if c == "b":
            if in_class:
                return chars("\b")
            raise self.fail("word boundary \\b")
        if c == "B":
            raise self.fail("\\B")
        if c.isdigit():
            raise self.fail("backreference")
        if c == "x":
            return chars(chr(self._hex(2)))
        if c == "u":
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                if end < 0:
                    raise self.fail("bad \\u{...} escape")
                try:
                    cp = int(self.p[self.i + 1 : end], 16)
                except ValueError:
                    raise self.fail("bad \\u{...} escape") from None
                self.i = end + 1
                return chars(chr(cp))
            cp = self._hex(4)
            if 0xD800 <= cp <= 0xDBFF and self.p.startswith("\\u", self.i):
                save = self.i
                self.i += 2
                low = self._hex(4)
                if 0xDC00 <= low <= 0xDFFF:
                    return chars(chr(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)))
                self.i = save
            if 0xD800 <= cp <= 0xDFFF:
                raise self.fail("lone surrogate escape")
            return chars(chr(cp))
        if c == "c":
            letter = self.peek()
            if not letter.isalpha():
                raise self.fail("bad control escape")
            self.i += 1
            return chars(chr(ord(letter) % 32))
        if c in ("p", "P"):
            raise self.fail("unicode property escape")
        if c == "k":
            raise self.fail("named backreference")
        if c.isalnum():
            raise self.fail(f"unknown escape \\{c}")
        return chars(c)

    def _hex(self, n: int) -> int:
        text = self.p[self.i : self.i + n]
        if len(text) != n or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            raise self.fail("bad hex escape")
        self.i += n
        return int(text, 16)


def parse(pattern: str) -> Node:
    return _Parser(pattern).parse()
