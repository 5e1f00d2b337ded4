"""Schema-bound grammars: only the schema's tables and columns are names, real queries still fit."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from conftest import corpus
from constrain.errors import InputError, ValidationError
from constrain.sql import Schema, grammar
from test_sql_coverage import KNOWN_REJECTIONS

MIN_RATE = 0.97


def _chinook() -> Schema:
    return Schema.from_sqlite(corpus("chinook", "Chinook_Sqlite.sqlite"))


def _accepts(g, query: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        g.validate(query)
    except ValidationError:
        return False
    return True


def test_only_the_schemas_names_are_identifiers() -> None:
    g = grammar("sqlite", _chinook())
    for query in [
        "SELECT Name FROM Artist",
        "select name from artist",  # SQLite folds ASCII case
        "SELECT T1.Title, T2.Name FROM Album AS T1 JOIN Artist AS T2 ON T1.ArtistId = T2.ArtistId",
        "SELECT a.Name FROM Artist a WHERE a.ArtistId > 10 ORDER BY a.Name LIMIT 5",
        "SELECT count(*) AS total, BillingCountry FROM Invoice GROUP BY BillingCountry ORDER BY count(*) DESC",
        'SELECT "Name" FROM "Artist" WHERE "Name" LIKE \'A%\'',
        "SELECT Name FROM Artist WHERE ArtistId IN (SELECT ArtistId FROM Album WHERE Title IS NOT NULL)",
        "SELECT Milliseconds / 1000.0, round(UnitPrice * 2, 2) FROM Track WHERE Composer = NULL",
    ]:
        assert _accepts(g, query), query
    for query in [
        "SELECT Nme FROM Artist",  # misspelt column
        "SELECT Name FROM Artists",  # misspelt table
        "SELECT Name FROM sqlite_master",  # a table outside the schema
        "SELECT Name FROM Artist WHERE Name = \"AC/DC\"",  # "..." is a name, and no column is called AC/DC
        "SELECT T1.Nme FROM Artist AS T1",
        "SELECT Name FROM Artist AS artist_alias",  # table aliases: a digit, or at most three letters
        "SELECT load_extension('x') FROM Artist",
    ]:
        assert not _accepts(g, query), query


def test_names_that_need_quotes_are_offered_quoted_and_postgres_case_rules() -> None:
    schema = Schema.from_dict({"Order Items": {"order": "INT", "Qty": "INT", "item_id": "INT"}}, "postgres")
    g = grammar("postgres", schema)
    assert _accepts(g, 'SELECT "order", "Qty", item_id, ITEM_ID FROM "Order Items"')
    assert not _accepts(g, 'SELECT Qty FROM "Order Items"')  # folds to qty: not the column "Qty"
    assert not _accepts(g, 'SELECT "qty" FROM "Order Items"')  # quoted names are exact in postgres
    assert not _accepts(g, 'SELECT order FROM "Order Items"')  # a keyword: quoted only
    lite = grammar("sqlite", Schema.from_dict({"Order Items": {"Qty": "INT"}}))
    assert _accepts(lite, 'SELECT qty, "QTY" FROM "order items"')  # SQLite matches names in any case


def test_bound_grammars_are_cached_per_schema_and_refuse_bad_input() -> None:
    a = grammar("sqlite", _chinook())
    assert grammar("sqlite", _chinook()) is a  # an equal schema loaded again hits the cache
    assert grammar("duckdb", _chinook()) is not a
    with pytest.raises(InputError):
        grammar("sqlite", Schema((), "sqlite"))
    with pytest.raises(InputError):
        grammar("postgres", _chinook(), double_quoted_strings=True)
    with pytest.raises(TypeError):
        grammar("sqlite", {"t": {"a": "int"}})  # type: ignore[arg-type]


def test_double_quoted_strings_are_opt_in() -> None:
    schema = Schema.from_sqlite(corpus("spider", "database", "bike_1", "bike_1.sqlite"))
    query = 'SELECT zip_code, avg(mean_temperature_f) FROM weather WHERE date LIKE "8/%" GROUP BY zip_code'
    assert not _accepts(grammar("sqlite", schema), query)
    assert _accepts(grammar("sqlite", schema, double_quoted_strings=True), query)


def test_large_schema_builds_and_checks_clean() -> None:
    tables = {f"table_{t:03d}": {f"column_{t:03d}_{c:02d}": "INTEGER" for c in range(20)} for t in range(500)}
    schema = Schema.from_dict(tables, "sqlite")
    start = time.perf_counter()
    g = grammar("sqlite", schema)
    errors = [d for d in g.check() if d.severity == "error"]
    assert errors == [], errors[:5]
    query = "SELECT T1.column_499_19 FROM table_499 AS T1 JOIN table_000 AS T2 ON T1.column_499_00 = T2.column_000_00"
    g.validate(query)
    assert not g.matches(query.replace("table_499", "table_500"))
    print(f"500 x 20 schema: built, checked and used in {time.perf_counter() - start:.1f} s")


def _missing_tables(query: str, schema: Schema) -> list[str]:
    try:
        tree = sqlglot.parse_one(query, read="sqlite")
    except sqlglot.errors.ParseError:
        return []
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return [t.name for t in tree.find_all(exp.Table) if schema.table(t.name) is None and t.name.lower() not in ctes]


def _explain(query: str, schema: Schema) -> str | None:
    known = next((why for pattern, why in KNOWN_REJECTIONS if re.search(pattern, query)), None)
    if known:
        return known
    missing = _missing_tables(query, schema)
    if missing:
        return f"names table(s) {missing} that the database does not have"
    return None


def _spider_by_database() -> dict[str, list[str]]:
    by_db: dict[str, list[str]] = defaultdict(list)
    for line in corpus("spider", "train_gold.sql").read_text(encoding="utf-8").splitlines():
        query, db = line.split("\t")
        by_db[db].append(query)
    return by_db


def test_spider_gold_queries_fit_the_grammar_bound_to_their_database() -> None:
    """Each gold query against the grammar bound to its own database (llguidance on every database,
    lark as well on every eighth one). Spider writes string constants in double quotes, so the
    grammar is built with double_quoted_strings=True; the strict default is measured alongside."""
    root = corpus("spider", "database")
    total = accepted = 0
    rejected: list[tuple[str, str, str | None]] = []
    strict_checked = strict_only_rejected = 0
    for index, (db, queries) in enumerate(sorted(_spider_by_database().items())):
        path = Path(root, db, f"{db}.sqlite")
        if not path.exists():
            continue
        schema = Schema.from_sqlite(path)
        g = grammar("sqlite", schema, double_quoted_strings=True)
        both_engines = index % 8 == 0
        strict = grammar("sqlite", schema) if both_engines else None
        for query in queries:
            total += 1
            ok = g.matches(query)
            if both_engines:
                assert _accepts(g, query) == ok, f"lark and llguidance disagree on {query!r}"
                if ok and strict is not None:
                    strict_checked += 1
                    if not strict.matches(query):
                        strict_only_rejected += 1
                        assert '"' in query, query  # the strict grammar only refuses double-quoted strings
            if ok:
                accepted += 1
            else:
                rejected.append((db, query, _explain(query, schema)))
    report = "\n".join(f"  [{db}] {q}\n      why: {why}" for db, q, why in rejected)
    rate = accepted / total
    print(f"schema-bound sqlite grammars accept {accepted} of {total} Spider gold queries ({rate:.2%});"
          f" strict default refuses {strict_only_rejected} of {strict_checked} more (double-quoted strings)\n{report}")
    assert total > 8000
    assert [r for r in rejected if r[2] is None] == [], report
    assert rate >= MIN_RATE, report
