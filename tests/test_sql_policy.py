"""The read-only policy: hostile inputs refused by every wall, and each wall standing on its own.

tests/data/hostile_sql.tsv lists the hostile inputs with the policy rule expected to refuse each when
the policy runs alone. The full pipeline (``validate``: grammar, sqlglot, policy) must refuse every one
too, and the tests report which layer did. SQLite's authorizer, installed by ``SQLQuery.run``, is the
third wall: run directly, without ``validate``, it still refuses writes, PRAGMAs and denied functions.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from conftest import corpus
from constrain.errors import PolicyError, ValidationError
from constrain.sql import Policy, SQLQuery, validate
from constrain.sql.policy import DIALECT_RULES, RULES

HOSTILE_FILE = Path(__file__).parent / "data" / "hostile_sql.tsv"
_REPEAT = re.compile(r"<<(\d+)\*(.*?)>>")
ALLOWLIST = frozenset({"Artist", "Album", "artist", "album"})
HOSTILE_POLICY = Policy(tables=ALLOWLIST)


def load_hostile() -> list[tuple[int, str, str, str]]:
    cases = []
    for number, line in enumerate(HOSTILE_FILE.read_text(encoding="ascii").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        dialect, rule, raw = line.split("\t", 2)
        expanded = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), raw)
        cases.append((number, dialect, rule, expanded.encode("ascii").decode("unicode_escape")))
    return cases


HOSTILE = load_hostile()
HOSTILE_IDS = [f"line{n}-{d}-{r}" for n, d, r, _ in HOSTILE]


def refusal_layer(exc: ValidationError) -> str:
    if isinstance(exc, PolicyError):
        return f"policy:{exc.rule}"
    return {"lark": "grammar", "llguidance": "grammar"}.get(exc.engine or "", exc.engine or type(exc).__name__)


def test_hostile_file_is_large_and_covers_every_category() -> None:
    assert len(HOSTILE) >= 100
    rules = {rule for _, _, rule, _ in HOSTILE}
    assert rules - {"sqlglot"} <= set(RULES)
    expected = {"single_statement", "comment", "statement_type", "write", "function", "system_table", "non_ascii",
                "control_character", "literal_size", "length", "recursive_cte", "file_access", "table_allowlist",
                "nesting"}
    assert expected <= rules
    assert {d for _, d, _, _ in HOSTILE} == {"sqlite", "postgres", "duckdb"}


@pytest.mark.parametrize(("number", "dialect", "rule", "sql"), HOSTILE, ids=HOSTILE_IDS)
def test_policy_alone_refuses_with_the_expected_rule(number: int, dialect: str, rule: str, sql: str) -> None:
    """The second wall by itself: sqlglot parses, the policy decides (no grammar involved)."""
    with pytest.raises(ValidationError) as info:
        HOSTILE_POLICY.enforce(sql, dialect)
    if rule == "sqlglot":
        assert info.value.engine == "sqlglot" and not isinstance(info.value, PolicyError)
    else:
        assert isinstance(info.value, PolicyError), info.value
        assert info.value.rule == rule, str(info.value)
        assert info.value.engine == "policy"
        assert f"({rule})" in str(info.value)


def test_full_pipeline_refuses_every_hostile_input_and_reports_the_layer() -> None:
    """grammar -> sqlglot -> policy: nothing gets through; the table shows which wall held."""
    layers: Counter[str] = Counter()
    report = []
    for number, dialect, rule, sql in HOSTILE:
        try:
            query = validate(sql, dialect, policy=HOSTILE_POLICY)
        except ValidationError as exc:
            layer = refusal_layer(exc)
            layers[layer] += 1
            report.append(f"line {number:>3} {dialect:<8} {layer:<26} {str(exc).splitlines()[0][:90]}")
            if isinstance(exc, PolicyError):
                assert exc.rule == rule, f"line {number}: policy refused with {exc.rule}, expected {rule}"
            continue
        pytest.fail(f"line {number} ({dialect}) passed every wall: {query.text!r}")
    print("\n".join(report))
    print("refusals by layer:", dict(layers))
    assert sum(layers.values()) == len(HOSTILE)


def test_spider_gold_queries_pass_the_policy() -> None:
    """No false refusals on real read-only SQL (every 8th Spider gold query)."""
    lines = corpus("spider", "train_gold.sql").read_text(encoding="utf-8").splitlines()[::8]
    refused = []
    for line in lines:
        sql = line.split("\t")[0]
        try:
            Policy().enforce(sql, "sqlite")
        except ValidationError as exc:
            refused.append(f"{sql}  -> {exc}")
    assert not refused, "\n".join(refused)


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "mysql"])
def test_spider_gold_in_other_dialects_passes_the_policy(dialect: str) -> None:
    """The postgres, duckdb and mysql denylists refuse no ordinary query (Spider gold transpiled by sqlglot)."""
    lines = corpus("spider", "train_gold.sql").read_text(encoding="utf-8").splitlines()[3::24]
    refused = []
    for line in lines:
        sql = sqlglot.transpile(line.split("\t")[0], read="sqlite", write=dialect)[0]
        try:
            Policy().enforce(sql, dialect)
        except ValidationError as exc:
            refused.append(f"{sql}  -> {exc}")
    assert not refused, "\n".join(refused)


# -- each engine's own hostile forms ---------------------------------------------------------------
ENGINE_HOSTILE = [
    # MySQL / MariaDB
    ("mysql", "function", "SELECT SLEEP(10)"),
    ("mysql", "function", "SELECT Title FROM Album WHERE SLEEP(1) = 0"),
    ("mysql", "function", "SELECT BENCHMARK(100000000, MD5('x'))"),
    ("mysql", "function", "SELECT LOAD_FILE('/etc/passwd')"),
    ("mysql", "function", "SELECT GET_LOCK('x', 10)"),
    ("mysql", "function", "SELECT RELEASE_LOCK('x')"),
    ("mysql", "function", "SELECT RELEASE_ALL_LOCKS()"),
    ("mysql", "function", "SELECT IS_FREE_LOCK('x')"),
    ("mysql", "function", "SELECT IS_USED_LOCK('x')"),
    ("mysql", "function", "SELECT MASTER_POS_WAIT('binlog.000001', 4)"),
    ("mysql", "function", "SELECT SOURCE_POS_WAIT('binlog.000001', 4)"),
    ("mysql", "function", "SELECT MASTER_GTID_WAIT('0-1-100')"),
    ("mysql", "function", "SELECT sys_exec('id')"),
    ("mysql", "function", "SELECT sys_eval('id')"),
    ("mysql", "function", "SELECT LAST_INSERT_ID(5)"),
    ("mysql", "function", "SELECT VERSION()"),
    ("mysql", "write", "SELECT @v := 1"),
    ("mysql", "write", "SELECT (@v := Title) FROM Album"),
    ("mysql", "variable", "SELECT @@version"),
    ("mysql", "variable", "SELECT @@global.secure_file_priv"),
    ("mysql", "variable", "SELECT Title FROM Album WHERE AlbumId = @v"),
    ("mysql", "statement_type", "SET @v = 1"),
    ("mysql", "statement_type", "SET GLOBAL general_log = 1"),
    ("mysql", "write", "SELECT Title FROM Album INTO OUTFILE '/tmp/x'"),
    ("mysql", "write", "SELECT Title INTO DUMPFILE '/tmp/x' FROM Album"),
    ("mysql", "write", "SELECT Title INTO @t FROM Album"),
    ("mysql", "write", "LOAD DATA INFILE '/etc/passwd' INTO TABLE Album"),
    ("mysql", "write", "SELECT * FROM Album FOR UPDATE"),
    ("mysql", "write", "SELECT * FROM Album LOCK IN SHARE MODE"),
    ("mysql", "write", "SELECT * FROM Album FOR SHARE"),
    ("mysql", "system_table", "SELECT * FROM mysql.user"),
    ("mysql", "system_table", "SELECT * FROM information_schema.tables"),
    ("mysql", "system_table", "SELECT * FROM performance_schema.threads"),
    ("mysql", "system_table", "SELECT * FROM sys.processlist"),
    ("mysql", "statement_type", "SHOW TABLES"),
    ("mysql", "comment", "SELECT 1 # x"),
    ("mysql", "comment", "SELECT 1 /*! UNION SELECT 2 */"),
    ("mysql", "single_statement", "SELECT 1; DROP TABLE Album"),
    # PostgreSQL
    ("postgres", "function", "SELECT pg_sleep(10)"),
    ("postgres", "function", "SELECT pg_read_file('/etc/passwd')"),
    ("postgres", "function", "SELECT lo_import('/etc/passwd')"),
    ("postgres", "function", "SELECT dblink('host=evil', 'SELECT 1')"),
    ("postgres", "function", "SELECT set_config('log_statement', 'none', false)"),
    ("postgres", "function", "SELECT pg_terminate_backend(1)"),
    ("postgres", "function", "SELECT nextval('artist_id_seq')"),
    ("postgres", "function", "SELECT version()"),
    ("postgres", "function", "SELECT pg_stat_reset()"),
    ("postgres", "function", "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)"),
    ("postgres", "write", "WITH d AS (DELETE FROM artist RETURNING *) SELECT * FROM d"),
    ("postgres", "write", "SELECT * FROM artist FOR UPDATE"),
    ("postgres", "write", "SELECT * FROM artist FOR SHARE"),
    ("postgres", "write", "SELECT * FROM artist FOR NO KEY UPDATE"),
    ("postgres", "write", "SELECT * INTO stolen FROM artist"),
    ("postgres", "statement_type", "COPY artist TO '/tmp/out'"),
    # DuckDB
    ("duckdb", "function", "SELECT * FROM read_csv('/etc/passwd')"),
    ("duckdb", "function", "SELECT * FROM read_text('/etc/passwd')"),
    ("duckdb", "function", "SELECT * FROM read_parquet('https://evil/x.parquet')"),
    ("duckdb", "function", "SELECT * FROM read_blob('/etc/passwd')"),
    ("duckdb", "function", "SELECT * FROM parquet_scan('x.parquet')"),
    ("duckdb", "function", "SELECT * FROM sniff_csv('/etc/passwd')"),
    ("duckdb", "function", "SELECT * FROM delta_scan('s3://bucket/t')"),
    ("duckdb", "function", "SELECT * FROM postgres_query('db', 'DROP TABLE x')"),
    ("duckdb", "function", "SELECT * FROM mysql_query('db', 'DROP TABLE x')"),
    ("duckdb", "function", "SELECT json_execute_serialized_sql('x')"),
    ("duckdb", "function", "SELECT version()"),
    ("duckdb", "file_access", "SELECT * FROM 'x.csv'"),
    ("duckdb", "statement_type", "COPY (SELECT 1) TO '/tmp/x.csv'"),
    ("duckdb", "statement_type", "ATTACH 'x.db'"),
    ("duckdb", "statement_type", "INSTALL httpfs"),
    ("duckdb", "statement_type", "LOAD httpfs"),
    ("duckdb", "statement_type", "PRAGMA version"),
]


@pytest.mark.parametrize(("dialect", "rule", "sql"), ENGINE_HOSTILE, ids=[f"{d}-{r}-{i}" for i, (d, r, _) in enumerate(ENGINE_HOSTILE)])
def test_engine_hostile_form_is_refused_naming_its_rule(dialect: str, rule: str, sql: str) -> None:
    """The policy alone names the rule; validate() refuses too, at the grammar when the dialect grammar
    cannot even write the form, else at the policy with the same rule."""
    with pytest.raises(PolicyError) as info:
        Policy().enforce(sql, dialect)
    assert info.value.rule == rule, str(info.value)
    from constrain.sql import grammar

    written = grammar(dialect).matches(sql)
    with pytest.raises(ValidationError) as refused:
        validate(sql, dialect)
    if written:
        assert isinstance(refused.value, PolicyError) and refused.value.rule == rule, str(refused.value)
    else:
        assert refused.value.engine in {"lark", "llguidance"}, str(refused.value)


def test_mysql_functions_and_schemas_are_refused_by_the_policy_not_the_grammar() -> None:
    """What sql/mysql can write (any scalar function call, a schema-qualified table) is the policy's to refuse."""
    from constrain.sql import grammar

    written = [s for d, r, s in ENGINE_HOSTILE if d == "mysql" and r in {"function", "system_table"}]
    assert len(written) >= 20
    assert [s for s in written if not grammar("mysql").matches(s)] == []


