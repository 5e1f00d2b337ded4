"""Reflection at scale: ``Database.schema`` is the catalog only, ``Database.sampled`` reads sample values for
the tables asked, once, and keeps them in memory and on disk; ``use_schemas(["*"])`` reads every schema.

Real engines throughout: SQLite files (their statements seen through the connection's own trace callback),
DuckDB files, and the private PostgreSQL and MariaDB servers of tests/_dbservers.py, whose logs hold every
statement they received (PostgreSQL ``log_statement=all``, MariaDB's general log).
"""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from constrain import sql
from constrain.cli._output import Output
from constrain.errors import InputError
from constrain.sql.ask import _plan


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(folder))
    monkeypatch.delenv("CONSTRAIN_SAMPLE_CACHE_DISK", raising=False)
    return folder


def _sample_files(cache_folder: Path) -> list[Path]:
    return sorted((cache_folder / "sql-samples").glob("*.json"))


def _sqlite_file(path: Path, tables: int = 3) -> Path:
    conn = sqlite3.connect(path)
    for i in range(tables):
        conn.execute(f"CREATE TABLE probe_{i} (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
        conn.executemany(f"INSERT INTO probe_{i} VALUES (?, ?, ?)", [(r, f"name {r} of {i}", r / 4) for r in range(1, 6)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement SQLite runs on a connection opened from now on (its own trace callback)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = sqlite3.connect

    def record(statement: str) -> None:
        with lock:
            seen.append(statement)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.set_trace_callback(record)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    return seen


def _reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT DISTINCT")]


# -- SQLite ----------------------------------------------------------------------------------------
def test_schema_reads_the_catalog_and_no_values(tmp_path: Path, traced: list[str]) -> None:
    with sql.connect(_sqlite_file(tmp_path / "p.sqlite")) as db:
        schema = db.schema
        assert schema.table_names() == ["probe_0", "probe_1", "probe_2"]
        assert all(not c.samples for t in schema.tables for c in t.columns)
        assert _reads(traced) == []


def test_sampled_reads_only_the_tables_asked_then_keeps_them(tmp_path: Path, traced: list[str], cache_folder: Path) -> None:
    with sql.connect(_sqlite_file(tmp_path / "p.sqlite")) as db:
        wanted = [db.schema.table("probe_2"), db.schema.table("probe_0")]
        first = db.sampled(wanted)
        assert [t.name for t in first] == ["probe_2", "probe_0"]  # the order asked
        assert first[0].columns[1].samples == ("name 1 of 2", "name 2 of 2", "name 3 of 2")
        assert first[0].columns[2].samples == (0.25, 0.5, 0.75)
        reads = _reads(traced)
        assert reads and all("probe_1" not in s for s in reads) and len(reads) == 6  # 2 tables x 3 columns
        traced.clear()
        assert db.sampled(wanted) == first and [t.columns[1].samples for t in db.sampled(wanted)] == [t.columns[1].samples for t in first]
        assert traced == []  # memory
    traced.clear()
    with sql.connect(tmp_path / "p.sqlite") as again:  # a new Database: warm from the disk
        warm = again.sampled([again.schema.table("probe_2"), again.schema.table("probe_0")])
        assert [c.samples for t in warm for c in t.columns] == [c.samples for t in first for c in t.columns]
        assert _reads(traced) == []
        traced.clear()
        again.sampled([again.schema.table("probe_1")])  # a table not read before: read, and added to the file
        assert len(_reads(traced)) == 3
    (cache_file,) = _sample_files(cache_folder)
    assert set(json.loads(cache_file.read_text())["tables"]) == {"probe_0", "probe_1", "probe_2"}


def test_lazy_values_give_the_prompt_eager_reading_gave(traced: list[str]) -> None:
    """The prompt of a whole schema is byte for byte what reading every value up front gives."""
    from constrain._databases import resolve_database

    eager = sql.Schema.from_sqlite(resolve_database("chinook"), samples=3)
    assert f":\n\n{eager.describe(keys=True, samples=True)}\n\n" in _plan("?", "chinook", None, 3, True).messages[0].content
    with sql.connect("chinook") as db:
        lazy = dataclasses.replace(db.schema, tables=db.sampled(db.schema.tables))
        assert lazy.describe(keys=True, samples=True) == eager.describe(keys=True, samples=True)


def test_no_samples_reads_nothing(tmp_path: Path, traced: list[str], cache_folder: Path) -> None:
    with sql.connect(_sqlite_file(tmp_path / "p.sqlite"), samples=0) as db:
        tables = db.schema.tables
        traced.clear()
        assert db.sampled(tables) == tables and all(not c.samples for t in db.sampled(tables) for c in t.columns)
        assert traced == [] and not (cache_folder / "sql-samples").exists()


@pytest.mark.parametrize("damage", ["not json", "foreign", "truncated"])
def test_a_damaged_or_foreign_cache_file_is_ignored_and_rewritten(tmp_path: Path, traced: list[str], cache_folder: Path,
                                                                  damage: str) -> None:
    path = _sqlite_file(tmp_path / "p.sqlite")
    with sql.connect(path) as db:
        good = db.sampled(db.schema.tables)
    (cache_file,) = _sample_files(cache_folder)
    text = cache_file.read_text()
    record = json.loads(text)
    if damage == "not json":
        cache_file.write_bytes(b"\x00\xffnot json at all")
    elif damage == "foreign":  # well formed, written for another key, with values that must not be shown
        record["key"] = "0" * 64
        record["tables"]["probe_0"]["name"] = ["FOREIGN"]
        cache_file.write_text(json.dumps(record))
    else:
        cache_file.write_text(text[: len(text) // 2])
    traced.clear()
    with sql.connect(path) as db:
        again = db.sampled(db.schema.tables)
    assert [c.samples for t in again for c in t.columns] == [c.samples for t in good for c in t.columns]
    assert len(_reads(traced)) == 9  # read from the engine
    assert json.loads(cache_file.read_text())["key"] == json.loads(text)["key"]  # rewritten for its own key


def test_the_disk_cache_stays_within_its_byte_bound(tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSTRAIN_SAMPLE_CACHE_DISK", "2500")
    written = []
    for i in range(6):
        with sql.connect(_sqlite_file(tmp_path / f"p{i}.sqlite")) as db:
            db.sampled(db.schema.tables)
        files = _sample_files(cache_folder)
        assert sum(f.stat().st_size for f in files) <= 2500
        written.append(max(files, key=lambda f: f.stat().st_mtime_ns))
        time.sleep(0.01)
    assert written[-1] in _sample_files(cache_folder)  # the newest stays; the least recently used went
    assert len(_sample_files(cache_folder)) < 6


def test_the_cache_key_follows_the_catalog(tmp_path: Path, traced: list[str], cache_folder: Path) -> None:
    path = _sqlite_file(tmp_path / "p.sqlite")
    with sql.connect(path) as db:
        db.sampled([db.schema.table("probe_0")])
    before = _sample_files(cache_folder)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE added (id INTEGER)")
    conn.commit()
    conn.close()
    traced.clear()
    with sql.connect(path) as db:
        db.sampled([db.schema.table("probe_0")])
    assert len(_reads(traced)) == 3  # a new catalog: read again
    after = _sample_files(cache_folder)
    assert len(after) == 2 and set(before) < set(after)


def test_concurrent_calls_read_each_table_once(tmp_path: Path, traced: list[str]) -> None:
    with sql.connect(_sqlite_file(tmp_path / "p.sqlite", tables=8)) as db:
        tables = db.schema.tables
        traced.clear()
        results: list[tuple[Any, ...]] = []
        threads = [threading.Thread(target=lambda: results.append(db.sampled(tables))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(_reads(traced)) == 8 * 3
        assert len({tuple(c.samples for t in r for c in t.columns) for r in results}) == 1


def test_every_schema_of_sqlite_is_its_one_schema(tmp_path: Path) -> None:
    with sql.connect(_sqlite_file(tmp_path / "p.sqlite"), schemas=["*"]) as db:
        assert db.schema.table_names() == ["probe_0", "probe_1", "probe_2"]
    with pytest.raises(InputError, match="no schemas"):
        sql.connect(tmp_path / "p.sqlite", schemas=["other"])


# -- DuckDB ----------------------------------------------------------------------------------------
def test_duckdb_every_schema_and_lazy_values(tmp_path: Path, cache_folder: Path) -> None:
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    path = tmp_path / "wh.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE top (id INT PRIMARY KEY, n VARCHAR)")
    conn.execute("INSERT INTO top VALUES (1, 'one')")
    for schema in ("shop", "hr"):
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.people (id INT PRIMARY KEY, name VARCHAR)")
        conn.execute(f"INSERT INTO {schema}.people VALUES (1, '{schema} person')")
    conn.close()
    with sql.connect(path) as db:
        assert db.schema.table_names() == ["top"]
    with sql.connect(path, schemas=["*"]) as db:
        assert sorted(db.schema.table_names()) == ["hr.people", "shop.people", "top"]
        assert all(not c.samples for t in db.schema.tables for c in t.columns)
        (hr,) = db.sampled([db.schema.table("hr.people")])
        assert hr.columns[1].samples == ("hr person",)
        assert sql.validate("SELECT name FROM shop.people", db=db).run(db).rows == [("shop person",)]
    with sql.connect(path, schemas=["*"]) as db:
        assert db.sampled([db.schema.table("hr.people")])[0].columns[1].samples == ("hr person",)
    assert len(_sample_files(cache_folder)) == 1


# -- PostgreSQL and MariaDB ------------------------------------------------------------------------
_PROBE = {
    "postgres": ("CREATE TABLE probe_a (id int PRIMARY KEY, name text); CREATE TABLE probe_b (id int PRIMARY KEY, "
                 "a_id int REFERENCES probe_a(id), note text);"
                 "INSERT INTO probe_a VALUES (1, 'alpha'), (2, 'beta'); INSERT INTO probe_b VALUES (7, 1, 'gamma');"
                 "GRANT SELECT ON ALL TABLES IN SCHEMA public TO app;"),
    "mysql": ("CREATE TABLE probe_a (id int PRIMARY KEY, name text); CREATE TABLE probe_b (id int PRIMARY KEY, "
              "a_id int REFERENCES probe_a(id), note text);"
              "INSERT INTO probe_a VALUES (1, 'alpha'), (2, 'beta'); INSERT INTO probe_b VALUES (7, 1, 'gamma');"),
}


def _server(request: pytest.FixtureRequest, kind: str) -> Any:
    return request.getfixturevalue("postgres_server" if kind == "postgres" else "mariadb_server")


def _probe_database(server: Any, kind: str, name: str) -> str:
    import _dbservers

    url = _dbservers.create_database(server, name)
    server.admin_sql(_PROBE[kind], database=name)
    return url


def _distinct_reads(server: Any, since: int) -> list[str]:
    text = server.log_text()[since:]
    return [line for line in text.splitlines() if "SELECT DISTINCT" in line and "probe_" in line]


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_servers_read_values_lazily_and_never_cache_a_password(kind: str, request: pytest.FixtureRequest,
                                                               cache_folder: Path) -> None:
    server = _server(request, kind)
    url = _probe_database(server, kind, f"catalog_lazy_{kind}")
    mark = len(server.log_text())
    with sql.connect(url) as db:
        assert db.schema.table_names() == ["probe_a", "probe_b"]
        assert _distinct_reads(server, mark) == []  # the catalog only
        (a,) = db.sampled([db.schema.table("probe_a")])
        assert a.columns[1].samples in (("alpha", "beta"), ("beta", "alpha"))
        reads = _distinct_reads(server, mark)
        assert len(reads) == 2 and all("probe_b" not in line for line in reads)
        mark = len(server.log_text())
        db.sampled([db.schema.table("probe_a")])
        assert _distinct_reads(server, mark) == []
    with sql.connect(url) as db:
        assert db.sampled([db.schema.table("probe_a")])[0].columns[1].samples == a.columns[1].samples
        assert _distinct_reads(server, mark) == []  # warm from the disk
    files = _sample_files(cache_folder)
    assert len(files) == 1
    for file in files:
        assert server.password not in file.name and server.password not in file.read_text()


def test_postgres_cache_key_changes_when_a_table_is_added(postgres_server, cache_folder: Path) -> None:
    url = _probe_database(postgres_server, "postgres", "catalog_key")
    with sql.connect(url) as db:
        db.sampled([db.schema.table("probe_a")])
    postgres_server.admin_sql("CREATE TABLE probe_c (id int); GRANT SELECT ON probe_c TO app;", database="catalog_key")
    mark = len(postgres_server.log_text())
    with sql.connect(url) as db:
        db.sampled([db.schema.table("probe_a")])
    assert len(_distinct_reads(postgres_server, mark)) == 2
    assert len(_sample_files(cache_folder)) == 2


_WAREHOUSE = {
    "postgres": ("CREATE SCHEMA wh_one; CREATE SCHEMA wh_two; CREATE TABLE wh_one.singer (id int, name text);"
                 "CREATE TABLE wh_two.singer (id int, name text); CREATE TABLE wh_two.concert (id int);"
                 "GRANT USAGE ON SCHEMA wh_one, wh_two TO app; GRANT SELECT ON ALL TABLES IN SCHEMA wh_one, wh_two TO app;"),
    "mysql": ("CREATE DATABASE wh_one; CREATE DATABASE wh_two; CREATE TABLE wh_one.singer (id int, name text);"
              "CREATE TABLE wh_two.singer (id int, name text); CREATE TABLE wh_two.concert (id int);"
              "GRANT SELECT ON wh_one.* TO 'app'@'127.0.0.1'; GRANT SELECT ON wh_two.* TO 'app'@'127.0.0.1';"),
}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_every_schema_of_a_server(kind: str, request: pytest.FixtureRequest) -> None:
    server = _server(request, kind)
    server.admin_sql(_WAREHOUSE[kind], database=server.database)
    with sql.connect(server.url, schemas=["*"]) as db:
        names = db.schema.table_names()
    current = [n for n in names if "." not in n]
    assert len(current) == 11  # Chinook, unqualified
    assert {"wh_one.singer", "wh_two.singer", "wh_two.concert"} <= set(names)
    system = ("information_schema.", "pg_catalog.", "mysql.", "performance_schema.", "sys.")
    assert not [n for n in names if n.lower().startswith(system)]


# -- the CLI's notice ------------------------------------------------------------------------------
def test_a_slow_step_is_said_on_stderr_and_a_quick_one_is_not() -> None:
    out = Output(json_mode=True, stdout=io.StringIO(), stderr=io.StringIO())
    with out.when_slow("reading the catalog of x", after=0.05) as done:
        done("3 tables read")
    assert out.stderr.getvalue() == ""  # type: ignore[attr-defined]
    with out.when_slow("reading the catalog of x", after=0.05) as done:
        time.sleep(0.2)
        done("3 tables read")
    said = out.stderr.getvalue()  # type: ignore[attr-defined]
    assert said.startswith("constrain: reading the catalog of x ...\nconstrain: 3 tables read in 0.")
    assert out.stdout.getvalue() == ""  # type: ignore[attr-defined]


# -- MySQL/MariaDB: information_schema in bulk, as the Inspector reads it table by table ---------------
_ODD_TYPES = ("CREATE TABLE odd (bin varchar(10) COLLATE utf8mb4_bin, j json, e enum('a','b'), "
              "u int unsigned zerofill, d datetime(3), s set('x','y'), l varchar(5) CHARACTER SET latin1, "
              "g int, PRIMARY KEY (e, u), CONSTRAINT fk_g FOREIGN KEY (g) REFERENCES Chinook.Album (AlbumId)) COMMENT 'odd one';"
              "CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b));"
              "CREATE TABLE child (x int, y int, z int, FOREIGN KEY (x, y) REFERENCES pair (a, b), FOREIGN KEY (z) REFERENCES odd (g));"
              "CREATE VIEW v_odd AS SELECT bin, l FROM odd;")


def test_mysql_bulk_catalog_matches_the_inspector_in_three_queries(mariadb_server) -> None:
    import sqlalchemy as sa

    from constrain.sql.databases._server import MySQLDatabase, _ServerDatabase

    _dbservers = pytest.importorskip("_dbservers")
    url = _dbservers.create_database(mariadb_server, "catalog_types")
    mariadb_server.admin_sql(_ODD_TYPES, database="catalog_types")
    mariadb_server.admin_sql("GRANT SELECT ON `Chinook`.* TO 'app'@'127.0.0.1';")
    with sql.connect(url, samples=0, schemas=["*"]) as db, db._connection() as conn:
        inspector = sa.inspect(conn)
        current = inspector.default_schema_name
        others = db._wanted_schemas(current, inspector.get_schema_names())
        assert "Chinook" in others
        mark = len(mariadb_server.log_text())
        bulk = MySQLDatabase._read_catalog(db, conn, inspector, current, others)
        sent = [line for line in mariadb_server.log_text()[mark:].splitlines() if " Query\t" in line]
        inspected = _ServerDatabase._read_catalog(db, conn, inspector, current, others)

    def described(tables: Any) -> list[Any]:
        return [(t.key, [(c.name, c.type, c.comment) for c in t.columns], t.primary_key, t.foreign_keys, t.comment)
                for t in tables]

    assert described(bulk) == described(inspected)
    odd = next(t for t in bulk if t.key == "odd")
    assert odd.columns[6].type == "VARCHAR(5) CHARACTER SET latin1 COLLATE latin1_swedish_ci" and odd.comment == "odd one"
    assert odd.foreign_keys == (sql.ForeignKey(("g",), "Album", ("AlbumId",), "Chinook"),)
    assert len(sent) == 3 and not any("SHOW CREATE" in line for line in sent)
