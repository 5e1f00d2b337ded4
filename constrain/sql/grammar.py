"""``constrain.sql.grammar``: the packaged grammar of a dialect, or one bound to a schema.

The dialect grammars are ``grammars/sql/_base.lark`` (rules shared by every dialect) plus one small
file per dialect holding the terminals that differ (identifiers, functions, type names), rendered
from the data in ``_dialects.py`` by ``render_dialect_terminals``. A schema-bound grammar is the
dialect grammar with its name rules replaced: tables and columns become the schema's names only.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

from .. import _compose
from ..grammar import Grammar, _packaged_text, load_grammar
from ._dialects import GRAMMAR_KEYWORDS, Dialect, get_dialect
from .schema import Schema

__all__ = ["grammar", "render_dialect_terminals", "MAX_IDENTIFIER_LENGTH"]

MAX_IDENTIFIER_LENGTH = 64
"""Bare identifiers are at most this long (longer schema names are offered in quoted form only)."""

_IDENT_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_IDENT_REST = _IDENT_FIRST + "0123456789"
_WS = "[ \\t\\r\\n]"


# -- regex building -------------------------------------------------------------------------------
def _char_class(chars: Iterable[str]) -> str:
    ordered = sorted(set(chars))
    if not ordered:
        return ""
    if len(ordered) == 1 and ordered[0].isalnum():
        return ordered[0]
    parts: list[str] = []
    start = prev = ordered[0]
    for ch in ordered[1:] + ["\0"]:
        if ord(ch) == ord(prev) + 1:
            prev = ch
            continue
        if start == prev:
            parts.append(start)
        elif ord(prev) == ord(start) + 1:
            parts.append(start + prev)
        else:
            parts.append(f"{start}-{prev}")
        start = prev = ch
    return "[" + "".join(parts) + "]"


def _case_class(ch: str, case_insensitive: bool) -> str:
    if case_insensitive and ch.isalpha() and ch.isascii():
        return f"[{ch.lower()}{ch.upper()}]"
    return re.escape(ch)


def _trie(words: Iterable[str], case_insensitive: bool) -> dict:
    root: dict = {}
    for word in words:
        node = root
        for ch in word.lower() if case_insensitive else word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return root


def word_regex(words: Iterable[str], *, case_insensitive: bool) -> str:
    """A regex matching exactly ``words`` (ASCII case-insensitively if asked), longest alternative first."""
    def render(node: dict) -> str:
        alts = [_case_class(ch, case_insensitive) + render(child) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            if not alts:
                return ""
            alts.append("")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    return render(_trie(words, case_insensitive))


def identifier_regex(reserved: Iterable[str], max_length: int = MAX_IDENTIFIER_LENGTH) -> str:
    """Bare identifiers ``[A-Za-z_][A-Za-z0-9_]*`` of at most ``max_length`` characters, except ``reserved``
    (compared ASCII case-insensitively). Written without lookaround so that llguidance reads it too."""
    trie = _trie(reserved, True)

    def tail(depth: int) -> str:
        room = max_length - depth
        return f"[A-Za-z0-9_]{{0,{room}}}" if room > 0 else ""

    def render(node: dict, depth: int) -> str:
        allowed = _IDENT_FIRST if depth == 0 else _IDENT_REST
        alts = []
        used: set[str] = set()
        for ch, child in sorted(node.items()):
            if not ch:
                continue
            used.update({ch.lower(), ch.upper()})
            alts.append(_case_class(ch, True) + render(child, depth + 1))
        others = _char_class(c for c in allowed if c not in used)
        if others:
            alts.append(others + tail(depth + 1))
        if depth > 0 and "" not in node:
            alts.append("")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    return render(trie, 0)


def render_dialect_terminals(dialect: Dialect) -> str:
    """The dialect-specific terminals of the packaged grammar, rendered from the dialect's data."""
    reserved = sorted(GRAMMAR_KEYWORDS | dialect.reserved)
    lines = [
        f"IDENT: /{identifier_regex(reserved)}/",
        'QUOTED_IDENT: /"[^"\\x00]{1,62}"/',
        "STRING: /'(?:[^'\\\\\\x00]|''){0,256}'/",
        f"TYPE_NAME: /{word_regex(dialect.type_names, case_insensitive=True)}/",
        "WORD: IDENT | QUOTED_IDENT",
        "TABLE_NAME: IDENT | QUOTED_IDENT",
        "COLUMN_NAME: IDENT | QUOTED_IDENT",
        "ALIAS_NAME: IDENT | QUOTED_IDENT",
        'QUALIFIER: (IDENT | QUOTED_IDENT) "."',
        "ALIAS_WS: SP IDENT",
    ]
    return "\n".join(lines) + "\n"


# -- public entry point -----------------------------------------------------------------------------
def grammar(dialect: str = "sqlite", schema: Schema | None = None) -> Grammar:
    """The SQL grammar of ``dialect``; with ``schema``, only its tables and columns are identifiers."""
    info = get_dialect(dialect)
    if schema is None:
        return load_grammar(info.grammar_name)
    raise NotImplementedError("schema-bound grammars are not built yet")