@pytest.mark.parametrize(("dialect", "sql"), [
    ("mysql", "SELECT version, sleep_minutes, benchmark_score FROM releases"),
    ("mysql", "SELECT * FROM sleep_log JOIN app.users ON 1 = 1"),
    ("mysql", "SELECT `database`, user, `schema` FROM mysql_notes"),
    ("mysql", "SELECT CURRENT_USER(), DATABASE(), IF(a > 1, 'y', 'n') FROM t"),
    ("mysql", "SELECT a FROM t WHERE d > CURDATE() - INTERVAL 7 DAY"),
    ("postgres", "SELECT version FROM releases JOIN sleep_log ON 1 = 1"),
    ("duckdb", "SELECT version FROM read_log JOIN sleep_log ON 1 = 1"),
])
def test_ordinary_names_are_not_refused(dialect: str, sql: str) -> None:
    Policy().enforce(sql, dialect)
    validate(sql, dialect)


# -- the table allowlist --------------------------------------------------------------------------
def test_allowlist_matches_as_the_dialect_compares_identifiers() -> None:
    sqlite_policy = Policy(tables=frozenset({"Artist"}))
    sqlite_policy.enforce("SELECT name FROM ARTIST", "sqlite")  # SQLite folds ASCII case
    sqlite_policy.enforce("WITH a AS (SELECT name FROM artist) SELECT * FROM a", "sqlite")  # a CTE is not a table
    with pytest.raises(PolicyError) as info:
        sqlite_policy.enforce("WITH a AS (SELECT 1) SELECT * FROM a JOIN Album", "sqlite")
    assert info.value.rule == "table_allowlist" and "Album" in str(info.value)
    postgres_policy = Policy(tables=frozenset({"artist"}))
    postgres_policy.enforce("SELECT name FROM Artist", "postgres")  # unquoted folds to lower case
    with pytest.raises(PolicyError):
        postgres_policy.enforce('SELECT name FROM "Artist"', "postgres")  # quoted keeps its case


