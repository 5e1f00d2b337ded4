"""SQL dialect differences as data: one small frozen record per dialect, no ``if`` chains elsewhere.

Each record says how the dialect treats identifiers (case folding, how to quote one), which
packaged grammar is its own, and which name sqlglot knows it by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Words no dialect here lets stand as a bare identifier in every position; quoting them is always safe.
RESERVED_WORDS: frozenset[str] = frozenset(
    """
    all and as asc between by case cast collate cross current_date current_time current_timestamp
    desc distinct else end escape except exists false from full glob group having in inner intersect
    is isnull join left like limit natural not notnull null offset on or order outer over partition
    recursive regexp right select then true union using values when where window with
    """.split()
)


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

    @property
    def grammar_name(self) -> str:
        return f"sql/{self.name}"

    def needs_quotes(self, name: str) -> bool:
        """Whether ``name`` must be quoted to be read back as itself."""
        if not _PLAIN_IDENTIFIER.match(name) or name.lower() in RESERVED_WORDS:
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


DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect("sqlite", "sqlite", case_insensitive=True),
    "postgres": Dialect("postgres", "postgres", case_insensitive=False, unquoted_fold="lower"),
    "duckdb": Dialect("duckdb", "duckdb", case_insensitive=True),
}

_ALIASES = {"postgresql": "postgres", "sqlite3": "sqlite"}


def get_dialect(name: str) -> Dialect:
    """The dialect record for ``name`` (``sqlite``, ``postgres``/``postgresql``, ``duckdb``)."""
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else ""
    dialect = DIALECTS.get(key)
    if dialect is None:
        raise InputError(f"unknown SQL dialect {name!r}; known dialects: {', '.join(sorted(DIALECTS))}")
    return dialect
