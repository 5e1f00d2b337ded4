"""Schema-bound grammars: every name a model uses is writable (schema names of any length and shape,
aliases, CTEs, derived tables); a name the schema lacks passes the grammar and the validator names it."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from conftest import corpus
from constrain.errors import InputError, SchemaError, ValidationError
from constrain.sql import Schema, grammar, validate
from test_sql_coverage import KNOWN_REJECTIONS

MIN_RATE = 0.995


def _chinook() -> Schema:
    return Schema.from_sqlite(corpus("chinook", "Chinook_Sqlite.sqlite"))


def _accepts(g, query: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        g.validate(query)
    except ValidationError:
        return False
    return True


def test_names_a_model_uses_are_writable_and_the_validator_judges_them() -> None:
    schema = _chinook()
    g = grammar("sqlite", schema)
    for query in [
        "SELECT Name FROM Artist",
        "select name from artist",  # SQLite folds ASCII case
        "SELECT T1.Title, T2.Name FROM Album AS T1 JOIN Artist AS T2 ON T1.ArtistId = T2.ArtistId",
        "SELECT artist.Name FROM Artist AS artist WHERE artist.ArtistId > 10 ORDER BY artist.Name LIMIT 5",
        "SELECT FirstName, LastName, SUM(Total) AS TotalSpent\nFROM Customer JOIN Invoice USING (CustomerId)\n"
        "GROUP BY FirstName, LastName\nORDER BY TotalSpent DESC LIMIT 5",
        "WITH spend AS (SELECT CustomerId, SUM(Total) AS amount FROM Invoice GROUP BY CustomerId) "
        "SELECT c.FirstName, spend.amount FROM Customer AS c JOIN spend ON spend.CustomerId = c.CustomerId",
        "SELECT sub.n FROM (SELECT count(*) AS n FROM Track) AS sub",
        'SELECT `Name`, [Title] FROM `Album` JOIN [Artist] USING (ArtistId) WHERE "Name" LIKE \'A%\'',
        "SELECT BillingCountry, count(*) AS 'invoices' FROM Invoice GROUP BY BillingCountry HAVING invoices > 10",
    ]:
        assert _accepts(g, query), query
        validate(query, "sqlite", schema)
    for query, name in [
        ("SELECT Nme FROM Artist", "Nme"),
        ("SELECT Name FROM Artists", "Artists"),
        ("SELECT T1.Nme FROM Artist AS T1", "Nme"),
        ("SELECT Title FROM Album ORDER BY TotalSpent", "TotalSpent"),  # an alias nobody defined
    ]:
        assert _accepts(g, query), query  # a context-free grammar cannot tell these from aliases
        with pytest.raises(SchemaError) as info:
            validate(query, "sqlite", schema)
        assert info.value.name == name


def test_postgres_case_rules_are_the_validators() -> None:
    schema = Schema.from_dict({"Order Items": {"order": "INT", "Qty": "INT", "item_id": "INT"}}, "postgres")
    g = grammar("postgres", schema)
    good = 'SELECT "order", "Qty", item_id, ITEM_ID FROM "Order Items"'
    assert _accepts(g, good)
    validate(good, "postgres", schema)
    assert _accepts(g, 'SELECT "qty" FROM "Order Items"')
    with pytest.raises(SchemaError):  # quoted, "qty" is exactly qty, and that is not "Qty"
        validate('SELECT "qty" FROM "Order Items"', "postgres", schema)
    # unquoted, Qty folds to qty, which names nothing: the one column it can mean is "Qty", written so
    folded = validate('SELECT Qty FROM "Order Items"', "postgres", schema)
    assert folded.text == 'SELECT "Qty" FROM "Order Items"' and folded.rewritten
    assert not _accepts(g, 'SELECT order FROM "Order Items"')  # a keyword: quoted only
    lite = grammar("sqlite", Schema.from_dict({"Order Items": {"Qty": "INT"}}))
    assert _accepts(lite, 'SELECT qty, "QTY" FROM "order items"')  # SQLite matches names in any case


def test_bound_grammars_are_cached_per_schema_and_refuse_bad_input() -> None:
    long_name = "a column named at length " * 12
    schema = Schema.from_dict({"t": {long_name: "INT", "b": "INT"}}, "sqlite")
    a = grammar("sqlite", schema)
    assert grammar("sqlite", Schema.from_dict({"t": {long_name: "INT", "b": "INT"}}, "sqlite")) is a  # equal schema: cached
    assert grammar("sqlite", _chinook()) is grammar("sqlite")  # nothing the generic terminals cannot spell
    with pytest.raises(InputError):
        grammar("sqlite", Schema((), "sqlite"))
    with pytest.raises(TypeError):
        grammar("sqlite", {"t": {"a": "int"}})  # type: ignore[arg-type]


def test_double_quoted_strings_read_as_strings_unless_a_near_miss(tmp_path: Path) -> None:
    schema = Schema.from_sqlite(corpus("spider", "database", "bike_1", "bike_1.sqlite"))
    query = 'SELECT zip_code, avg(mean_temperature_f) FROM weather WHERE date LIKE "8/%" GROUP BY zip_code'
    assert _accepts(grammar("sqlite", schema), query)
    checked = validate(query, "sqlite", schema)
    assert "'8/%'" in checked.text and checked.rewritten
    with pytest.raises(SchemaError):
        validate(query, "sqlite", schema, double_quoted_strings=False)
    with pytest.raises(SchemaError) as info:
        validate('SELECT zip_code FROM weather WHERE "zip_cod" = 94107', "sqlite", schema)
    assert info.value.suggestions == ["zip_code"] and info.value.column == 36
    # a column's name with a number added is a value (Spider writes "region0")
    validate('SELECT zip_code FROM weather WHERE events = "events2"', "sqlite", schema)


def test_large_schema_builds_and_checks_clean() -> None:
    tables = {f"table_{t:03d}": {f"column_{t:03d}_{c:02d}": "INTEGER" for c in range(20)} for t in range(500)}
    schema = Schema.from_dict(tables, "sqlite")
    start = time.perf_counter()
    g = grammar("sqlite", schema)
    errors = [d for d in g.check() if d.severity == "error"]
    assert errors == [], errors[:5]
    query = "SELECT T1.column_499_19 FROM table_499 AS T1 JOIN table_000 AS T2 ON T1.column_499_00 = T2.column_000_00"
    g.validate(query)
    validate(query, "sqlite", schema)
    with pytest.raises(SchemaError) as info:
        validate(query.replace("table_499", "table_500"), "sqlite", schema)
    assert info.value.name == "table_500" and info.value.suggestions
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
    lark as well on every eighth one)."""
    root = corpus("spider", "database")
    total = accepted = 0
    rejected: list[tuple[str, str, str | None]] = []
    for index, (db, queries) in enumerate(sorted(_spider_by_database().items())):
        path = Path(root, db, f"{db}.sqlite")
        if not path.exists():
            continue
        g = grammar("sqlite", Schema.from_sqlite(path))
        both_engines = index % 8 == 0
        for query in queries:
            total += 1
            ok = g.matches(query)
            if both_engines:
                assert _accepts(g, query) == ok, f"lark and llguidance disagree on {query!r}"
            if ok:
                accepted += 1
            else:
                rejected.append((db, query, _explain(query, Schema.from_sqlite(path))))
    report = "\n".join(f"  [{db}] {q}\n      why: {why}" for db, q, why in rejected)
    rate = accepted / total
    print(f"schema-bound sqlite grammars accept {accepted} of {total} Spider gold queries ({rate:.2%})\n{report}")
    assert total > 8000
    assert [r for r in rejected if r[2] is None] == [], report
    assert rate >= MIN_RATE, report