def test_denylists_are_per_dialect() -> None:
    assert DIALECT_RULES["sqlite"].function_denied("LOAD_EXTENSION")
    assert DIALECT_RULES["postgres"].function_denied("pg_read_binary_file")
    assert DIALECT_RULES["duckdb"].function_denied("read_csv_auto")
    Policy().enforce("SELECT glob('*a*', 'banana')", "sqlite")  # GLOB is a harmless operator in SQLite
    with pytest.raises(PolicyError):
        Policy().enforce("SELECT * FROM glob('*')", "duckdb")  # ... and lists files in DuckDB
    Policy(allow_recursive=True).enforce(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c", "sqlite"
    )
    with pytest.raises(PolicyError) as info:
        Policy(extra_denied_functions=frozenset({"ABS"})).enforce("SELECT abs(-1)", "sqlite")
    assert info.value.rule == "function"


# -- the row cap: added or lowered, never raised ----------------------------------------------------
def _root_limit(sql: str, dialect: str) -> exp.Expression | None:
    return sqlglot.parse_one(sql, read=dialect).args.get("limit")


CAP_SHAPES = [
    "SELECT TrackId FROM Track{limit}",
    "SELECT TrackId FROM Track ORDER BY Milliseconds DESC{limit}",
    "SELECT TrackId FROM Track WHERE GenreId = 1 UNION SELECT TrackId FROM Track WHERE GenreId = 2{limit}",
    "SELECT AlbumId, count(*) FROM Track GROUP BY AlbumId{limit}",
    "WITH t AS (SELECT TrackId FROM Track LIMIT 2000) SELECT TrackId FROM t{limit}",
]


