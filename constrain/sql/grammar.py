"""``constrain.sql.grammar``: the packaged grammar of a dialect, or one bound to a schema.

The dialect grammars are ``grammars/sql/_base.lark`` (rules shared by every dialect) plus one small
file per dialect holding the terminals that differ (identifiers, quoted names, strings, type names),
rendered from the data in ``_dialects.py`` by ``render_dialect_terminals``. A schema-bound grammar is
the dialect grammar with its name terminals replaced: tables and columns become the schema's names
only, and function names the dialect's known functions.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Iterable

import lark

from ..errors import GrammarError, InputError
from ..grammar import Grammar, load_grammar
from ._dialects import GRAMMAR_KEYWORDS, Dialect, get_dialect
from .schema import Schema

__all__ = ["grammar", "render_dialect_terminals", "schema_terminal_regexes", "MAX_IDENTIFIER_LENGTH"]

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

    def render(node: dict, depth: int) -> str | None:
        alts: list[str] = []
        if depth < max_length:
            allowed = _IDENT_FIRST if depth == 0 else _IDENT_REST
            used: set[str] = set()
            for ch, child in sorted(node.items()):
                if not ch:
                    continue
                used.update({ch.lower(), ch.upper()})
                below = render(child, depth + 1)
                if below is not None:
                    alts.append(_case_class(ch, True) + below)
            others = _char_class(c for c in allowed if c not in used)
            if others:
                alts.append(others + tail(depth + 1))
        if depth > 0 and "" not in node:
            alts.append("")
        if not alts:
            return None
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    regex = render(trie, 0)
    assert regex is not None
    return regex


def render_dialect_terminals(dialect: Dialect) -> str:
    """The dialect-specific terminals of the packaged grammar, rendered from the dialect's data."""
    reserved = sorted(GRAMMAR_KEYWORDS | dialect.reserved)
    lines = [
        f"IDENT: /{identifier_regex(reserved)}/",
        'QUOTED_IDENT: /"[^"\\x00]{1,62}"/',
        "STRING: /'(?:[^'\\x00]|''){0,256}'/",
        f"TYPE_NAME: /{word_regex(dialect.type_names, case_insensitive=True)}/",
        "WORD: IDENT | QUOTED_IDENT",
        "TABLE_NAME: IDENT | QUOTED_IDENT",
        "COLUMN_NAME: IDENT | QUOTED_IDENT",
        "ALIAS_NAME: IDENT | QUOTED_IDENT",
        "TABLE_ALIAS: IDENT | QUOTED_IDENT",
        'QUALIFIER: (IDENT | QUOTED_IDENT) "."',
        "ALIAS_WS: SP IDENT",
    ]
    return "\n".join(lines) + "\n"


# -- schema-bound grammars -------------------------------------------------------------------------
# Words that read as values, not names; they share the bare-word terminal with columns and functions.
_VALUE_WORDS = ("null", "true", "false", "current_date", "current_time", "current_timestamp")

_LEGACY_STRING = """(?:'(?:[^'\\x00]|''){0,256}'|"(?:[^"\\x00]|""){0,256}")"""

_QUOTED_MAX = 62  # characters between the quotes; keeps every name terminal narrower than the keywords


def _names_regex(names: Iterable[str], dialect: Dialect, *, bare_extra: Iterable[str] = ()) -> str:
    """One regex for ``names`` as the dialect lets them be written: bare (where a name can be) and quoted."""
    names = list(dict.fromkeys(names))
    for name in names:
        if len(name) > _QUOTED_MAX or "\x00" in name:
            raise InputError(f"schema name {name!r} is longer than {_QUOTED_MAX} characters or holds a NUL byte; "
                             "schema-bound grammars cannot offer it")
    bare = [n for n in names if not dialect.needs_quotes(n) and len(n) <= MAX_IDENTIFIER_LENGTH]
    bare += list(bare_extra)
    quoted = [n.replace(dialect.quote_close, dialect.quote_close * 2) for n in names]
    parts = []
    if bare:
        # Unquoted names match in any ASCII letter case (sqlite, duckdb; postgres folds them to lower case,
        # and only all-lower-case catalog names can be written bare there).
        parts.append(word_regex(bare, case_insensitive=True))
    if quoted:
        inner = word_regex(quoted, case_insensitive=dialect.case_insensitive)
        parts.append(re.escape(dialect.quote_open) + inner + re.escape(dialect.quote_close))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def schema_terminal_regexes(schema: Schema, dialect: Dialect, *, double_quoted_strings: bool = False) -> dict[str, str]:
    """Regexes of the name terminals that a schema-bound grammar redefines (whole regexes, no references)."""
    if not schema.tables:
        raise InputError("the schema has no tables; a schema-bound grammar needs at least one")
    tables = [t.name for t in schema.tables]
    columns = schema.column_names()
    if not columns:
        raise InputError("the schema's tables have no columns")
    function_names = sorted({name for _, names in dialect.functions for name in names})
    table_re = _names_regex(tables, dialect)
    alias_re = table_alias_regex(dialect)
    return {
        "TABLE_NAME": table_re,
        "COLUMN_NAME": _names_regex(columns, dialect),
        "WORD": _names_regex(columns, dialect, bare_extra=function_names + list(_VALUE_WORDS)),
        "TABLE_ALIAS": alias_re,
        "QUALIFIER": f"(?:{alias_re}|{table_re})\\.",
        "ALIAS_WS": f"{_WS}{{1,64}}{alias_re}",
        **({"STRING": _LEGACY_STRING} if double_quoted_strings else {}),
    }


