"""SQL dialect differences as data: one small frozen record per dialect, no ``if`` chains elsewhere.

Each record says how the dialect treats identifiers (case folding, how to quote one), which
packaged grammar is its own, and which name sqlglot knows it by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")  # the grammars' bare identifiers: at most 64 characters

@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect spells and folds identifiers, and which grammar forms it adds."""

    name: str
    sqlglot_name: str
    # Whether an unquoted (and, for sqlite/duckdb, also a quoted) identifier matches regardless of ASCII case.
    case_insensitive: bool
    # Unquoted identifiers fold to this case before lookup ("lower" in postgres, "" when they keep it).
    unquoted_fold: str = ""
    quote_open: str = '"'
    quote_close: str = '"'
    # Every (open, close) pair the dialect reads a quoted name in; a close quote inside is doubled,
    # except where open != close (SQLite's [x] holds no "]").
    name_quotes: tuple[tuple[str, str], ...] = (('"', '"'),)
    # Whether a string literal may name a select-list column (SELECT x AS 'total').
    string_aliases: bool = False
    # Keywords the dialect (and sqlglot) read as a bare table name after FROM / JOIN (measured).
    bare_table_keywords: tuple[str, ...] = ()
    # The shared grammar fragment the dialect file includes.
    base_grammar: str = "sql/_base"
    description: str = ""
    # Words sqlglot refuses as a bare identifier in this dialect (measured), on top of the grammar's keywords.
    reserved: frozenset[str] = frozenset()
    type_names: tuple[str, ...] = ()

    @property
    def keywords(self) -> frozenset[str]:
        """Words that are never bare identifiers in this dialect's grammar."""
        return GRAMMAR_KEYWORDS | self.reserved

    @property
    def grammar_name(self) -> str:
        return f"sql/{self.name}"

    def needs_quotes(self, name: str) -> bool:
        """Whether ``name`` must be quoted to be read back as itself (and so to appear in the grammar)."""
        if not _PLAIN_IDENTIFIER.match(name) or _ascii_lower(name) in self.keywords:
            return True
        return self.unquoted_fold == "lower" and name != name.lower()

    def quote(self, name: str) -> str:
        """``name`` as an identifier of this dialect: bare when that reads back the same, else quoted."""
        if not self.needs_quotes(name):
            return name
        escaped = name.replace(self.quote_close, self.quote_close * 2)
        return f"{self.quote_open}{escaped}{self.quote_close}"

    def same_identifier(self, stored: str, written: str) -> bool:
        """Whether ``written`` (as a user or query names it) refers to the catalog name ``stored``."""
        if stored == written:
            return True
        if self.case_insensitive:
            return _ascii_lower(stored) == _ascii_lower(written)
        if self.unquoted_fold == "lower":
            return stored == _ascii_lower(written)
        return False


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# Keywords the shared grammar uses where a bare identifier could also stand: never identifiers.
GRAMMAR_KEYWORDS: frozenset[str] = frozenset(
    """
    all and as asc between by case cast cross desc distinct else end except exists from glob group having
    in inner intersect is isnull join left like limit natural not notnull offset on or order outer select
    then union using when where with
    """.split()
)

# Words sqlglot 30 will not read as a bare identifier in every position (probed per dialect).
_SQLGLOT_RESERVED = frozenset(
    """
    alter and anti any as asof between case cast collate create cross cube current_catalog describe distinct
    drop else except fetch filter for from full glob grant having if ilike inner insert intersect into join
    lateral left like limit lock natural not notnull offset on or outer partitioned_by qualify recursive regexp
    replace returning revoke right rlike rollback rollup select semi session_user straight_join tablesample
    then uncache union using values when where window with xor
    """.split()
)

_COMMON_TYPES = ("integer", "int", "bigint", "smallint", "real", "float", "double", "numeric", "decimal",
                 "text", "varchar", "char", "date", "timestamp", "boolean")

DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(
        "sqlite", "sqlite", case_insensitive=True,
        name_quotes=(('"', '"'), ("`", "`"), ("[", "]")),
        string_aliases=True,
        # probed: SQLite 3.40 and sqlglot 30 both read these as table names in FROM, JOIN and comma joins
        bare_table_keywords=("anti", "any", "asc", "asof", "by", "cast", "cube", "current_catalog", "desc", "end",
                             "filter", "full", "if", "left", "lock", "natural", "offset", "recursive", "replace",
                             "right", "rollup", "semi", "session_user", "straight_join", "window"),
        description="SQLite read-only queries (SELECT / WITH ... SELECT)",
        reserved=_SQLGLOT_RESERVED,
        type_names=_COMMON_TYPES + ("blob", "datetime"),
    ),
    "postgres": Dialect(
        "postgres", "postgres", case_insensitive=False, unquoted_fold="lower",
        base_grammar="sql/_extended",
        description="PostgreSQL read-only queries (SELECT / WITH ... SELECT)",
        reserved=_SQLGLOT_RESERVED | {"match", "only", "variadic"},
        type_names=_COMMON_TYPES + ("bytea", "timestamptz", "interval", "time"),
    ),
    "duckdb": Dialect(
        "duckdb", "duckdb", case_insensitive=True,
        string_aliases=True,
        base_grammar="sql/_extended",
        description="DuckDB read-only queries (SELECT / WITH ... SELECT)",
        reserved=_SQLGLOT_RESERVED | {"force", "install", "map", "match", "only", "positional", "summarize"},
        type_names=_COMMON_TYPES + ("blob", "varchar", "hugeint", "interval", "time"),
    ),
}

_ALIASES = {"postgresql": "postgres", "sqlite3": "sqlite"}


def get_dialect(name: str) -> Dialect:
    """The dialect record for ``name`` (``sqlite``, ``postgres``/``postgresql``, ``duckdb``)."""
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else ""
    dialect = DIALECTS.get(key)
    if dialect is None:
        raise InputError(f"unknown SQL dialect {name!r}; known dialects: {', '.join(sorted(DIALECTS))}")
    return dialect
