"""``constrain.sql.grammar``: the packaged grammar of a dialect, or one bound to a schema.

The dialect grammars are ``grammars/sql/_base.lark`` (rules shared by every dialect), ``_standard.lark``
(the SQL standard's forms SQLite lacks: TRIM / SUBSTRING / POSITION call forms, ANY / ALL, FETCH FIRST),
``_extended.lark`` (the PostgreSQL family) with ``_postgres.lark`` and ``_duckdb.lark``, ``_mysql.lark``
(MySQL / MariaDB), plus one small file per dialect holding what differs (identifiers, quoted names,
strings, type names, alias forms, reserved words called as functions), rendered from the data in
``_dialects.py`` by ``render_dialect_file``.

Every name position of every grammar takes any identifier of the dialect, bare or in any of its
quotes: a select-list alias, a CTE, a derived table's columns are names a context-free grammar cannot
tell from schema names, and a grammar that refused them would push a model into a wrong query.
Whether a name exists and is in scope is ``constrain.sql.validate``'s job. A schema-bound grammar
adds the schema's names the generic terminals cannot spell (quoted names longer than
``QUOTED_NAME_MAX`` characters), so that every name a database holds is writable.
"""

from __future__ import annotations

import copy
import functools
from typing import Iterable

import lark

from ..errors import GrammarError, InputError
from ..grammar import Grammar, load_grammar
from ._dialects import Dialect, _ascii_lower, get_dialect
from .schema import Schema

__all__ = ["grammar", "render_dialect_file", "render_dialect_terminals", "QUOTED_NAME_MAX"]

NAME_TERMINALS = ("QUALIFIER", "ALIAS_WS", "SELECT_ALIAS_WS", "TABLE_NAME", "IDENT")
"""The unbounded name terminals, in the order lark's lexer tries them after every keyword: a qualifier
before the name it starts ("main.Album"), an alias with its blank before the bare forms. After them come
the terminals that match a name's start (a type name, a lone blank), as when names were bounded and so
narrower than every keyword but wider than these."""

QUOTED_NAME_MAX = 256
"""The generic quoted-name terminal holds at most this many characters; a schema-bound grammar adds the
schema's longer names by their exact spelling."""

_IDENT_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_IDENT_REST = _IDENT_FIRST + "0123456789"


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


def regex_char(ch: str) -> str:
    """``ch`` as a regex atom that lark-python and llguidance read the same way inside a Lark ``/.../``
    literal: ASCII letters and digits as themselves, ASCII punctuation and space backslash-escaped (lark
    turns ``\\xNN`` into the raw character, so ``\\x5b`` would open a class), control characters, line
    breaks and spaces as ``\\xNN`` / ``\\uNNNN`` (no line separator splits a grammar line), every other
    character as itself (llguidance misreads some ``\\uNNNN`` runs). Measured in both engines."""
    code = ord(ch)
    if ch.isascii() and ch.isalnum():
        return ch
    if ch == "\\":  # as a class: llguidance reads "\\\\u1234" as a backslash-u escape, "\\\\x41" likewise
        return "[\\\\]"
    if ch in "<>":  # as a class: Rust's regex reads \\< and \\> as word-boundary assertions
        return f"[{ch}]"
    if 0x20 <= code < 0x7F:
        return "\\" + ch
    if code < 0xA0 or ch in _LINE_BREAKS or ch.isspace():
        return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
    return ch


# what str.splitlines() splits on beyond ASCII: never written raw into a grammar line
_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _case_class(ch: str, case_insensitive: bool) -> str:
    if case_insensitive and ch.isalpha() and ch.isascii():
        return f"[{ch.lower()}{ch.upper()}]"
    return regex_char(ch)


def _trie(words: Iterable[str], case_insensitive: bool) -> dict:
    root: dict = {}
    for word in words:
        node = root
        for ch in _ascii_lower(word) if case_insensitive else word:  # ASCII only: "İ".lower() is two characters
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


def identifier_regex(reserved: Iterable[str], reserved_prefixes: Iterable[str] = ()) -> str:
    """Bare identifiers ``[A-Za-z_][A-Za-z0-9_]*`` except ``reserved`` and every word starting with one of
    ``reserved_prefixes`` (compared ASCII case-insensitively). Written without lookaround so that llguidance
    reads it too, and without a length bound: a bounded tail (``{0,63}``) is a new llguidance lexer state per
    character, and SQL grammars took 65,000 Earley items to mask one step over a 151k-token vocabulary
    (llguidance stops at 50,000: vLLM, hosted engines). The dialect file's ``// lexer-last:`` line keeps
    lark trying keywords first (see ``constrain.grammar._packaged``)."""
    trie = _trie(reserved, True)
    for prefix in reserved_prefixes:
        node = trie
        for ch in _ascii_lower(prefix):
            node = node.setdefault(ch, {})
        node[_PREFIX_MARK] = {}

    def render(node: dict, depth: int) -> str | None:
        if _PREFIX_MARK in node:
            return None
        alts: list[str] = []
        allowed = _IDENT_FIRST if depth == 0 else _IDENT_REST
        used: set[str] = set()
        for ch, child in sorted(node.items()):
            if not ch or ch == _PREFIX_MARK:
                continue
            used.update({ch.lower(), ch.upper()})
            below = render(child, depth + 1)
            if below is not None:
                alts.append(_case_class(ch, True) + below)
        others = _char_class(c for c in allowed if c not in used)
        if others:
            alts.append(others + "[A-Za-z0-9_]*")
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