def table_alias_regex(dialect: Dialect) -> str:
    """Table aliases of a schema-bound grammar: names that can never be keywords, so the regex stays small.

    An alias holds a digit (``T1``, ``s2``, ``t_1``) or is one to three letters that are not a keyword
    (``a``, ``s``, ``emp``). Column aliases (``AS total``) are not limited this way.
    """
    short_keywords = sorted(k for k in dialect.keywords if len(k) <= 3)
    with_digit = "[A-Za-z_][A-Za-z0-9_]{0,30}[0-9][A-Za-z0-9_]{0,30}"
    # the digit form comes first: lark takes the first alternative that matches, and "T12" must not stop at "T1"
    return f"(?:{with_digit}|{identifier_regex(short_keywords, max_length=3)})"


@functools.lru_cache(maxsize=32)
def _bound_grammar(dialect_name: str, schema: Schema, double_quoted_strings: bool) -> Grammar:
    dialect = get_dialect(dialect_name)
    header = (
        f"// {dialect.name} read-only queries over the {len(schema.tables)} table(s) of one schema\n"
        "// parser: lalr\n"
    )
    overrides = schema_terminal_regexes(schema, dialect, double_quoted_strings=double_quoted_strings)
    dialect_grammar = load_grammar(dialect.grammar_name)
    text = header + _replace_terminals(dialect_grammar.text, overrides)
    return _SchemaBoundGrammar(
        text, name=f"{dialect.grammar_name}[schema]", parser="lalr",
        description=f"{dialect.name} queries over a schema of {len(schema.tables)} table(s)",
        dialect_grammar=dialect_grammar, overrides=overrides,
    )


def _replace_terminals(text: str, regexes: dict[str, str]) -> str:
    """``text`` with the one-line definitions of the terminals in ``regexes`` replaced (same order)."""
    out, seen = [], set()
    for line in text.splitlines():
        name = line.split(":", 1)[0]
        if name in regexes and not line.startswith((" ", "\t", "//")):
            out.append(f"{name}: /{regexes[name]}/")
            seen.add(name)
        elif not line.startswith(("// parser:", "// include:")):
            out.append(line)
    if seen != set(regexes):
        raise GrammarError(f"the dialect grammar defines no terminal(s) {sorted(set(regexes) - seen)}")
    return "\n".join(out) + "\n"


class _SchemaBoundGrammar(Grammar):
    """A dialect grammar with its name terminals replaced. Only name terminals differ, so the lark parser
    reuses the dialect grammar's LALR table: building it again would dominate every schema's build time."""

    def __init__(self, text: str, *, dialect_grammar: Grammar, overrides: dict[str, str], **kwargs: object) -> None:
        super().__init__(text, **kwargs)  # type: ignore[arg-type]
        self._dialect_grammar = dialect_grammar
        self._overrides = overrides

    def _build_lark(self) -> tuple[lark.Lark, str]:
        return _with_terminals(self._dialect_grammar._lark_parser(), self._overrides), "lalr"


def _with_terminals(base: lark.Lark, overrides: dict[str, str]) -> lark.Lark:
    """A copy of the LALR parser ``base`` whose terminals named in ``overrides`` match those regexes instead."""
    from lark.common import LexerConf
    from lark.lexer import PatternRE, TerminalDef
    from lark.parser_frontends import ParsingFrontend

    known = {t.name for t in base.terminals}
    missing = set(overrides) - known
    if missing:
        raise GrammarError(f"the dialect grammar has no terminal(s) {sorted(missing)} to bind to the schema")
    terminals = [TerminalDef(t.name, PatternRE(overrides[t.name]), t.priority) if t.name in overrides else t
                 for t in base.terminals]
    options = base.options
    clone = copy.copy(base)
    clone.terminals = terminals
    clone._terminals_dict = {t.name: t for t in terminals}
    clone.lexer_conf = LexerConf(
        terminals, base.lexer_conf.re_module, base.lexer_conf.ignore, options.postlex, options.lexer_callbacks,
        options.g_regex_flags, skip_validation=True, use_bytes=options.use_bytes, strict=options.strict,
    )
    clone.lexer_conf.lexer_type = base.lexer_conf.lexer_type
    clone.parser = ParsingFrontend(clone.lexer_conf, base.parser.parser_conf, options, parser=base.parser.parser)
    return clone


# -- public entry point -----------------------------------------------------------------------------
def grammar(dialect: str = "sqlite", schema: Schema | None = None, *, double_quoted_strings: bool = False) -> Grammar:
    """The SQL grammar of ``dialect``; with ``schema``, only its tables and columns are identifiers.

    Schema-bound grammars keep table aliases (``T1.name``), column aliases (``AS total``) and quoted
    names, accept unquoted names in any ASCII letter case where the dialect folds case, and are cached
    per (dialect, schema).

    A double-quoted token is a name, never a string: SQLite's legacy fallback that reads an unknown
    ``"x"`` as the string 'x' would let a misspelt column through as a constant. Queries written
    for that fallback (Spider's gold SQL uses it in a third of its queries) need
    ``double_quoted_strings=True`` (sqlite only), which admits ``"..."`` wherever a string may stand.
    """
    info = get_dialect(dialect)
    if schema is None:
        return load_grammar(info.grammar_name)
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a constrain.sql.Schema, got {type(schema).__name__}")
    if double_quoted_strings and info.name != "sqlite":
        raise InputError(f"double_quoted_strings is a SQLite legacy; {info.name} reads \"x\" as a name only")
    return _bound_grammar(info.name, schema, double_quoted_strings)
