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
    import _dbservers

    path, expected = _gold()
    # PostgreSQL folds the gold query's unquoted names to lower case: copy with lower-case names there
    url = _dbservers.copy_sqlite(path, server, lower_names=server.kind == "postgresql")
    assert url == server.url_for("concert_singer")
    assert bag(rows(url, GOLD)) == bag(expected)
    if server.kind == "postgresql":  # exact names (quoted) in another database; types from the values
        exact = _dbservers.copy_sqlite(path, server, database="concert_singer_exact")
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
    import _dbservers

    need("duckdb")
    path, expected = _gold()
    url = _dbservers.copy_sqlite(path, f"duckdb:///{tmp_path / 'spider.duckdb'}")
    assert url == f"duckdb:///{tmp_path / 'spider.duckdb'}"
    assert bag(rows(url, GOLD)) == bag(expected)
    assert rows(url, "SELECT data_type FROM information_schema.columns WHERE table_name = 'concert' AND column_name = 'Year'") == [("BIGINT",)]
    # a schema per database in one file, as bench/ does for all of Spider
    _dbservers.copy_sqlite(path, f"duckdb:///{tmp_path / 'spider.duckdb'}", database="concert_singer")
    assert rows(url, "SELECT count(*) FROM concert_singer.singer") == rows(url, "SELECT count(*) FROM main.singer")
