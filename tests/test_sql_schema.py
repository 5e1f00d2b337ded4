"""Schema loading: live SQLite files (read-only), CREATE TABLE DDL, plain dicts; lookup and description."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot.optimizer.qualify import qualify

from conftest import corpus
from constrain.errors import InputError
from constrain.sql import Column, Schema, Table


def _make_db(path: Path, ddl: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.close()
    return path


def test_from_sqlite_reads_every_table_and_column_in_catalog_order() -> None:
    path = corpus("chinook", "Chinook_Sqlite.sqlite")
    schema = Schema.from_sqlite(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    expected = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY rowid")]
    assert schema.table_names() == expected
    for table in schema.tables:
        info = conn.execute(f'PRAGMA table_info("{table.name}")').fetchall()
        assert [(c.name, c.type) for c in table.columns] == [(r[1], r[2]) for r in info]
    conn.close()
    assert schema.dialect == "sqlite"


def test_from_sqlite_includes_views_and_skips_internal_tables(tmp_path: Path) -> None:
    db = _make_db(tmp_path / "v.sqlite", """
        CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        CREATE VIEW v AS SELECT name FROM t;
        INSERT INTO t (name) VALUES ('x');
    """)
    schema = Schema.from_sqlite(db)
    assert schema.table_names() == ["t", "v"]  # sqlite_sequence is internal
    assert schema.table("v") == Table("v", (Column("name", "TEXT"),))


def test_from_sqlite_never_writes(tmp_path: Path) -> None:
    db = _make_db(tmp_path / "ro.sqlite", "CREATE TABLE t (a INT);")
    before = db.read_bytes()
    mtime = db.stat().st_mtime_ns
    Schema.from_sqlite(db)
    assert db.read_bytes() == before and db.stat().st_mtime_ns == mtime
    assert not (tmp_path / "ro.sqlite-journal").exists()


@pytest.mark.parametrize("content", [None, b"", b"this is not a database at all, just text" * 100])
def test_from_sqlite_refuses_missing_or_non_sqlite_files(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "x.sqlite"
    if content is not None:
        path.write_bytes(content)
    if content == b"":
        # an empty file is a valid empty database for SQLite: zero tables, which is what we report
        assert Schema.from_sqlite(path).tables == ()
        return
    with pytest.raises(InputError) as info:
        Schema.from_sqlite(path)
    assert str(path) in str(info.value)


def test_from_ddl_reads_the_chinook_postgres_script_with_other_statements_skipped() -> None:
    text = corpus("chinook", "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    pg = Schema.from_ddl(text, "postgres")
    lite = Schema.from_sqlite(corpus("chinook", "Chinook_Sqlite.sqlite"))
    assert len(pg.tables) == len(lite.tables)
    for table in lite.tables:
        # the postgres script spells CamelCase names in snake_case: invoice_line for InvoiceLine
        snake = "".join("_" + c.lower() if c.isupper() else c for c in table.name).lstrip("_")
        other = pg.table(snake)
        assert other is not None, snake
        assert len(other.columns) == len(table.columns)
    assert pg.dialect == "postgres"


def test_from_ddl_refuses_text_without_create_table_and_broken_create_table() -> None:
    with pytest.raises(InputError, match="no CREATE TABLE"):
        Schema.from_ddl("SELECT 1; INSERT INTO t VALUES (1);", "sqlite")
    with pytest.raises(InputError, match="line 2, column 2[0-9]"):
        Schema.from_ddl("CREATE TABLE a (x INT);\nCREATE TABLE b (x INT));", "sqlite")


def test_from_dict_and_lookup_follow_the_dialects_case_rules() -> None:
    mapping = {"Album": {"AlbumId": "INTEGER", "Title": "TEXT"}, "artist": ["ArtistId", "Name"]}
    lite = Schema.from_dict(mapping, "sqlite")
    assert lite.table("ALBUM") is lite.table("album") is lite.tables[0]
    assert lite.table("Artist") is lite.tables[1]
    assert lite.tables[1].columns[0] == Column("ArtistId", "")
    pg = Schema.from_dict(mapping, "postgres")
    assert pg.table("Album") is pg.tables[0]
    assert pg.table("album") is None  # unquoted album folds to album; the catalog name is "Album"
    assert pg.table("ARTIST") is pg.tables[1]  # folds to artist
    with pytest.raises(InputError):
        Schema.from_dict({"t": "not columns"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="unknown SQL dialect"):
        Schema.from_dict(mapping, "oracle")
    with pytest.raises(InputError, match="'empty' has no columns"):
        Schema.from_dict({"empty": [], "t": ["a"]})  # no SQL table has zero columns


def test_sqlglot_mapping_qualifies_real_queries() -> None:
    schema = Schema.from_sqlite(corpus("chinook", "Chinook_Sqlite.sqlite"))
    mapping = schema.to_sqlglot_mapping()
    expr = sqlglot.parse_one("SELECT Title FROM Album WHERE ArtistId = 1", read="sqlite")
    qualified = qualify(expr, schema=mapping, dialect="sqlite", validate_qualify_columns=True)
    assert "album.title" in qualified.sql("sqlite").lower().replace('"', "")
    with pytest.raises(sqlglot.errors.OptimizeError):
        qualify(sqlglot.parse_one("SELECT Nme FROM Album", read="sqlite"), schema=mapping,
                dialect="sqlite", validate_qualify_columns=True)


_names = st.text(alphabet=st.sampled_from("abcXYZ_ 9-\"é"), min_size=1, max_size=12).filter(lambda s: s.strip())


@settings(max_examples=60, deadline=None)
@given(
    tables=st.dictionaries(_names, st.dictionaries(_names, st.sampled_from(["INTEGER", "TEXT", "REAL", ""]),
                                                   min_size=1, max_size=4), min_size=1, max_size=4),
    dialect=st.sampled_from(["sqlite", "postgres", "duckdb"]),
)
def test_describe_reads_back_as_the_same_schema(tables: dict, dialect: str) -> None:
    """describe() quotes exactly the names that need it: reading its DDL back gives the same schema."""
    schema = Schema.from_dict(tables, dialect)
    again = Schema.from_ddl(schema.describe(), dialect)
    assert again.table_names() == schema.table_names()
    for a, b in zip(again.tables, schema.tables):
        assert [c.name for c in a.columns] == [c.name for c in b.columns]


def test_every_spider_database_loads() -> None:
    root = corpus("spider", "database")
    paths = sorted(root.glob("*/*.sqlite"))
    assert len(paths) > 150
    for path in paths:
        schema = Schema.from_sqlite(path)
        assert schema.tables, path
        assert all(t.columns for t in schema.tables), path


def test_a_view_over_a_dropped_table_is_left_out_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE a (x); CREATE VIEW v AS SELECT x FROM a; CREATE TABLE b (y); DROP TABLE a;")
    conn.close()
    with pytest.warns(UserWarning, match="'v' cannot be read"):
        schema = Schema.from_sqlite(path)
    assert [t.name for t in schema.tables] == ["b"]

