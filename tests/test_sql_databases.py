"""``constrain.sql.connect``: one ``Database`` per engine, against real engines.

PostgreSQL and MariaDB are real servers the tests start themselves (tests/_dbservers.py, Chinook loaded
from the corpus scripts); DuckDB is a real file copied from the Chinook SQLite database; SQLite is the
packaged file. The model's side is the scripted test server (tests/_fault_server.py) speaking the
Responses wire format. Each engine's differences are the data in ``ENGINES``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain import batch, load_grammar, sql
from constrain.batch._state import State
from constrain.errors import DatabaseError, InputError, PolicyError, SchemaError, ValidationError
from constrain.providers import OpenAI


@dataclass(frozen=True)
class Engine:
    name: str
    dialect: str
    album: str  # the Chinook album table, its key and its title column, as this engine's script names them
    album_id: str
    title: str
    artist: str
    quote: str  # the engine's identifier quote
    hostile: tuple[str, ...]  # queries the policy must refuse before they reach the engine
    slow: str  # a query that runs for minutes (MARK is replaced by a unique marker)


_SHARED_HOSTILE = (
    "SELECT * FROM {album} WHERE 'MARK' = 'MARK'; DELETE FROM {album}",
    "DELETE FROM {album} WHERE 'MARK' = 'MARK'",
    "SELECT * FROM {album} WHERE 'MARK' = 'MARK' FOR UPDATE",
)

ENGINES = {
    "postgres": Engine(
        "postgres", "postgres", "album", "album_id", "title", "artist", '"',
        _SHARED_HOSTILE + (
            "SELECT pg_sleep(5), 'MARK'",
            "SELECT pg_read_file('/etc/passwd'), 'MARK'",
            "SELECT lo_import('/etc/passwd'), 'MARK'",
            "SELECT set_config('statement_timeout', '0', false), 'MARK'",
            "SELECT pg_terminate_backend(1), 'MARK'",
            "SELECT nextval('s'), 'MARK'",
            "WITH d AS (DELETE FROM album RETURNING *) SELECT *, 'MARK' FROM d",
            "COPY (SELECT 'MARK') TO '/tmp/x'",
        ),
        "SELECT count(*) FROM track a, track b, track c WHERE 'MARK' = 'MARK'",
    ),
    "mysql": Engine(
        "mysql", "mysql", "Album", "AlbumId", "Title", "Artist", "`",
        _SHARED_HOSTILE + (
            "SELECT SLEEP(5), 'MARK'",
            "SELECT BENCHMARK(100000000, MD5('MARK'))",
            "SELECT LOAD_FILE('/etc/passwd'), 'MARK'",
            "SELECT 'MARK' INTO OUTFILE '/tmp/x'",
            "SELECT 'MARK' INTO DUMPFILE '/tmp/x'",
            "SELECT GET_LOCK('MARK', 10)",
        ),
        "SELECT count(*) FROM Track a, Track b, Track c WHERE 'MARK' = 'MARK'",
    ),
    "duckdb": Engine(
        "duckdb", "duckdb", "Album", "AlbumId", "Title", "Artist", '"',
        _SHARED_HOSTILE + (
            "SELECT * FROM read_csv('/etc/passwd'), (SELECT 'MARK')",
            "SELECT * FROM read_text('/etc/passwd'), (SELECT 'MARK')",
            "SELECT * FROM read_parquet('http://example.com/MARK.parquet')",
            "SELECT * FROM 'MARK.csv'",
            "ATTACH 'MARK.duckdb'",
            "INSTALL httpfs",
            "PRAGMA version",
            "COPY (SELECT 'MARK') TO 'x.csv'",
        ),
        "SELECT count(*) FROM Track a, Track b, Track c, Track d WHERE 'MARK' = 'MARK'",
    ),
    "sqlite": Engine(
        "sqlite", "sqlite", "Album", "AlbumId", "Title", "Artist", '"',
        _SHARED_HOSTILE + ("SELECT load_extension('x'), 'MARK'", "SELECT readfile('/etc/passwd'), 'MARK'"),
        "SELECT count(*) FROM Track a, Track b, Track c, Track d WHERE 'MARK' = 'MARK'",
    ),
}


@pytest.fixture(scope="module")
def duckdb_chinook(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import corpus

    import _dbcopy

    pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    target = tmp_path_factory.mktemp("duckdb") / "chinook.duckdb"
    _dbcopy.copy_sqlite(corpus("chinook", "Chinook_Sqlite.sqlite"), f"duckdb:///{target}")
    return f"duckdb:///{target}"


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> tuple[Engine, str, object]:
    """(the engine's data, its URL, the server or None)."""
    return _engine(request, request.param)


def _engine(request: pytest.FixtureRequest, name: str) -> tuple[Engine, str, object]:
    if name == "postgres":
        server = request.getfixturevalue("postgres_server")
        return ENGINES[name], server.url, server
    if name == "mysql":
        server = request.getfixturevalue("mariadb_server")
        return ENGINES[name], server.url, server
    if name == "duckdb":
        return ENGINES[name], request.getfixturevalue("duckdb_chinook"), None
    return ENGINES[name], "chinook", None


def _provider(url: str) -> OpenAI:
    return OpenAI(base_url=url, model="m", backoff=0.01, max_backoff=0.02)


def _marked(query: str, engine: Engine, marker: str) -> str:
    return re.sub(r"(?<![A-Za-z])MARK(?![A-Za-z])", marker, query.replace("{album}", engine.album))


def test_connect_reads_the_catalog_with_keys_and_samples(engine) -> None:
    data, url, _ = engine
    with sql.connect(url) as db:
        assert db.dialect == data.dialect
        album = db.schema.table(data.album)
        assert album is not None and album.name == data.album
        assert album.primary_key == (data.album_id,)
        assert any(fk.ref_table == data.artist for fk in album.foreign_keys)
        assert all(not c.samples for c in album.columns)  # the catalog only: values are read by `sampled`
        title = next(c for c in db.sampled([album])[0].columns if c.name == data.title)
        assert title.samples and all(isinstance(v, str) for v in title.samples)
        assert len(db.schema.tables) == 11


def test_ask_answers_end_to_end_on_the_engine(engine, served) -> None:
    data, url, _ = engine
    server, model_url = served
    server.inject(output(f"SELECT count(*) FROM {data.album}"), output(f"SELECT COUNT({data.album_id}) FROM {data.album}"))
    answer = sql.ask("How many albums are there?", db=url, provider=_provider(model_url), candidates=2, run=True)
    assert answer.query.dialect == data.dialect
    assert answer.rows is not None and [tuple(int(v) for v in r) for r in answer.rows.rows] == [(347,)]
    assert answer.vote is not None and answer.vote.rule == "unanimous"
    system = server.requests_to("/responses")[0].body["input"][0]["content"]
    assert f"CREATE TABLE {data.album}" in str(system)


def test_validate_ends_with_the_engines_own_compiler(engine) -> None:
    data, url, _ = engine
    with sql.connect(url) as db:
        query = f"SELECT nosuchfn({data.title}) FROM {data.album}"
        with pytest.raises(ValidationError) as caught:
            sql.validate(query, db=db)
        assert caught.value.engine == data.dialect
        assert "nosuchfn" in str(caught.value).lower()


@pytest.mark.parametrize(("name", "hostile"), [(n, q) for n, e in sorted(ENGINES.items()) for q in e.hostile])
def test_each_hostile_form_is_refused_before_it_reaches_the_engine(name: str, hostile: str,
                                                                    request: pytest.FixtureRequest) -> None:
    data, url, server = _engine(request, name)
    marker = f"hostile{int(time.time() * 1000) % 10**9}"
    query = _marked(hostile, data, marker)
    with sql.connect(url, samples=0) as db:
        with pytest.raises(ValidationError) as caught:  # PolicyError, or the grammar itself for non-SELECT text
            sql.validate(query, db=db)
        assert isinstance(caught.value, PolicyError) or caught.value.engine in ("lark", "llguidance", "sqlglot")
        assert db.run(f"SELECT count(*) FROM {data.album}").rows[0][0] == 347
    if server is not None:
        assert marker not in server.log_text()  # the statement log proves it was never sent


def test_the_engine_itself_refuses_writes(engine) -> None:
    """Past the policy: a write sent straight to ``Database.run`` fails on the engine (read-only
    transaction, read-only file, SQLite's authorizer), and nothing changed."""
    data, url, _ = engine
    with sql.connect(url, samples=0) as db:
        for statement in (f"DELETE FROM {data.album}", "CREATE TABLE constrain_probe (a INT)",
                          f"UPDATE {data.album} SET {data.title} = 'x'", f"DROP TABLE {data.artist}",
                          f"COMMIT; DELETE FROM {data.album}"):
            with pytest.raises(ValidationError):
                db.run(statement)
        assert db.run(f"SELECT count(*) FROM {data.album}").rows[0][0] == 347
        assert db.run(f"SELECT count(*) FROM {data.album} WHERE {data.title} = 'x'").rows[0][0] == 0
    with sql.connect(url, samples=0) as db:
        assert db.schema.table("constrain_probe") is None and db.schema.table(data.artist) is not None


_ACTIVE = {
    "postgres": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' "
                "AND pid <> pg_backend_pid()",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%{marker}%' AND id <> connection_id()",
}


def test_a_slow_query_is_cancelled_on_the_engine(engine) -> None:
    data, url, server = engine
    marker = f"slow{int(time.time() * 1000) % 10**9}"
    with sql.connect(url, samples=0) as db:
        started = time.monotonic()
        with pytest.raises(PolicyError) as caught:
            db.run(_marked(data.slow, data, marker), seconds=1.0)
        assert caught.value.rule == "timeout"
        assert time.monotonic() - started < 10
        assert db.run(f"SELECT count(*) FROM {data.album}").rows[0][0] == 347  # the connection is usable again
    if server is not None:
        probe = _ACTIVE[data.dialect].replace("{marker}", marker)
        deadline = time.monotonic() + 5
        while int(server.admin_sql(probe, database=server.database)[0][0] or 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert int(server.admin_sql(probe, database=server.database)[0][0] or 0) == 0  # no backend still runs it


def test_a_timed_out_candidate_is_fed_back_like_any_error(engine, served) -> None:
    data, url, _ = engine
    server, model_url = served
    server.inject(output(_marked(data.slow, data, "fedback")), output(f"SELECT count(*) FROM {data.album}"))
    answer = sql.ask("How many albums?", db=url, provider=_provider(model_url), candidates=1, run=True,
                     query_seconds=1.0)
    assert [tuple(int(v) for v in r) for r in answer.rows.rows] == [(347,)]
    first = answer.result.attempts[0]
    assert isinstance(first.error, PolicyError) and first.error.rule == "timeout"
    second_prompt = json.dumps(server.requests_to("/responses")[1].body)
    assert "longer than 1.0 s" in second_prompt


# -- connections: passwords, hosts, drivers ------------------------------------------------------
@pytest.fixture(params=["postgres", "mysql"])
def server_engine(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.getfixturevalue("postgres_server" if request.param == "postgres" else "mariadb_server")


def test_a_wrong_password_is_a_typed_error_that_never_shows_a_password(server_engine) -> None:
    wrong = server_engine.url.replace(server_engine.password, "WrongSecret123", 1)
    db = sql.connect(wrong)
    for shown in (repr(db), db.url, str(db)):
        assert "WrongSecret123" not in shown and server_engine.password not in shown
    with pytest.raises(DatabaseError) as caught:
        db.schema
    assert caught.value.reason == "authentication"
    assert "WrongSecret123" not in str(caught.value)
    assert "denied" in str(caught.value).lower() or "authentication failed" in str(caught.value).lower()


def test_the_cli_never_prints_the_password(server_engine, served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, model_url = served
    table = "album" if server_engine.kind == "postgresql" else "Album"
    server.inject(output(f"SELECT nosuch FROM {table}"), output(f"SELECT count(*) FROM {table}"))
    code = main(["sql", "How many albums?", "--db", server_engine.url, "--provider", "openai", "--base-url", model_url,
                 "--model", "m", "--candidates", "1", "--run", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert server_engine.password not in captured.out + captured.err
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["rows"]["rows"] == [[347]]
    wrong = server_engine.url.replace(server_engine.password, "AnotherWrong456", 1)
    code = main(["sql-grammar", "--db", wrong, "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "AnotherWrong456" not in captured.out + captured.err
    assert json.loads(captured.out)["error"]["type"] == "DatabaseError"


def test_an_unreachable_host_is_an_error_within_the_connect_timeout() -> None:
    silent = socket.socket()  # accepts connections and never answers: the driver waits for its timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        for scheme in ("postgresql", "mysql"):
            started = time.monotonic()
            with pytest.raises(DatabaseError) as caught:
                sql.connect(f"{scheme}://u:TopSecret99@127.0.0.1:{port}/db", connect_seconds=1).schema
            assert caught.value.reason == "connection"
            assert time.monotonic() - started < 8
            assert "TopSecret99" not in str(caught.value)
    finally:
        silent.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with pytest.raises(DatabaseError, match="cannot connect"):
        sql.connect(f"postgresql://u:pw@127.0.0.1:{port}/db").schema


def test_a_missing_driver_names_the_extra_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        sql.connect("postgresql+pg8000://u:SecretPw1@127.0.0.1:1/db")
    assert caught.value.reason == "driver" and "constrain-cfg[postgres]" in str(caught.value)
    assert "SecretPw1" not in str(caught.value)
    # the plain scheme picks the project's driver; without it, the error names the extra (in a fresh
    # interpreter where importing the driver fails, as on a machine without the extra)
    script = ("import sys; sys.modules['pymysql'] = None\n"
              "from constrain import sql\n"
              "try:\n    sql.connect('mysql://u:pw@127.0.0.1:1/db')\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc.reason, exc)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60).stdout
    assert out.startswith("DatabaseError driver") and 'constrain-cfg[mysql]' in out
    with pytest.raises(InputError, match="unsupported database scheme"):
        sql.connect("oracle://u:pw@h/db")


def test_an_application_engine_is_used_as_it_is(postgres_server) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_server.url.replace("postgresql://", "postgresql+psycopg://", 1))
    db = sql.connect(engine)
    assert db.dialect == "postgres" and postgres_server.password not in repr(db)
    assert sql.validate("SELECT count(*) FROM album", db=db).run(db).rows == [(347,)]
    db.close()  # the application's engine is not disposed
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


# -- names as real schemas hold them ---------------------------------------------------------------
_ODD_TABLES = {
    "postgres": ('CREATE TABLE "Odd Name" ("Mixed Case" int, "naïve col" text, "select" int);\n'
                 "INSERT INTO \"Odd Name\" VALUES (1, 'café', 7), (2, 'thé', 8);\n"
                 'GRANT ALL ON "Odd Name" TO app;'),
    "mysql": ("CREATE TABLE `Odd Name` (`Mixed Case` int, `naïve col` text, `select` int);\n"
              "INSERT INTO `Odd Name` VALUES (1, 'café', 7), (2, 'thé', 8);"),
}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_odd_names_quoted_mixed_case_and_non_ascii(kind: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("postgres_server" if kind == "postgres" else "mariadb_server")
    server.admin_sql(_ODD_TABLES[kind], database=server.database)
    q = '"' if kind == "postgres" else "`"
    try:
        with sql.connect(server.url) as db:
            table = db.schema.table("Odd Name")
            assert table is not None and table.column_names() == ["Mixed Case", "naïve col", "select"]
            query = sql.validate(f"SELECT {q}Mixed Case{q}, {q}naïve col{q} FROM {q}Odd Name{q} WHERE {q}select{q} = 8", db=db)
            assert query.run(db).rows == [(2, "thé")]
            assert f"CREATE TABLE {q}Odd Name{q}" in db.schema.describe(keys=True, samples=True)
    finally:
        drop = 'DROP TABLE "Odd Name";' if kind == "postgres" else "DROP TABLE `Odd Name`;"
        server.admin_sql(drop, database=server.database)


def test_pgpassword_from_the_environment_is_never_shown(postgres_server, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = postgres_server.url.replace(f":{postgres_server.password}@", "@", 1).replace("%", "%%")
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    with sql.connect(bare) as db:
        assert db.run("SELECT count(*) FROM album").rows == [(347,)]
        with pytest.raises(ValidationError) as caught:
            db.run(f"SELECT '{postgres_server.password}'::int")
        assert postgres_server.password not in str(caught.value.reason)


def test_sqlite_and_duckdb_urls_and_paths_open_their_engines(duckdb_chinook: str, tmp_path: Path) -> None:
    from conftest import corpus

    path = str(corpus("chinook", "Chinook_Sqlite.sqlite"))
    for spec in (path, f"sqlite:///{path}"):
        with sql.connect(spec) as db:
            assert db.dialect == "sqlite" and db.run("SELECT count(*) FROM Album").rows == [(347,)]
    file = duckdb_chinook.removeprefix("duckdb:///")
    for spec in (duckdb_chinook, file):
        with sql.connect(spec) as db:
            assert db.dialect == "duckdb" and db.run("SELECT count(*) FROM Album").rows == [(347,)]
    with pytest.raises(InputError, match="no such DuckDB"):
        sql.connect(str(tmp_path / "missing.duckdb"))


def test_the_duckdb_catalog_gives_keys_comments_and_views(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    path = tmp_path / "keys.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE a (id INT PRIMARY KEY, n VARCHAR)")
    conn.execute('CREATE TABLE "B b" (id INT PRIMARY KEY, a_id INT REFERENCES a(id))')
    conn.execute("COMMENT ON TABLE a IS 'the a table'")
    conn.execute("COMMENT ON COLUMN a.n IS 'its name'")
    conn.execute("CREATE VIEW v AS SELECT n FROM a")
    conn.execute("INSERT INTO a VALUES (1, 'one'), (2, 'two')")
    conn.close()
    with sql.connect(path) as db:
        schema = db.schema
        assert schema.table_names() == ["a", "B b", "v"]
        assert schema.table("B b").foreign_keys == (sql.ForeignKey(("a_id",), "a", ("id",)),)
        assert schema.table("a").comment == "the a table"
        text = dataclasses.replace(schema, tables=db.sampled(schema.tables)).describe(keys=True, samples=True)
        assert "-- the a table" in text and "-- its name; e.g. 'one'\n" in text
        assert sql.validate('SELECT n FROM v', db=db).run(db).rows == [("one",), ("two",)]


def test_percent_signs_reach_the_engine_as_written(engine) -> None:
    """psycopg and PyMySQL read ``%`` as a placeholder unless it is escaped for them."""
    data, url, _ = engine
    with sql.connect(url, samples=0) as db:
        query = sql.validate(f"SELECT {data.title}, 7 % 4 FROM {data.album} WHERE {data.title} LIKE '%%Rock%' "
                             f"ORDER BY {data.title}", db=db)
        rows = query.run(db).rows
        assert rows and all("Rock" in title and int(rest) == 3 for title, rest in rows)


# the JSON arrows, as each engine spells a JSON value built from a column (MariaDB has no arrows: its own refusal)
_ARROWS = {
    "postgres": "SELECT json_build_object('t', title)->>'t', json_build_object('t', title)->'t' FROM album WHERE album_id = 1",
    "mysql": "SELECT JSON_OBJECT('t', Title)->>'$.t' FROM Album WHERE AlbumId = 1",
    "duckdb": "SELECT json_object('t', Title)->>'$.t', json_object('t', Title)->'$.t' FROM Album WHERE AlbumId = 1",
    "sqlite": "SELECT json_object('t', Title)->>'$.t', json_object('t', Title)->'$.t' FROM Album WHERE AlbumId = 1",
}


def test_json_arrows_are_writable_and_the_engine_judges_them(engine) -> None:
    """``->`` / ``->>`` are in every dialect's grammar (MySQL, PostgreSQL, DuckDB and SQLite run them): the
    grammar never makes them unwritable, and the engine's own compiler is the judge."""
    data, url, _ = engine
    query_text = _ARROWS[data.name]
    load_grammar(f"sql/{data.dialect}").validate(query_text)  # lark and llguidance both
    with sql.connect(url, samples=0) as db:
        try:
            query = sql.validate(query_text, db=db)
        except ValidationError as exc:  # MariaDB: no JSON arrows; its own message, located in the query
            assert data.name == "mysql" and "->>" in query_text and "syntax" in str(exc).lower(), exc
            return
        row = query.run(db).rows[0]
        assert row[0] == "For Those About To Rock We Salute You"


# -- schemas other than the current one -----------------------------------------------------------
_SALES = {
    "postgres": ("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY, total numeric(8,2));"
                 "CREATE TABLE sales.items (id int, order_id int REFERENCES sales.orders(id));"
                 "INSERT INTO sales.orders VALUES (1, 9.50), (2, 3.00); INSERT INTO sales.items VALUES (10, 1);"
                 "GRANT USAGE ON SCHEMA sales TO app; GRANT SELECT ON ALL TABLES IN SCHEMA sales TO app;",
                 "DROP SCHEMA sales CASCADE;"),
    "mysql": ("CREATE DATABASE sales; CREATE TABLE sales.orders (id int PRIMARY KEY, total decimal(8,2));"
              "CREATE TABLE sales.items (id int, order_id int REFERENCES sales.orders(id));"
              "INSERT INTO sales.orders VALUES (1, 9.50), (2, 3.00); INSERT INTO sales.items VALUES (10, 1);"
              "GRANT SELECT ON sales.* TO 'app'@'127.0.0.1';",
              "DROP DATABASE sales;"),
}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_tables_of_another_schema_are_read_when_asked(kind: str, request: pytest.FixtureRequest, served,
                                                     tmp_path: Path) -> None:
    server = request.getfixturevalue("postgres_server" if kind == "postgres" else "mariadb_server")
    create, drop = _SALES[kind]
    server.admin_sql(create, database=server.database)
    try:
        with sql.connect(server.url, samples=0) as db:
            assert "sales.orders" not in db.schema.table_names()  # only the current schema by default
        with sql.connect(server.url, schemas=["sales"]) as db:
            names = db.schema.table_names()
            assert {"sales.orders", "sales.items"} <= set(names) and len(names) == 13
            assert "CREATE TABLE sales.orders (" in db.schema.describe(keys=True)
            query = sql.validate("SELECT o.total FROM sales.items AS l JOIN sales.orders AS o ON l.order_id = o.id", db=db)
            assert query.tables == ("sales.items", "sales.orders") and float(query.run(db).rows[0][0]) == 9.5
            with pytest.raises(SchemaError) as caught:
                sql.validate("SELECT total FROM orders", db=db)
            assert "sales.orders" in caught.value.suggestions
        model, model_url = served
        model.inject(output("SELECT sum(total) FROM sales.orders"))
        answer = sql.ask("What do the orders total?", db=server.url, schemas=["sales"], provider=_provider(model_url),
                         candidates=1, run=True)
        assert float(answer.rows.rows[0][0]) == 12.5
        # a batch reads the same schema (--sql-schema), and its stored pipeline remembers it for `collect`
        from constrain.cli import main

        source, out = tmp_path / "in.jsonl", tmp_path / "out"
        source.write_text(json.dumps({"id": "1", "prompt": "What do the orders total?"}) + "\n")
        model.inject(output("SELECT sum(o.total) FROM sales.orders AS o"))
        code = main(["batch", "run", str(source), "--sql-db", server.url, "--sql-schema", "sales", "-o", str(out),
                     "--provider", "openai", "--base-url", model_url, "--json"])
        assert code == 0
        result = json.loads((out / "results.jsonl").read_text())
        assert result["value"]["tables"] == ["sales.orders"]
        assert "CREATE TABLE sales.orders" in model.requests_to("/responses")[-1].body["input"][0]["content"]
        with State(out) as state:
            stored = json.loads(state.get("constraint") or "{}")
        assert stored["schemas"] == ["sales"] and server.password not in json.dumps(stored)
        with pytest.raises(InputError, match="sql_db"):
            batch.pipeline(grammar="json", sql_schemas=["sales"])
    finally:
        server.admin_sql(drop, database=server.database)


def test_postgres_reads_an_unquoted_mixed_case_name_as_the_catalog_spells_it(postgres_server) -> None:
    """PostgreSQL folds ``Name`` to ``name``: a column the catalog spells ``"Name"`` is what the writer meant."""
    postgres_server.admin_sql('CREATE TABLE "Stadium" ("Stadium_ID" int, "Name" text, capacity int);'
                              "INSERT INTO \"Stadium\" VALUES (1, 'Hampden', 52000), (2, 'Ibrox', 50000);"
                              'GRANT SELECT ON "Stadium" TO app;', database=postgres_server.database)
    try:
        with sql.connect(postgres_server.url, samples=0) as db:
            query = sql.validate("SELECT Stadium.Name FROM Stadium WHERE capacity > 51000 ORDER BY Name", db=db)
            assert query.text == 'SELECT "Stadium"."Name" FROM "Stadium" WHERE capacity > 51000 ORDER BY "Name"'
            assert any("folds unquoted names" in r for r in query.rewrites)
            assert query.run(db).rows == [("Hampden",)]
            assert sql.validate('SELECT "Stadium"."Name" FROM "Stadium"', db=db).rewrites == ()
    finally:
        postgres_server.admin_sql('DROP TABLE "Stadium";', database=postgres_server.database)


# -- the embedded model on each engine --------------------------------------------------------------
@pytest.mark.local_model
@pytest.mark.parametrize("name", sorted(ENGINES))
def test_the_embedded_model_answers_on_each_engine(name: str, request: pytest.FixtureRequest) -> None:
    """A real question, the real model, the engine's dialect, grammar and prompt: the answer is the right
    count, checked by its rows on the engine."""
    from test_local_model import _require_local_model

    _require_local_model()
    data, url, _ = _engine(request, name)
    answer = sql.ask("How many albums are there?", db=url, provider="local", candidates=1, run=True, max_tokens=64)
    assert answer.query.dialect == data.dialect and data.album.lower() in answer.sql.lower()
    assert [tuple(int(v) for v in r) for r in answer.rows.rows] == [(347,)]


def test_the_playground_opens_a_server_database_without_its_password(postgres_server) -> None:
    from constrain.playground import Playground

    with Playground(db=postgres_server.url, workers=1) as playground:
        info = playground.info()
        assert postgres_server.password not in json.dumps(info)
        assert info["database"]["dialect"] == "postgres" and "***" in info["database"]["url"]
        assert info["initial"]["name"] == "sql/postgres" and "CREATE TABLE album (" in info["database"]["ddl"]
        status, body = playground.call("check", {"grammar": info["initial"]["text"], "text": "SELECT title FROM album",
                                                 "origin": info["initial"]["origin"]})
        assert status == 200, body


def test_a_sql_batch_on_a_server_never_stores_its_password(postgres_server, served, tmp_path: Path) -> None:
    from constrain import run_batch

    model, model_url = served
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "prompt": f"question {i}"}) + "\n" for i in range(6)))
    out = tmp_path / "out"
    summary = run_batch(source, out, sql_db=postgres_server.url, provider="openai", base_url=model_url, progress=False)
    assert summary.exactly_once and summary.counts.total == 6
    sent = model.requests_to("/responses")[-1].body
    assert "CREATE TABLE album" in sent["input"][0]["content"]
    stored = b"".join(path.read_bytes() for path in out.rglob("*") if path.is_file())
    assert postgres_server.password.encode() not in stored and b"***@127.0.0.1" in stored


def test_mysql_columns_in_any_case_validate_as_mariadb_runs_them(mariadb_server) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    db = sql.connect(mariadb_server.url)
    words = ["AlbumId", "Title", "ArtistId", "Name"]
    reference = ("SELECT a.AlbumId, a.Title, r.Name FROM Album AS a JOIN Artist AS r ON a.ArtistId = r.ArtistId "
                 "WHERE a.Title LIKE 'B%' ORDER BY a.AlbumId")
    expected = db.run(reference).rows
    assert expected

    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(st.lists(st.booleans(), min_size=40, max_size=40))
    def recased(flips: list[bool]) -> None:
        spelt = iter(flips)
        text = reference
        for word in words:  # every column in a case the catalog does not hold; the tables keep theirs
            text = re.sub(rf"(?<=\.){word}\b", lambda m: "".join(
                c.swapcase() if next(spelt, False) else c for c in m.group(0)), text)
        assert sql.validate(text, db=db).run(db).rows == expected

    try:
        recased()
        with pytest.raises(SchemaError):  # a table in another case is another file on this server
            sql.validate("SELECT title FROM ALBUM", db=db)
    finally:
        db.close()


def test_duckdb_quotes_every_word_duckdb_refuses_as_a_bare_name() -> None:
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    from constrain.sql._dialects import get_dialect

    dialect = get_dialect("duckdb")
    conn = duckdb.connect()
    unquoted: list[str] = []
    for (word,) in conn.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall():
        conn.execute(f'CREATE OR REPLACE TABLE "{word}" ("{word}" int)')
        try:
            conn.execute(f"SELECT {word} FROM {word}").fetchall()
        except duckdb.Error:
            if not dialect.needs_quotes(word):
                unquoted.append(word)
        # quoted as the dialect quotes it, every keyword is a name DuckDB reads
        conn.execute(f"SELECT {dialect.quote(word)} FROM {dialect.quote(word)}").fetchall()
        conn.execute(f'DROP TABLE "{word}"')
    assert unquoted == []


def test_a_table_named_by_a_reserved_word_is_writable_bare_and_runs_quoted(tmp_path: Path) -> None:
    """Models write DuckDB's ``show`` or MySQL's ``match`` bare (FROM show) even when the prompt quotes it;
    refused by the grammar, a 0.5B model wrote ``showff`` instead. The schema-bound grammar admits each
    such catalog name bare in both engines, ``validate`` quotes it (recording the rewrite), and the query
    runs on a real DuckDB database holding the table."""
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    from constrain.sql._dialects import get_dialect
    from constrain.sql.grammar import bare_reserved_tables

    for name in ("duckdb", "mysql"):
        dialect = get_dialect(name)
        reserved = sorted(dialect.reserved - dialect.grammar_keywords - dialect.value_words)
        schema = sql.Schema.from_ddl("; ".join(f"CREATE TABLE {dialect.quote(w)} (n INT)" for w in reserved), name)
        words = sorted(bare_reserved_tables(dialect, [t.name for t in schema.tables]))
        assert "show" in words and len(words) >= len(reserved) // 2, (len(words), len(reserved))
        bound = sql.grammar(name, schema)
        for word in words:
            query = f"SELECT {word}.n FROM {word} WHERE {word}.n > 0"
            bound.validate(query)  # lark and llguidance
            checked = sql.validate(query, dialect=name, schema=schema)
            assert checked.rewrites == (f"unquoted {word} read as {dialect.quote(word)} (a reserved word in {name})",)
            assert f"FROM {dialect.quote(word)}" in checked.text
        with pytest.raises(ValidationError):  # an unbound grammar, or a word no table is named, stays refused
            sql.grammar(name).validate(f"SELECT n FROM {words[0]}")
    path = tmp_path / "reserved.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute('CREATE TABLE "show" (show_id INT, attendance INT)')
    conn.execute('INSERT INTO "show" VALUES (1, 100), (2, 300)')
    conn.close()
    with sql.connect(str(path)) as db:
        checked = sql.validate("SELECT AVG(attendance) FROM show", dialect="duckdb", db=db)
        assert checked.text == 'SELECT AVG(attendance) FROM "show"'
        assert list(db.run(checked.text).rows) == [(200.0,)]
