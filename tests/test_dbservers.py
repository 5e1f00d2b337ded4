"""The private PostgreSQL and MariaDB servers of tests/_dbservers.py, through the real drivers and SQLAlchemy.

Each server starts once per session (the ``postgres_server`` / ``mariadb_server`` fixtures in conftest.py,
Chinook loaded); without the Debian packages the tests skip, under CI they fail.
"""

from __future__ import annotations

import collections
import json
import math
import os
import secrets
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import corpus

DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


def need(module: str) -> Any:
    """Import a driver; missing, the test skips (fails under CI, which must run these tests)."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"the database tests need {module!r}, and CI must run them")
        pytest.skip(f"needs {module!r}")


def engine(url: str):  # type: ignore[no-untyped-def]
    """A SQLAlchemy engine for a plain-scheme URL (``postgresql://``, ``mysql://``)."""
    sa = need("sqlalchemy")
    scheme, rest = url.split("://", 1)
    need({"postgresql": "psycopg", "mysql": "pymysql"}[scheme])
    return sa.create_engine(f"{DRIVERS[scheme]}://{rest}")


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    if url.startswith("duckdb:///"):  # the duckdb module itself, as constrain does (no duckdb_engine)
        con = need("duckdb").connect(url[len("duckdb:///") :], read_only=True)
        try:
            return [tuple(row) for row in con.execute(query).fetchall()]
        finally:
            con.close()
    sa = need("sqlalchemy")
    eng = engine(url)
    try:
        with eng.connect() as con:
            return [tuple(row) for row in con.execute(sa.text(query))]
    finally:
        eng.dispose()


def bag(result: list[tuple[Any, ...]]) -> collections.Counter[tuple[Any, ...]]:
    """Rows as a multiset, numbers compared as rounded floats (PostgreSQL's avg is a Decimal)."""

    def value(v: Any) -> Any:
        if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
            return round(float(v), 6) if math.isfinite(float(v)) else float(v)
        return v

    return collections.Counter(tuple(value(v) for v in row) for row in result)


@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(f"{request.param}_server")


def test_chinook_is_loaded(server) -> None:  # type: ignore[no-untyped-def]
    table = "album" if server.kind == "postgresql" else "Album"
    assert server.url.startswith(("postgresql://app:", "mysql://app:"))
    assert rows(server.url, f"SELECT count(*) FROM {table}") == [(347,)]


def test_app_user_is_not_a_superuser(server) -> None:  # type: ignore[no-untyped-def]
    if server.kind == "postgresql":
        assert rows(server.url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(False,)]
    else:
        grants = " ".join(r[0] for r in rows(server.url, "SHOW GRANTS"))
        assert "ON *.*" in grants and "ALL PRIVILEGES ON *.*" not in grants and "ALL PRIVILEGES ON `Chinook`.*" in grants


def test_wrong_password_is_an_authentication_error(server) -> None:  # type: ignore[no-untyped-def]
    sa = need("sqlalchemy")
    url = server.url.replace(server.password, "wrong" + server.password)
    with pytest.raises(sa.exc.OperationalError) as caught:
        rows(url, "SELECT 1")
    if server.kind == "postgresql":
        assert "password authentication failed" in str(caught.value)
    else:
        assert caught.value.orig.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


def test_statement_log_records_what_was_sent(server) -> None:  # type: ignore[no-untyped-def]
    marker = f"marker_{secrets.token_hex(6)}"
    assert marker not in server.log_text()
    assert rows(server.url, f"SELECT '{marker}'") == [(marker,)]
    assert f"SELECT '{marker}'" in server.log_text()


def test_admin_sql_returns_text_rows(server) -> None:  # type: ignore[no-untyped-def]
    assert server.admin_sql("SELECT 1, NULL, 'a,b\tc'") == [("1", None, "a,b\tc")]


GOLD = (
    "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id  =  T2.singer_id "
    "JOIN concert AS T3 ON T1.concert_id  =  T3.concert_id WHERE T3.year  =  2014"
)


def _gold() -> tuple[Path, list[tuple[Any, ...]]]:
    """concert_singer and a dev gold query that needs value typing: ``concert.Year`` and
    ``singer_in_concert.Singer_ID`` are declared text (numbers in SQLite) and compared with numbers."""
    questions = json.loads(corpus("spider", "dev_shared.json").read_text())
    assert any(q["db_id"] == "concert_singer" and q["query"] == GOLD for q in questions)
    path = corpus("spider", "database", "concert_singer", "concert_singer.sqlite")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        expected = con.execute(GOLD).fetchall()
    finally:
        con.close()
    assert expected
    return path, expected


def test_copy_sqlite_into_servers(server) -> None:  # type: ignore[no-untyped-def]
    import _dbcopy

    path, expected = _gold()
    # PostgreSQL folds the gold query's unquoted names to lower case: copy with lower-case names there
    url = _dbcopy.copy_sqlite(path, server, lower_names=server.kind == "postgresql")
    assert url == server.url_for("concert_singer")
    assert bag(rows(url, GOLD)) == bag(expected)
    if server.kind == "postgresql":  # exact names (quoted) in another database; types from the values
        exact = _dbcopy.copy_sqlite(path, server, database="concert_singer_exact")
        columns = rows(
            exact,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('concert', 'singer') AND column_name IN ('Year', 'Name', 'Age', 'Stadium_ID')",
        )
        assert sorted(columns) == [
            ("concert", "Stadium_ID", "bigint"),
            ("concert", "Year", "bigint"),
            ("singer", "Age", "bigint"),
            ("singer", "Name", "text"),
        ]
        joined = 'SELECT count(*) FROM singer_in_concert JOIN singer USING ("Singer_ID")'  # text = int in SQLite
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert rows(exact, joined) == con.execute(joined).fetchall() == [(10,)]
        finally:
            con.close()
        keys = rows(exact, "SELECT contype, count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace GROUP BY 1")
        assert dict(keys) == {"p": 4, "f": 3}


def test_copy_sqlite_into_duckdb(tmp_path: Path) -> None:
    import _dbcopy

    need("duckdb")
    path, expected = _gold()
    url = _dbcopy.copy_sqlite(path, f"duckdb:///{tmp_path / 'spider.duckdb'}")
    assert url == f"duckdb:///{tmp_path / 'spider.duckdb'}"
    assert bag(rows(url, GOLD)) == bag(expected)
    assert rows(url, "SELECT data_type FROM information_schema.columns WHERE table_name = 'concert' AND column_name = 'Year'") == [("BIGINT",)]
    # a schema per database in one file, as bench/ does for all of Spider
    _dbcopy.copy_sqlite(path, f"duckdb:///{tmp_path / 'spider.duckdb'}", database="concert_singer")
    assert rows(url, "SELECT count(*) FROM concert_singer.singer") == rows(url, "SELECT count(*) FROM main.singer")


def _sqlite_foreign_keys(path: Path) -> tuple[int, int]:
    """(declared, holding) foreign keys of a SQLite file, from SQLite alone: a key holds when it references
    its table's primary key, that key is unique and non-null in the data, and every value of the key's
    columns with no NULL in it is found in the referenced table."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    q = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")]
        lower = {n.lower(): n for n in names}
        declared = holding = 0
        for name in names:
            keys: dict[int, list[tuple[str, str, str | None]]] = {}
            for fk in con.execute("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) ORDER BY id, seq", (name,)):
                keys.setdefault(fk[0], []).append(fk[1:])
            declared += len(keys)
            for refs in keys.values():
                target = lower.get(refs[0][0].lower())
                if target is None:
                    continue
                pk = [r[0] for r in con.execute("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (target,))]
                theirs = [r[2] or (pk[i] if i < len(pk) else "") for i, r in enumerate(refs)]
                if not pk or sorted(c.lower() for c in theirs) != sorted(c.lower() for c in pk):
                    continue
                cols = ", ".join(map(q, pk))
                broken = con.execute(  # duplicate or NULL primary keys in the referenced table
                    f"SELECT (SELECT count(*) FROM (SELECT 1 FROM {q(target)} GROUP BY {cols} HAVING count(*) > 1)) + "
                    f"(SELECT count(*) FROM {q(target)} WHERE {' OR '.join(f'{q(c)} IS NULL' for c in pk)})"
                ).fetchone()[0]
                mine = [r[1] for r in refs]
                orphans = con.execute(
                    f"SELECT count(*) FROM {q(name)} AS c WHERE {' AND '.join(f'c.{q(m)} IS NOT NULL' for m in mine)} "
                    f"AND NOT EXISTS (SELECT 1 FROM {q(target)} AS p WHERE "
                    f"{' AND '.join(f'p.{q(t)} = c.{q(m)}' for m, t in zip(mine, theirs))})"
                ).fetchone()[0]
                holding += not broken and not orphans
        return declared, holding
    finally:
        con.close()


def _duckdb_keys(url: str, schema: str = "main") -> dict[str, int]:
    return dict(rows(url, f"SELECT constraint_type, count(*) FROM duckdb_constraints() WHERE schema_name = '{schema}' "
                          "AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') GROUP BY 1"))


def test_copy_sqlite_into_duckdb_keeps_foreign_keys(tmp_path: Path) -> None:
    import _dbcopy

    need("duckdb")
    path = corpus("chinook", "Chinook_Sqlite.sqlite")
    assert _sqlite_foreign_keys(path) == (11, 11)
    url = f"duckdb:///{tmp_path / 'chinook.duckdb'}"
    for _ in range(2):  # the second copy replaces the tables (referencing tables dropped first)
        _dbcopy.copy_sqlite(path, url)
        assert _duckdb_keys(url) == {"PRIMARY KEY": 11, "FOREIGN KEY": 11}
    # the self-reference Employee.ReportsTo is kept: its rows were loaded managers first
    assert ("Employee", ["ReportsTo"], "Employee", ["EmployeeId"]) in rows(
        url, "SELECT table_name, constraint_column_names, referenced_table, referenced_column_names "
             "FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'")
    assert rows(url, "SELECT count(*) FROM \"Employee\"") == [(8,)]
    # created in SQLite's order as far as the foreign keys allow (each table after those it references)
    order = [t.name for t in _dbcopy._duckdb_order(_dbcopy._read_sqlite(path))]
    assert order == ["Artist", "Album", "Employee", "Customer", "Genre", "Invoice", "MediaType", "Playlist",
                     "Track", "InvoiceLine", "PlaylistTrack"]


def test_copy_spider_dev_into_duckdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every database of Spider's dev_shared.json in one DuckDB file (a schema each, as bench/ does):
    same row counts as SQLite, and every foreign key that holds in SQLite declared in DuckDB."""
    import time

    import _dbcopy

    need("duckdb")
    questions = json.loads(corpus("spider", "dev_shared.json").read_text())
    dbs = list(dict.fromkeys(q["db_id"] for q in questions))
    assert len(dbs) == 10
    url = f"duckdb:///{tmp_path / 'spider.duckdb'}"
    report = []
    for db in dbs:
        path = corpus("spider", "database", db, f"{db}.sqlite")
        start = time.perf_counter()
        _dbcopy.copy_sqlite(path, url, database=db)
        seconds = time.perf_counter() - start
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")]
            expected = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        finally:
            con.close()
        counts = " UNION ALL ".join(f"SELECT '{n}', count(*) FROM \"{db}\".\"{n}\"" for n in names)
        assert dict(rows(url, counts)) == expected, db
        declared, holding = _sqlite_foreign_keys(path)
        kept = _duckdb_keys(url, db).get("FOREIGN KEY", 0)
        assert kept == holding <= declared, (db, kept, holding, declared)
        report.append(f"{db}: {kept}/{declared} foreign keys kept, {seconds:.2f} s")
    with capsys.disabled():
        print("\n" + "\n".join(report))