@pytest.fixture(scope="module")
def chinook() -> sqlite3.Connection:
    path = corpus("chinook", "Chinook_Sqlite.sqlite")
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    yield connection
    connection.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.sampled_from(CAP_SHAPES),
    cap=st.integers(min_value=0, max_value=4000),
    existing=st.one_of(st.none(), st.integers(min_value=0, max_value=4000), st.just(-1)),
    offset=st.sampled_from([None, 0, 7]),
)
def test_row_cap_never_raises_a_limit(chinook: sqlite3.Connection, shape: str, cap: int, existing: int | None, offset: int | None) -> None:
    limit = "" if existing is None else f" LIMIT {existing}" + ("" if offset is None else f" OFFSET {offset}")
    sql = shape.format(limit=limit)
    uncapped = len(chinook.execute(sql).fetchall())
    root, rewritten = Policy(max_rows=cap).enforce(sql, "sqlite")
    final = rewritten or sql
    capped = len(chinook.execute(final).fetchall())
    assert capped == min(uncapped, cap), final
    value = _root_limit(final, "sqlite")
    assert value is not None
    assert int(value.expression.this) <= cap
    if existing is not None and 0 <= existing <= cap:
        assert rewritten is None  # a LIMIT already within the cap is left alone
    if rewritten is not None and existing is not None and existing >= 0:
        assert int(value.expression.this) == cap < existing


