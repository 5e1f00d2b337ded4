"""A tokenizer of Lark grammar text, with positions: what the lint walks and composition renames.

Comments and spaces are tokens too, so a grammar can be rebuilt exactly from its tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Token", "code_tokens", "statements", "tokenize"]


@dataclass(frozen=True)
class Token:
    """One token: its kind (``name``, ``string``, ``regex``, ``op``, ``comment``, ...), text and position."""

    kind: str
    text: str
    offset: int
    line: int
    column: int

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


_TOKEN_SPEC = (
    ("newline", r"\r?\n"),
    ("space", r"[ \t\f\r]+"),
    ("comment", r"//[^\n]*|#[^\n]*"),
    ("string", r'"(?:\\"|\\\\|[^"\n])*?"i?'),
    ("regex", r"/(?!/)(?:\\/|\\\\|[^/\n])*?/[imslux]*"),
    ("directive", r"%[A-Za-z_]+"),
    ("name", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("number", r"\d+"),
    ("op", r"->|\.\.|[:|()\[\]{}?*+~.,=!&@<>-]"),
    ("other", r"."),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _TOKEN_SPEC))


def tokenize(text: str) -> list[Token]:
    """Lark grammar text as tokens (comments and spaces included), each with offset, line, column."""
    out: list[Token] = []
    line, line_start = 1, 0
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        out.append(Token(kind, m.group(), m.start(), line, m.start() - line_start + 1))
        if kind == "newline":
            line, line_start = line + 1, m.end()
    return out


def code_tokens(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("space", "comment")]


def statements(tokens: list[Token]) -> list[list[Token]]:
    """Split into top-level statements: a new one starts at a line whose first token is not ``|``
    and which is not indented (Lark continues definitions on indented or ``|`` lines)."""
    out: list[list[Token]] = []
    current: list[Token] = []
    at_line_start, indented = True, False
    depth = 0
    for tok in tokens:
        if tok.kind == "newline":
            at_line_start, indented = True, False
            continue
        if tok.kind == "space":
            indented = indented or at_line_start
            continue
        if tok.kind == "comment":
            continue
        if at_line_start and depth == 0 and not indented and tok.text != "|" and current:
            out.append(current)
            current = []
        at_line_start = False
        if tok.text in "([{":
            depth += 1
        elif tok.text in ")]}" and depth:
            depth -= 1
        current.append(tok)
    if current:
        out.append(current)
    return out
