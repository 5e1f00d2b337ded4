"""SQL dialect differences as data: one small frozen record per dialect, no ``if`` chains elsewhere.

Each record says how the dialect treats identifiers (case folding, how to quote one), which
packaged grammar is its own, and which name sqlglot knows it by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect spells and folds identifiers."""

    name: str
    sqlglot_name: str
    # Whether an unquoted (and, for sqlite/duckdb, also a quoted) identifier matches regardless of ASCII case.
    case_insensitive: bool
    # Unquoted identifiers fold to this case before lookup ("lower" in postgres, "" when they keep it).
    unquoted_fold: str = ""
    quote_open: str = '"'
    quote_close: str = '"'
    # Words sqlglot refuses as a bare identifier in this dialect (measured), on top of the grammar's keywords.
    reserved: frozenset[str] = frozenset()
    # Functions a schema-bound grammar offers by name (the packaged grammars take any name), grouped by
    # the argument counts sqlglot reads them with.
    functions: tuple[tuple[str, tuple[str, ...]], ...] = ()
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

# Known functions by argument-count class (as sqlglot 30 reads them).
_COMMON_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "COUNT": ("count",),
    "AGGREGATE": ("avg", "max", "min", "sum"),
    "FUNC1": ("abs", "lower", "upper"),
    "FUNC12": ("round", "trim", "ltrim", "rtrim"),
    "FUNC13": ("coalesce", "length"),
    "FUNC2": ("nullif",),
    "FUNC23": ("replace", "substr", "substring"),
    "FUNC0": (),
    "WINDOW_FUNC0": ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist"),
    "WINDOW_FUNC1": ("ntile", "first_value", "last_value"),
    "WINDOW_FUNC13": ("lag", "lead"),
}


def _functions(**extra: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    merged = {k: tuple(sorted(set(v) | set(extra.get(k, ())))) for k, v in _COMMON_FUNCTIONS.items()}
    return tuple(sorted(merged.items()))


_COMMON_TYPES = ("integer", "int", "bigint", "smallint", "real", "float", "double", "numeric", "decimal",
                 "text", "varchar", "char", "date", "timestamp", "boolean")

DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(
        "sqlite", "sqlite", case_insensitive=True,
        reserved=_SQLGLOT_RESERVED,
        functions=_functions(
            AGGREGATE=("total", "group_concat"),
            FUNC1=("typeof", "hex", "unicode", "quote", "julianday", "date", "time", "datetime"),
            FUNC2=("ifnull", "instr"),
            FUNC23=("iif",),
            FUNC13=("strftime",),
            FUNC0=("random",),
        ),
        type_names=_COMMON_TYPES + ("blob", "datetime"),
    ),
    "postgres": Dialect(
        "postgres", "postgres", case_insensitive=False, unquoted_fold="lower",
        reserved=_SQLGLOT_RESERVED | {"match", "only", "variadic"},
        functions=_functions(
            AGGREGATE=("bool_and", "bool_or"),
            FUNC1=("sqrt", "floor", "ceil", "initcap"),
            FUNC13=("concat", "greatest", "least"),
            FUNC2=("power", "mod", "strpos"),
            FUNC23=("left", "right", "lpad", "rpad", "to_char", "date_trunc"),
            FUNC0=("now",),
        ),
        type_names=_COMMON_TYPES + ("bytea", "timestamptz"),
    ),
    "duckdb": Dialect(
        "duckdb", "duckdb", case_insensitive=True,
        reserved=_SQLGLOT_RESERVED | {"force", "install", "map", "match", "only", "positional", "summarize"},
        functions=_functions(
            AGGREGATE=("bool_and", "bool_or"),
            FUNC1=("sqrt", "floor", "ceil"),
            FUNC13=("concat", "greatest", "least", "ifnull"),
            FUNC2=("power", "mod", "instr"),
            FUNC23=("date_trunc", "strftime"),
            FUNC0=("now",),
        ),
        type_names=_COMMON_TYPES + ("blob", "varchar", "hugeint"),
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
