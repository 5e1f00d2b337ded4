"""lark-python: builds the parser, turns its exceptions into ``ValidationError``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import lark
from lark.lexer import TerminalDef

from ..errors import ValidationError

ParserKind = Literal["lalr", "earley"]


def cache_dir() -> Path | None:
    """Where built LALR parsers are cached (``$CONSTRAIN_CACHE_DIR``, else the user cache directory);
    None when ``CONSTRAIN_CACHE_DIR=off``. Large grammars take seconds to build and milliseconds to load."""
    configured = os.environ.get("CONSTRAIN_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "constrain" / f"lark-{lark.__version__}"


def cache_file(key: str, suffix: str) -> Path | None:
    """The file in ``cache_dir()`` for ``key`` (hashed); None when the cache is off or cannot be made."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: build every time
    return directory / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}{suffix}"


class _LexerLast:
    """lark's ``edit_terminals`` hook giving the named terminals priorities -1, -2, ... (picklable: lark
    keeps it in the cached parser's options)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.ranks = {name: -(index + 1) for index, name in enumerate(names)}

    def __call__(self, terminal: TerminalDef) -> None:
        terminal.priority = self.ranks.get(terminal.name, terminal.priority)


def build(text: str, parser: ParserKind, start: str = "start", lexer_last: Sequence[str] = ()) -> lark.Lark:
    """lark's parser for ``text``; ``lexer_last`` (a grammar's ``// lexer-last:`` line) are terminals its
    lexer tries after every other one, in that order (priorities -1, -2, ...: the text has none, since
    llguidance refuses them). The text holds that line, so the LALR cache key covers it."""
    rank = _LexerLast(tuple(lexer_last)) if lexer_last else None
    if parser == "lalr":
        cached = cache_file(f"{start}\0{text}", ".lalr")
        return lark.Lark(
            text,
            parser="lalr",
            lexer="contextual",
            start=start,
            propagate_positions=True,
            edit_terminals=rank,
            cache=str(cached) if cached is not None else False,  # lark re-checks the grammar hash and options on load
        )
    return lark.Lark(text, parser="earley", lexer="dynamic", start=start, propagate_positions=True, ambiguity="resolve",
                     edit_terminals=rank)


def parse(parser: lark.Lark, text: str, grammar_name: str) -> lark.Tree:
    try:
        return parser.parse(text)
    except lark.UnexpectedInput as exc:
        raise to_validation_error(exc, text, grammar_name) from None


def to_validation_error(exc: lark.UnexpectedInput, text: str, grammar_name: str) -> ValidationError:
    expected: set[str] = set()
    if isinstance(exc, lark.UnexpectedToken):
        expected = set(exc.expected or ())
        token = exc.token
        if token.type == "$END":
            pos = len(text)
            reason = "unexpected end of input"
        else:
            pos = token.start_pos if token.start_pos is not None else 0
            reason = f"unexpected token {str(token)!r} ({token.type})"
    elif isinstance(exc, lark.UnexpectedCharacters):
        expected = set(exc.allowed or ())
        pos = exc.pos_in_stream
        reason = f"unexpected character {text[pos:pos + 1]!r}" if pos < len(text) else "unexpected end of input"
    elif isinstance(exc, lark.UnexpectedEOF):
        expected = set(exc.expected or ())
        pos = len(text)
        reason = "unexpected end of input"
    else:  # pragma: no cover - lark has no other UnexpectedInput subclasses
        pos = getattr(exc, "pos_in_stream", 0) or 0
        reason = str(exc)
    line, column = line_column(text, pos)
    return ValidationError(
        reason,
        text=text,
        offset=len(text[:pos].encode("utf-8")),
        line=line,
        column=column,
        expected=sorted(expected),
        engine="lark",
        grammar=grammar_name,
    )


def line_column(text: str, char_pos: int) -> tuple[int, int]:
    before = text[:char_pos]
    line = before.count("\n") + 1
    column = char_pos - (before.rfind("\n") + 1) + 1
    return line, column


_UNBOUNDED = 1 << 32  # sre's "no upper limit" width, as lark reports it, is far beyond this


def longest_output(parser: lark.Lark) -> int | None:
    """The most characters a text of the grammar can have: None when there is no most (a recursive
    rule, a terminal of unbounded width, an ``%ignore``)."""
    if parser.lexer_conf.ignore:
        return None
    widths = {t.name: t.pattern.max_width for t in parser.terminals}
    expansions: dict[str, list[list[str]]] = {}
    for rule in parser.rules:
        expansions.setdefault(rule.origin.name, []).append([symbol.name for symbol in rule.expansion])
    memo: dict[str, int | None] = {}
    visiting: set[str] = set()

    def longest(symbol: str) -> int | None:
        if symbol in widths:
            return widths[symbol] if widths[symbol] < _UNBOUNDED else None
        if symbol in memo:
            return memo[symbol]
        if symbol in visiting:
            return None  # recursion: as long as you like
        visiting.add(symbol)
        best: int | None = 0
        for expansion in expansions.get(symbol, []):
            parts = [longest(s) for s in expansion]
            if any(part is None for part in parts):
                best = None
                break
            best = max(best or 0, sum(parts))  # type: ignore[arg-type]
        visiting.discard(symbol)
        memo[symbol] = best
        return best

    return longest(parser.options.start[0] if isinstance(parser.options.start, list) else parser.options.start)