def test_row_cap_is_what_validate_returns() -> None:
    query = validate("SELECT name FROM Artist LIMIT 500", policy=Policy(max_rows=20))
    assert query.rewritten and query.text.endswith("LIMIT 20") and query.original_text.endswith("LIMIT 500")
    assert any("row cap" in r for r in query.rewrites)
    untouched = validate("SELECT name FROM Artist LIMIT 5", policy=Policy(max_rows=20))
    assert not untouched.rewritten and untouched.text == untouched.original_text


# -- the third wall: SQLite's authorizer during SQLQuery.run ---------------------------------------
AUTHORIZER_CASES = [
    "DELETE FROM Artist",
    "UPDATE Artist SET Name = 'x'",
    "INSERT INTO Artist (Name) VALUES ('x')",
    "CREATE TABLE stolen AS SELECT * FROM Customer",
    "DROP TABLE Artist",
    "PRAGMA writable_schema = 1",
    "PRAGMA table_info(Artist)",
    "ATTACH DATABASE ':memory:' AS other",
    "SELECT load_extension('/nonexistent/evil.so')",
    "SELECT zeroblob(10)",
    "SELECT sql FROM sqlite_master",
    "SELECT name FROM Artist UNION SELECT name FROM sqlite_schema",
    "BEGIN",
]


@pytest.mark.parametrize("sql", AUTHORIZER_CASES)
def test_sqlite_authorizer_refuses_when_everything_else_is_bypassed(tmp_path: Path, sql: str) -> None:
    source = corpus("chinook", "Chinook_Sqlite.sqlite")
    copy = tmp_path / "chinook.sqlite"
    shutil.copyfile(source, copy)
    connection = sqlite3.connect(copy)  # writable on purpose: only the authorizer stands in the way
    before = connection.execute("SELECT count(*) FROM Artist").fetchone()
    unchecked = SQLQuery(text=sql, dialect="sqlite", expression=exp.Null())
    with pytest.raises(ValidationError) as info:
        unchecked.run(connection)
    assert isinstance(info.value, PolicyError) and info.value.rule == "authorizer", str(info.value)
    assert connection.execute("SELECT count(*) FROM Artist").fetchone() == before
    assert connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'stolen'").fetchone() == (0,)
    connection.close()


def test_run_interrupts_a_runaway_query() -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    root, _ = Policy(allow_recursive=True).enforce(sql, "sqlite")
    bomb = SQLQuery(text=sql, dialect="sqlite", expression=root)
    with pytest.raises(PolicyError) as info:
        bomb.run(sqlite3.connect(":memory:"), timeout=0.3)
    assert info.value.rule == "timeout"


def test_run_caps_value_size() -> None:
    query = SQLQuery(text="SELECT length(replace(printf('%.5000c', 'x'), 'x', printf('%.5000c', 'y')))", dialect="sqlite", expression=exp.Null())
    with pytest.raises(ValidationError) as info:
        query.run(sqlite3.connect(":memory:"))
    assert info.value.engine == "sqlite" and "too big" in str(info.value)


def test_a_name_the_catalog_holds_is_a_name_not_a_path(tmp_path) -> None:
    """DuckDB reads ``FROM 'x.csv'`` as a file only when no table has that name: a catalog table whose
    name looks like a path is allowed (BIRD's ``"Charter School (Y/N)"``), anything else still refused."""
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    from constrain import sql

    path = tmp_path / "schools.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute('CREATE TABLE "Charter School (Y/N)" (id INT, "County Name" VARCHAR)')
    conn.execute("""INSERT INTO "Charter School (Y/N)" VALUES (1, 'Alameda')""")
    conn.close()
    with sql.connect(path) as db:
        query = sql.validate('SELECT "County Name" FROM "Charter School (Y/N)"', db=db)
        assert query.run(db).rows == [("Alameda",)]
        assert sql.validate('SELECT "County Name" FROM "charter school (y/n)"', db=db).run(db).rows == [("Alameda",)]
        for path_like in ('SELECT * FROM "data/x.csv"', 'SELECT * FROM "Charter School (Y/N).csv"'):
            with pytest.raises(PolicyError) as caught:
                sql.validate(path_like, db=db)
            assert caught.value.rule == "file_access"
    with pytest.raises(PolicyError) as caught:  # without a catalog, the name is only a path-like string
        sql.validate('SELECT 1 FROM "Charter School (Y/N)"', "duckdb")
    assert caught.value.rule == "file_access"