_PREFIX_MARK = "*"  # a trie key no identifier character equals

# An alias written without AS after a select-list expression must not begin with a keyword that ends a
# terminal able to follow an expression: lark's LALR lexer would read "x description" as "x DESC ription".
IMPLICIT_ALIAS_RESERVED_PREFIXES = ("asc", "desc", "isnull", "notnull", "end", "preceding", "following")


def quoted_name_regex(dialect: Dialect, long_names: Iterable[str] = ()) -> str:
    """Names in each of the dialect's quotes: any text up to ``QUOTED_NAME_MAX`` characters (a close quote
    doubled inside), plus ``long_names`` exactly as the dialect quotes them (ASCII case-insensitively where
    the dialect matches quoted names so)."""
    alternatives = []
    long_names = sorted(set(long_names))
    for open_quote, close_quote in dialect.name_quotes if long_names else ():
        # first: the generic form would otherwise stop a long name at its first doubled quote
        if open_quote == close_quote:
            spelt = [n.replace(close_quote, close_quote * 2) for n in long_names]
        else:
            spelt = [n for n in long_names if close_quote not in n]
        if spelt:
            alternatives.append(regex_char(open_quote) + word_regex(spelt, case_insensitive=dialect.case_insensitive)
                                + regex_char(close_quote))
    for open_quote, close_quote in dialect.name_quotes:
        o, c = regex_char(open_quote), regex_char(close_quote)
        inner = f"[^{c}\\x00]" if open_quote != close_quote else f"(?:[^{c}\\x00]|{c}{c})"
        alternatives.append(f"{o}{inner}{{1,{QUOTED_NAME_MAX}}}{c}")
    return "(?:" + "|".join(alternatives) + ")"


def string_regex(dialect: Dialect) -> str:
    """String literals of the dialect: in each of its string quotes, a quote doubled inside, and where the
    dialect reads backslash escapes (MySQL), a backslash with the character it escapes."""
    alternatives = []
    for quote in dialect.string_quotes:
        q = quote if quote == "'" else regex_char(quote)
        if dialect.backslash_escapes:
            inner = f"[^{q}\\\\\\x00]|{q}{q}|[\\\\][^\\x00]"
        else:
            inner = f"[^{q}\\x00]|{q}{q}"
        alternatives.append(f"{q}(?:{inner}){{0,{STRING_MAX}}}{q}")
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


STRING_MAX = 256
"""A string literal holds at most this many characters (or escape pairs)."""


def render_dialect_terminals(dialect: Dialect) -> str:
    """What the dialect's grammar file defines on top of its base fragment, rendered from its data."""
    reserved = dialect.keywords
    # a value word (NULL, TRUE ...) stands as an expression, never as a table or an alias without AS
    not_names = reserved | dialect.value_words
    alias_forms = "IDENT | QUOTED_NAME" + (" | STRING" if dialect.string_aliases else "")
    lines = [
        f"IDENT: /{identifier_regex(sorted(reserved))}/",
        f"TABLE_NAME: /{identifier_regex(sorted(not_names - set(dialect.bare_table_keywords)))}/",
        f"QUOTED_NAME: /{quoted_name_regex(dialect)}/",
        'QUOTED_QUALIFIER: QUOTED_NAME "."',
        'QUALIFIER: IDENT "."',
        "ALIAS_WS: SP IDENT",
        "SELECT_ALIAS_WS: /[ \\t\\r\\n]{1,2}"
        f"{identifier_regex(sorted(not_names), reserved_prefixes=IMPLICIT_ALIAS_RESERVED_PREFIXES)}/",
        f"STRING: /{string_regex(dialect)}/",
        f"TYPE_NAME: /{word_regex(dialect.type_names, case_insensitive=True)}/",
    ]
    if dialect.keyword_functions:
        # the name and its "(" as one token: a reserved word is a call only when "(" follows it
        lines.append(f'KEYWORD_FUNCTION: /{word_regex(dialect.keyword_functions, case_insensitive=True)}/ OSP "(" OSP')
    lines.append(f"alias_name: {alias_forms}")
    return "\n".join(lines) + "\n"


