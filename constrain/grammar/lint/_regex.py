"""Regex bodies of a grammar's terminals, split into the pieces the lint rules look at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class RegexPiece:
    """One piece of a regex body, where it starts, and whether it stands for (nearly) any character."""

    kind: str  # "escape" | "class" | "group" | "close" | "quantifier" | "alt" | "dot" | "literal"
    text: str
    start: int  # offset inside the regex body
    broad: bool = False  # matches (nearly) any character: free text


_BROAD_ESCAPES = frozenset({"\\S", "\\W", "\\D"})
_REGEX_ESCAPE = re.compile(r"\\(?:[xu]\{[0-9a-fA-F]*\}?|x[0-9a-fA-F]{0,2}|u[0-9a-fA-F]{0,4}|[pP]\{[^}]*\}?|k<[^>]*>?|.|$)", re.S)
_QUANTIFIER = re.compile(r"(?:[*+?]|\{\d*(?:,\d*)?\})[?+]?")


def regex_pieces(body: str) -> list[RegexPiece]:
    """A regex body as escapes, classes, groups, quantifiers and single characters, in order."""
    pieces: list[RegexPiece] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            m = _REGEX_ESCAPE.match(body, i)
            assert m is not None  # a lone trailing backslash matches the `$` branch
            text = m.group()
            pieces.append(RegexPiece("escape", text, i, broad=text in _BROAD_ESCAPES))
            i = m.end()
        elif ch == "[":
            j = i + 1
            if j < len(body) and body[j] == "^":
                j += 1
            if j < len(body) and body[j] == "]":
                j += 1
            while j < len(body) and body[j] != "]":
                if body[j] == "\\":
                    j += 1
                elif body[j] == "[" and body.startswith("[:", j):
                    end = body.find(":]", j + 2)
                    j = end + 1 if end != -1 else j
                j += 1
            text = body[i : j + 1]
            pieces.append(RegexPiece("class", text, i, broad=text.startswith("[^")))
            i = j + 1
        elif ch == "(":
            m = re.compile(r"\((?:\?(?:<?[=!]|>|P=\w+\)?|P?<\w+>|[a-zA-Z-]*:|[a-zA-Z]+\)|:|#[^)]*\)?))?").match(body, i)
            assert m is not None
            pieces.append(RegexPiece("group", m.group(), i))
            i = m.end()
        elif ch == ")":
            pieces.append(RegexPiece("close", ch, i))
            i += 1
        elif ch == "|":
            pieces.append(RegexPiece("alt", ch, i))
            i += 1
        elif ch == "." :
            pieces.append(RegexPiece("dot", ch, i, broad=True))
            i += 1
        elif (m := _QUANTIFIER.match(body, i)) and pieces and pieces[-1].kind not in ("group", "alt"):
            pieces.append(RegexPiece("quantifier", m.group(), i))
            i = m.end()
        else:
            pieces.append(RegexPiece("literal", ch, i))
            i += 1
    return pieces


def unbounded_broad_runs(pieces: list[RegexPiece]) -> Iterator[RegexPiece]:
    """Quantifiers with no upper bound applied to a broad atom (or a group containing one)."""
    stack: list[bool] = [False]  # per open group: does it contain a broad atom?
    previous_broad = False
    for piece in pieces:
        if piece.kind == "group":
            stack.append(False)
            previous_broad = False
        elif piece.kind == "close":
            inner = stack.pop() if len(stack) > 1 else False
            stack[-1] = stack[-1] or inner
            previous_broad = inner
        elif piece.kind == "quantifier":
            if previous_broad and _no_upper_bound(piece):
                yield piece
            previous_broad = False
        else:
            previous_broad = piece.broad
            stack[-1] = stack[-1] or piece.broad


def is_unbounded(pieces: list[RegexPiece]) -> bool:
    """Whether some quantifier in the regex has no upper bound."""
    return any(p.kind == "quantifier" and _no_upper_bound(p) for p in pieces)


def _no_upper_bound(quantifier: RegexPiece) -> bool:
    return quantifier.text[0] in "*+" or re.match(r"^\{\d*,\}", quantifier.text) is not None
