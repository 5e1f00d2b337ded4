"""Any name a real schema holds builds a working bound grammar, in every dialect's quoting.

Real schemas hold names such as ``Charter School (Y/N)`` or ``Percent (%) Eligible Free (K-12)``; every
character but NUL must survive quoting and escaping into the grammar, at any length the database holds.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from constrain.sql import Schema, grammar, validate
from constrain.sql._dialects import get_dialect
from constrain.sql.grammar import QUOTED_NAME_MAX
from constrain.sql.validate import DEFAULT_POLICY

_ANY_CHARACTER = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_NAME = st.one_of(
    st.text(_ANY_CHARACTER, min_size=1, max_size=24),
    st.text(st.sampled_from("/\\\"'`[]%()- .$#?|^*+{}~&:;,<>=!@"), min_size=1, max_size=12),
    st.text(_ANY_CHARACTER, min_size=QUOTED_NAME_MAX - 2, max_size=QUOTED_NAME_MAX + 40),
)
_NAMES = st.lists(_NAME, min_size=3, max_size=3, unique_by=lambda n: n.lower())

REAL_NAMES = ["Charter School (Y/N)", "Percent (%) Eligible Free (K-12)", "FRPM Count (K-12)", 'say "hi"', "a`b",
              "x]y", "3rd place", "naïve", "日本語", "🚀 launches", "a.b", "back\\slash", "tab\there", "select", " padded ",
              "0", "00", "bell\x07", "esc\x1b[2J", "line\u2028break", "a\\u0041"]


def _spellings(name: str, dialect: str) -> list[str]:
    """``name`` in each quoting the dialect reads (its default quoting first)."""
    info = get_dialect(dialect)
    forms = [info.quote(name)]
    for open_quote, close_quote in info.name_quotes:
        if open_quote == close_quote:
            forms.append(open_quote + name.replace(close_quote, close_quote * 2) + close_quote)
        elif close_quote not in name:
            forms.append(open_quote + name + close_quote)
    return list(dict.fromkeys(forms))


def _sqlite_holds(table: str, columns: list[str]) -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        conn.execute(f'CREATE TABLE "{table.replace(chr(34), chr(34) * 2)}" ({quoted})')
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _check_names(names: list[str], dialect: str) -> None:
    table, first, second = names
    schema = Schema.from_dict({table: {first: "INTEGER", second: "TEXT"}}, dialect)
    g = grammar(dialect, schema)
    if g is not grammar(dialect):  # the packaged grammars' checks are tested on their own
        errors = [d for d in g.check() if d.severity == "error"]
        assert errors == [], errors
    for spell_table, spell_first, spell_second in zip(*(_spellings(n, dialect) for n in names), strict=False):
        query = (f"SELECT {spell_first}, T1.{spell_second} AS total FROM {spell_table} AS T1 "
                 f"WHERE {spell_first} IS NOT NULL ORDER BY total")
        assert g.matches(query), query
        g.parse(query)
        if dialect == "sqlite" and not _sqlite_holds(table, [first, second]):
            continue  # a name SQLite reserves (sqlite_*): validate cannot compile it
        # duckdb's policy refuses a table name that reads like a file path (a replacement scan would open it)
        policy = None if dialect == "duckdb" else DEFAULT_POLICY
        checked = validate(query, dialect, schema, policy=policy)
        assert set(checked.tables) == {table}, (checked.tables, table)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "duckdb"])
def test_real_odd_names_build_and_validate(dialect: str) -> None:
    for i in range(0, len(REAL_NAMES) - 2):
        _check_names(REAL_NAMES[i:i + 3], dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "duckdb"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(names=_NAMES)
@example(names=["x" * (QUOTED_NAME_MAX + 1), "y" * 300, 'a "quoted" name that runs long ' * 10])
def test_arbitrary_names_build_a_working_bound_grammar(dialect: str, names: list[str]) -> None:
    _check_names(names, dialect)