def render_dialect_file(dialect: Dialect) -> str:
    """The whole text of ``grammars/sql/<dialect>.lark``."""
    return (
        f"// {dialect.description}\n// parser: lalr\n"
        f"// lexer-last: {' '.join(NAME_TERMINALS + ('TYPE_NAME',) + dialect.word_terminals + ('_SEP', '_TRAIL'))}\n"
        f"// include: {dialect.base_grammar}\n"
        "// Generated from constrain/sql/_dialects.py by constrain.sql.grammar.render_dialect_file.\n\n"
        + render_dialect_terminals(dialect)
    )


# -- schema-bound grammars -------------------------------------------------------------------------
def bare_reserved_tables(dialect: Dialect, tables: Iterable[str]) -> set[str]:
    """The catalog's table names (lower case) that the dialect reserves but the grammar uses as no keyword
    (DuckDB's ``show``, MySQL's ``match``): a schema-bound grammar admits them bare where a table or a
    column's qualifier stands, since that is how models write them, and ``validate`` quotes them."""
    reserved = dialect.reserved - dialect.grammar_keywords - dialect.value_words
    return {_ascii_lower(t) for t in tables if _ascii_lower(t) in reserved
            and _sqlglot_reads_bare_table(dialect.sqlglot_name, _ascii_lower(t))}


@functools.lru_cache(maxsize=4096)
def _sqlglot_reads_bare_table(sqlglot_dialect: str, word: str) -> bool:
    """Whether sqlglot reads ``word`` bare as a table and as a column's qualifier (it refuses ``alter``):
    a word it cannot read would pass the grammar only to fail validation."""
    import sqlglot
    from sqlglot import exp

    try:
        root = sqlglot.parse_one(f"SELECT {word}.n FROM {word}", read=sqlglot_dialect)
    except sqlglot.errors.SqlglotError:
        return False
    table = root.find(exp.Table)
    column = root.find(exp.Column)
    return (table is not None and table.name == word and column is not None and column.table == word
            and column.name == "n")


def _long_names(names: list[str]) -> list[str]:
    for name in names:
        if "\x00" in name:
            raise InputError(f"schema name {name!r} holds a NUL character; no SQL engine can name it")
    return [n for n in dict.fromkeys(names) if len(n) > QUOTED_NAME_MAX]


@functools.lru_cache(maxsize=32)
def _bound_grammar(dialect_name: str, schema: Schema) -> Grammar:
    dialect = get_dialect(dialect_name)
    dialect_grammar = load_grammar(dialect.grammar_name)
    tables = [t.name for t in schema.tables]
    long_names = _long_names(tables + schema.column_names())
    bare = bare_reserved_tables(dialect, tables)
    if not long_names and not bare:
        return dialect_grammar
    overrides: dict[str, str] = {}
    notes: list[str] = []
    if long_names:
        # only a table's name can qualify a column: long column names stay out of QUOTED_QUALIFIER
        overrides["QUOTED_NAME"] = quoted_name_regex(dialect, long_names)
        overrides["QUOTED_QUALIFIER"] = quoted_name_regex(dialect, _long_names(tables)) + "\\."
        notes.append(f"the {len(long_names)} name(s) of one schema longer than {QUOTED_NAME_MAX} characters")
    if bare:
        # models write a table named by a reserved word bare (FROM show); validate() quotes it
        table_words = dialect.keywords | dialect.value_words
        overrides["TABLE_NAME"] = identifier_regex(sorted(table_words - set(dialect.bare_table_keywords) - bare))
        overrides["QUALIFIER"] = identifier_regex(sorted(dialect.keywords - bare)) + "\\."
        notes.append(f"the table name(s) {', '.join(sorted(bare))} bare")
    header = f"// {dialect.name} read-only queries, with {' and '.join(notes)}\n// parser: lalr\n"
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
def grammar(dialect: str = "sqlite", schema: Schema | None = None) -> Grammar:
    """The SQL grammar of ``dialect``; with ``schema``, one that can also spell every name of the schema.

    Every grammar takes any identifier where a name stands (aliases, CTEs and derived tables are names
    a context-free grammar cannot tell from schema names); ``constrain.sql.validate`` refuses a name the
    schema lacks or a query does not define, naming it. The schema-bound grammar is the dialect grammar
    itself unless the schema holds names longer than ``QUOTED_NAME_MAX`` characters, which it adds.
    """
    info = get_dialect(dialect)
    if schema is None:
        return load_grammar(info.grammar_name)
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a constrain.sql.Schema, got {type(schema).__name__}")
    if not schema.tables:
        raise InputError("the schema has no tables; a schema-bound grammar needs at least one")
    return _bound_grammar(info.name, schema)
