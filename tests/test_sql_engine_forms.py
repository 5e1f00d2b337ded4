"""Every read-only form an engine runs is writable in its dialect's grammar, and passes ``validate``.

For each dialect and each form below, the real engine is the oracle: SQLite and DuckDB in-process,
PostgreSQL 15 and MariaDB through the suite's private servers (tests/_dbservers.py), each reached with
``constrain.sql.connect`` over two small tables ``t(a, b, name)`` and ``u(a, b)``. When the engine runs a
form, the dialect grammar must admit it in lark and llguidance alike (in every case and spacing), and
``validate`` with the database must pass it. When the engine refuses a form, the grammar admits it only
where a fragment is shared between engines (``SHARED``, each with the reason); then ``validate`` feeds the
engine's own error back. ``GAPS`` holds the forms an engine runs that the grammar still refuses, each with
its reason; both lists are checked both ways, so a change of behaviour fails until the list says it.
"""

from __future__ import annotations

import random
import re
import sqlite3
from typing import Iterator

import pytest

from constrain import sql
from constrain.errors import ValidationError

DIALECTS = ("sqlite", "postgres", "duckdb", "mysql")

SETUP = ("CREATE TABLE t (a integer, b integer, name varchar(20))", "CREATE TABLE u (a integer, b integer)",
         "INSERT INTO t VALUES (1, 2, 'xa')", "INSERT INTO t VALUES (2, 3, 'yb')", "INSERT INTO u VALUES (1, 3)")

# (label, query, {dialect: the query as that dialect writes it})
FORMS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("full outer join", "SELECT t.a FROM t FULL OUTER JOIN u ON t.a = u.a", {}),
    ("full join", "SELECT t.a FROM t FULL JOIN u ON t.a = u.a", {}),
    ("full join aliases", "SELECT x.a FROM t x FULL JOIN u y ON x.a = y.a", {}),
    ("full join using", "SELECT a FROM t FULL JOIN u USING (a)", {}),
    ("right join", "SELECT t.a FROM t RIGHT JOIN u ON t.a = u.a", {}),
    ("right outer join", "SELECT t.a FROM t RIGHT OUTER JOIN u ON t.a = u.a", {}),
    ("left outer join", "SELECT t.a FROM t LEFT OUTER JOIN u ON t.a = u.a", {}),
    ("inner join", "SELECT t.a FROM t INNER JOIN u ON t.a = u.a", {}),
    ("cross join", "SELECT t.a FROM t CROSS JOIN u", {}),
    ("natural join", "SELECT a FROM t NATURAL JOIN u", {}),
    ("natural left join", "SELECT a FROM t NATURAL LEFT JOIN u", {}),
    ("natural left outer join", "SELECT a FROM t NATURAL LEFT OUTER JOIN u", {}),
    ("natural inner join", "SELECT a FROM t NATURAL INNER JOIN u", {}),
    ("natural right join", "SELECT a FROM t NATURAL RIGHT JOIN u", {}),
    ("natural full join", "SELECT a FROM t NATURAL FULL JOIN u", {}),
    ("natural full outer join", "SELECT a FROM t NATURAL FULL OUTER JOIN u", {}),
    ("straight_join", "SELECT t.a FROM t STRAIGHT_JOIN u ON t.a = u.a", {}),
    ("trim both from", "SELECT TRIM(BOTH 'x' FROM name) FROM t", {}),
    ("trim leading from", "SELECT TRIM(LEADING FROM name) FROM t", {}),
    ("trim leading x from", "SELECT TRIM(LEADING 'x' FROM name) FROM t", {}),
    ("trim trailing x from", "SELECT TRIM(TRAILING 'x' FROM name) FROM t", {}),
    ("trim x from", "SELECT TRIM('x' FROM name) FROM t", {}),
    ("trim from", "SELECT TRIM(FROM name) FROM t", {}),
    ("trim plain", "SELECT trim(name) FROM t", {}),
    ("substring from for", "SELECT SUBSTRING(name FROM 1 FOR 2) FROM t", {}),
    ("substring from", "SELECT SUBSTRING(name FROM 2) FROM t", {}),
    ("substring for", "SELECT SUBSTRING(name FOR 2) FROM t", {}),
    ("substring plain", "SELECT substring(name, 1, 2) FROM t", {}),
    ("position in", "SELECT POSITION('a' IN name) FROM t", {}),
    ("position in call", "SELECT POSITION('a' IN lower(name)) FROM t", {}),
    ("named window", "SELECT rank() OVER w FROM t WINDOW w AS (PARTITION BY a ORDER BY b)", {}),
    ("named window frame", "SELECT sum(a) OVER (w ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t WINDOW w AS (ORDER BY b)", {}),
    ("named window order", "SELECT sum(a) OVER (w ORDER BY b) FROM t WINDOW w AS (PARTITION BY a)", {}),
    ("two named windows", "SELECT rank() OVER w, sum(a) OVER v FROM t WINDOW w AS (ORDER BY a), v AS (PARTITION BY b)", {}),
    ("named window then order by", "SELECT rank() OVER w FROM t WINDOW w AS (ORDER BY a) ORDER BY a", {}),
    ("filter over named window", "SELECT count(*) FILTER (WHERE a > 0) OVER w FROM t WINDOW w AS (ORDER BY a)", {}),
    ("is distinct from", "SELECT a FROM t WHERE a IS DISTINCT FROM b", {}),
    ("is not distinct from", "SELECT a FROM t WHERE a IS NOT DISTINCT FROM b", {}),
    ("is not null", "SELECT a FROM t WHERE a IS NOT NULL", {}),
    ("rollup", "SELECT a, sum(b) FROM t GROUP BY ROLLUP (a)", {}),
    ("rollup two", "SELECT a, b, count(*) FROM t GROUP BY ROLLUP (a, b)", {}),
    ("cube", "SELECT a, sum(b) FROM t GROUP BY CUBE (a)", {}),
    ("column and cube", "SELECT a, b, count(*) FROM t GROUP BY a, CUBE (b)", {}),
    ("grouping sets", "SELECT a, sum(b) FROM t GROUP BY GROUPING SETS ((a), ())", {}),
    ("grouping sets nested", "SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS (a, ROLLUP (b), ())", {}),
    ("with rollup", "SELECT a, sum(b) FROM t GROUP BY a WITH ROLLUP", {}),
    ("grouping function", "SELECT a, GROUPING(a) FROM t GROUP BY ROLLUP (a)",
     {"mysql": "SELECT a, GROUPING(a) FROM t GROUP BY a WITH ROLLUP"}),
    ("fetch first", "SELECT a FROM t FETCH FIRST 5 ROWS ONLY", {}),
    ("fetch next row", "SELECT a FROM t ORDER BY a FETCH NEXT 1 ROW ONLY", {}),
    ("fetch first row only", "SELECT a FROM t FETCH FIRST ROW ONLY", {}),
    ("fetch with ties", "SELECT a FROM t ORDER BY a FETCH FIRST 1 ROWS WITH TIES", {}),
    ("offset rows fetch", "SELECT a FROM t ORDER BY a OFFSET 1 ROWS FETCH FIRST 2 ROWS ONLY", {}),
    ("offset row fetch row", "SELECT a FROM t ORDER BY a OFFSET 1 ROW FETCH NEXT 1 ROW ONLY", {}),
    ("offset rows", "SELECT a FROM t ORDER BY a OFFSET 1 ROWS", {}),
    ("offset", "SELECT a FROM t ORDER BY a OFFSET 1", {}),
    ("limit offset", "SELECT a FROM t LIMIT 1 OFFSET 0", {}),
    ("string_agg order by", "SELECT string_agg(name, ',' ORDER BY name) FROM t", {}),
    ("string_agg distinct order by", "SELECT string_agg(DISTINCT name, ',' ORDER BY name) FROM t", {}),
    ("array_agg order by", "SELECT array_agg(a ORDER BY b DESC, a) FROM t", {}),
    ("group_concat order by", "SELECT group_concat(name, ',' ORDER BY name) FROM t",
     {"mysql": "SELECT group_concat(name ORDER BY name SEPARATOR ',') FROM t"}),
    ("within group", "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM t", {}),
    ("mode within group", "SELECT mode() WITHIN GROUP (ORDER BY a) FROM t", {}),
    ("lateral after comma", "SELECT a FROM t, LATERAL (SELECT 1) AS s", {}),
    ("join lateral", "SELECT t.a FROM t JOIN LATERAL (SELECT u.b FROM u WHERE u.a = t.a) AS s ON true", {}),
    ("left join lateral", "SELECT t.a FROM t LEFT JOIN LATERAL (SELECT u.b FROM u WHERE u.a = t.a) AS s ON true", {}),
    ("cross join lateral", "SELECT t.a, s.b FROM t CROSS JOIN LATERAL (SELECT u.b FROM u WHERE u.a = t.a) s", {}),
    ("any array", "SELECT a FROM t WHERE a = ANY (ARRAY[1, 2])", {}),
    ("all array", "SELECT a FROM t WHERE a <> ALL (ARRAY[1, 2])", {}),
    ("any subquery", "SELECT a FROM t WHERE a = ANY (SELECT a FROM u)", {}),
    ("all subquery", "SELECT a FROM t WHERE a > ALL (SELECT a FROM u)", {}),
    ("some subquery", "SELECT a FROM t WHERE a < SOME (SELECT a FROM u)", {}),
    ("array literal", "SELECT ARRAY[1, 2] FROM t", {}),
    ("qualify", "SELECT a, row_number() OVER (ORDER BY a) AS r FROM t QUALIFY r = 1", {}),
    ("window then qualify", "SELECT a FROM t WINDOW w AS (ORDER BY a) QUALIFY rank() OVER w = 1", {}),
    ("row value in subquery", "SELECT a FROM t WHERE (a, b) IN (SELECT a, b FROM u)", {}),
    ("row value equals", "SELECT a FROM t WHERE (a, b) = (1, 2)", {}),
    ("row value less", "SELECT a FROM t WHERE (a, b) < (2, 3)", {}),
    ("row values in list", "SELECT a FROM t WHERE (a, b) IN ((1, 2), (3, 4))", {}),
    ("row constructor", "SELECT a FROM t WHERE ROW(a, b) = ROW(1, 2)", {}),
    ("similar to", "SELECT a FROM t WHERE name SIMILAR TO 'x%'", {}),
    ("not similar to", "SELECT a FROM t WHERE name NOT SIMILAR TO 'x%'", {}),
    ("similar to escape", "SELECT a FROM t WHERE name SIMILAR TO 'x#%' ESCAPE '#'", {}),
    ("between symmetric", "SELECT a FROM t WHERE a BETWEEN SYMMETRIC 1 AND 2", {}),
    ("not between symmetric", "SELECT a FROM t WHERE a NOT BETWEEN SYMMETRIC 2 AND 1", {}),
    ("tablesample system", "SELECT a FROM t TABLESAMPLE SYSTEM (10)", {}),
    ("tablesample after alias", "SELECT x.a FROM t AS x TABLESAMPLE SYSTEM (100)", {}),
    ("tablesample repeatable", "SELECT a FROM t TABLESAMPLE BERNOULLI (50) REPEATABLE (1)", {}),
    ("tablesample percent", "SELECT a FROM t TABLESAMPLE 10%", {}),
    ("using sample", "SELECT a FROM t USING SAMPLE 10%", {}),
    ("using sample after where", "SELECT a FROM t WHERE a > 0 USING SAMPLE 10%", {}),
    ("using sample method", "SELECT a FROM t USING SAMPLE 10 PERCENT (bernoulli)", {}),
    ("in values", "SELECT a FROM t WHERE b IN (VALUES (1), (2))", {}),
    ("row in values", "SELECT a FROM t WHERE (a, b) IN (VALUES (1, 2))", {}),
    ("exists values", "SELECT a FROM t WHERE EXISTS (VALUES (1))", {}),
    ("values", "VALUES (1, 2)", {}),
    ("values two rows", "VALUES (1, 2), (3, 4)", {}),
    ("values order limit", "VALUES (2), (1) ORDER BY 1 LIMIT 1", {}),
    ("union values", "SELECT 1 UNION VALUES (2)", {}),
    ("cte of values", "WITH v(x) AS (VALUES (1)) SELECT x FROM v", {}),
    ("from values with columns", "SELECT x FROM (VALUES (1, 2)) AS v(x, y)", {}),
    ("derived table columns", "SELECT s.x FROM (SELECT a FROM t) AS s(x)", {}),
    ("table columns", "SELECT x.y FROM t AS x(y)", {}),
    ("match against", "SELECT a FROM t WHERE MATCH(name) AGAINST ('x')", {}),
    ("match against boolean", "SELECT a FROM t WHERE MATCH(name) AGAINST ('x' IN BOOLEAN MODE)", {}),
    ("match against natural", "SELECT a FROM t WHERE MATCH(name) AGAINST ('x' IN NATURAL LANGUAGE MODE)", {}),
    ("match against expansion", "SELECT a FROM t WHERE MATCH(name) AGAINST ('x' WITH QUERY EXPANSION)", {}),
    ("match against as column", "SELECT MATCH(name) AGAINST ('x') AS score FROM t", {}),
    ("order by collate", "SELECT a FROM t ORDER BY name COLLATE NOCASE",
     {"postgres": 'SELECT a FROM t ORDER BY name COLLATE "C"', "mysql": "SELECT a FROM t ORDER BY name COLLATE utf8mb4_bin"}),
    ("collate desc", "SELECT a FROM t ORDER BY name COLLATE NOCASE DESC",
     {"postgres": 'SELECT a FROM t ORDER BY name COLLATE "C" DESC', "mysql": "SELECT a FROM t ORDER BY name COLLATE utf8mb4_bin DESC"}),
    ("where collate", "SELECT a FROM t WHERE name COLLATE NOCASE = 'x'",
     {"postgres": "SELECT a FROM t WHERE name COLLATE \"C\" = 'x'", "mysql": "SELECT a FROM t WHERE name COLLATE utf8mb4_bin = 'x'"}),
    ("ilike", "SELECT a FROM t WHERE name ILIKE 'x%'", {}),
    ("not ilike", "SELECT a FROM t WHERE name NOT ILIKE 'x%'", {}),
    ("ilike escape", "SELECT a FROM t WHERE name ILIKE 'x#%' ESCAPE '#'", {}),
    ("group by all", "SELECT a, sum(b) FROM t GROUP BY ALL", {}),
    ("order by all", "SELECT a FROM t ORDER BY ALL", {}),
)

# Forms an engine refuses that its grammar admits, because the grammar fragment is shared with an engine
# that runs them (or the grammar cannot tell a function name): validate() feeds the engine's error back.
SHARED: dict[tuple[str, str], str] = {
    ("duckdb", "fetch with ties"): "_extended.lark: PostgreSQL runs WITH TIES",
    ("duckdb", "similar to escape"): "_extended.lark: PostgreSQL runs SIMILAR TO ... ESCAPE",
    ("duckdb", "tablesample repeatable"): "_extended.lark: PostgreSQL samples 50 percent; DuckDB reads a count",
    ("mysql", "rollup"): "ROLLUP (a) is a function call to the grammar; MariaDB has no such function",
    ("mysql", "rollup two"): "ROLLUP (a, b) is a function call to the grammar; MariaDB has no such function",
    ("mysql", "substring for"): "_standard.lark: PostgreSQL and DuckDB run SUBSTRING(s FOR n)",
    ("mysql", "trim from"): "_standard.lark: PostgreSQL and DuckDB run TRIM(FROM s)",
    ("postgres", "group_concat order by"): "a function call: PostgreSQL has no group_concat",
    ("sqlite", "row constructor"): "ROW(a, b) is a function call to the grammar; SQLite has no such function",
}

# Forms an engine runs that its grammar refuses, with the reason.
GAPS: dict[tuple[str, str], str] = {
    ("duckdb", "group by all"): "lark's lexer tries a keyword before an identifier it begins (ALL before "
                                "allocation) and never backtracks: a bare ALL there would break such names",
    ("duckdb", "order by all"): "as GROUP BY ALL",
    ("mysql", "full join using"): "MariaDB reads FULL as t's alias (it has no FULL JOIN): another query",
    ("mysql", "in values"): "sqlglot's mysql reader reads VALUES (...) as a function (MySQL 8 refuses it too)",
    ("mysql", "row in values"): "as IN (VALUES ...)",
    ("mysql", "exists values"): "as IN (VALUES ...)",
    ("mysql", "values"): "as IN (VALUES ...)",
    ("mysql", "values two rows"): "as IN (VALUES ...)",
    ("mysql", "values order limit"): "as IN (VALUES ...)",
    ("mysql", "union values"): "as IN (VALUES ...)",
    ("mysql", "cte of values"): "as IN (VALUES ...)",
}


def query_of(form: tuple[str, str, dict[str, str]], dialect: str) -> str:
    return form[2].get(dialect, form[1])


# -------------------------------------------------------------------------------------------- engines
@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sql.Database]:
    path = tmp_path_factory.mktemp("forms") / "forms.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in SETUP:
            conn.execute(statement)
    with sql.connect(path, samples=0) as db:
        yield db


@pytest.fixture(scope="module")
def duckdb_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sql.Database]:
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    path = tmp_path_factory.mktemp("forms") / "forms.duckdb"
    conn = duckdb.connect(str(path))
    for statement in SETUP:
        conn.execute(statement)
    conn.close()
    with sql.connect(path, samples=0) as db:
        yield db


def _server_db(server: object, setup: tuple[str, ...]) -> Iterator[sql.Database]:
    import _dbservers

    url = _dbservers.create_database(server, "forms")  # type: ignore[arg-type]
    owner = f"SET ROLE {_dbservers.APP_USER};\n" if server.kind == "postgresql" else ""  # type: ignore[attr-defined]
    server.admin_sql(owner + "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS u;\n" + ";\n".join(setup) + ";",  # type: ignore[attr-defined]
                     database="forms")
    with sql.connect(url, samples=0) as db:
        yield db


@pytest.fixture(scope="module")
def postgres_db(postgres_server: object) -> Iterator[sql.Database]:
    yield from _server_db(postgres_server, SETUP)


@pytest.fixture(scope="module")
def mariadb_db(mariadb_server: object) -> Iterator[sql.Database]:
    # MATCH ... AGAINST needs a FULLTEXT index on InnoDB
    setup = (SETUP[0].replace("varchar(20))", "varchar(20), FULLTEXT (name)) ENGINE=InnoDB"),) + SETUP[1:]
    yield from _server_db(mariadb_server, setup)


_FIXTURES = {"sqlite": "sqlite_db", "postgres": "postgres_db", "duckdb": "duckdb_db", "mysql": "mariadb_db"}


def _engine_runs(db: sql.Database, query: str) -> bool:
    try:
        db.run(query, max_rows=5)
    except ValidationError:
        return False
    return True


def _grammar_admits(dialect: str, query: str) -> bool:
    try:
        sql.grammar(dialect).validate(query)  # lark and llguidance, each must accept
    except ValidationError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- tests
def test_the_lists_name_real_forms_and_dialects() -> None:
    labels = {label for label, _, _ in FORMS}
    assert len(labels) == len(FORMS)
    for dialect, label in set(SHARED) | set(GAPS):
        assert dialect in DIALECTS and label in labels, (dialect, label)
    assert not set(SHARED) & set(GAPS)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_grammar_and_validate_admit_exactly_what_the_engine_runs(dialect: str, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue(_FIXTURES[dialect])
    wrong: list[str] = []
    for form in FORMS:
        label, query = form[0], query_of(form, dialect)
        runs, admits = _engine_runs(db, query), _grammar_admits(dialect, query)
        key = (dialect, label)
        if runs and not admits and key not in GAPS:
            wrong.append(f"{label}: the engine runs it, the grammar refuses it: {query}")
        elif runs and admits and key in GAPS:
            wrong.append(f"{label}: admitted now; take it out of GAPS")
        elif not runs and admits and key not in SHARED:
            wrong.append(f"{label}: the engine refuses it, the grammar admits it: {query}")
        elif not (not runs and admits) and key in SHARED:
            wrong.append(f"{label}: no longer engine-refused and admitted; take it out of SHARED")
        if runs and admits:
            try:
                sql.validate(query, db=db)
            except ValidationError as exc:
                wrong.append(f"{label}: validate refuses what the engine runs: {str(exc).splitlines()[0]}")
        if not runs and admits:
            with pytest.raises(ValidationError) as fed_back:  # the engine's own refusal (or sqlglot's)
                sql.validate(query, db=db)
            assert fed_back.value.engine in (dialect, "sqlglot"), (label, fed_back.value)
    assert wrong == [], "\n".join(wrong)


def _respelt(query: str, rng: random.Random) -> str:
    """``query`` with every keyword and name in a random case and every blank a random run of blanks
    (string literals and double-quoted names untouched)."""
    parts = re.split(r"('[^']*'|\"[^\"]*\")", query)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        part = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in part)
        out.append(re.sub(r" +", lambda _: rng.choice([" ", "  ", "\n", "\t", " \n  ", "\r\n"]), part))
    return "".join(out)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_admitted_form_is_admitted_in_any_case_and_spacing(dialect: str) -> None:
    rng = random.Random(f"forms-{dialect}")
    for form in FORMS:
        query = query_of(form, dialect)
        if not _grammar_admits(dialect, query):
            continue
        for _ in range(4):
            variant = _respelt(query, rng)
            if dialect == "postgres" and "COLLATE" in query.upper():
                variant = re.sub(r'"c"', '"C"', variant)
            sql.grammar(dialect).validate(variant)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_gbnf_form_of_each_grammar_gives_the_same_verdicts(dialect: str) -> None:
    """llama.cpp's and SGLang's llguidance backends read the grammar as GBNF: every form, the same verdict."""
    from llguidance.gbnf_to_lark import gbnf_to_lark

    from constrain.grammar import Grammar

    original = sql.grammar(dialect)
    as_gbnf = Grammar(gbnf_to_lark(original.to_gbnf()), name=f"<{dialect} gbnf>")
    differ = [query_of(form, dialect) for form in FORMS
              if as_gbnf.matches(query_of(form, dialect)) != _grammar_admits(dialect, query_of(form, dialect))]
    assert differ == []


# Joins, clauses and aliases: a keyword the grammar now reads never swallows a name it begins, and a
# keyword is never taken for an alias (FULL in "t FULL JOIN u" once lexed as an alias "FUL").
KEYWORD_NAMES = (
    ("SELECT t.a FROM t FULL JOIN u ON t.a = u.a", "JOIN_OP", " FULL JOIN "),
    ("SELECT t.a FROM t RIGHT OUTER JOIN u ON t.a = u.a", "JOIN_OP", " RIGHT OUTER JOIN "),
    ("SELECT fullname.a FROM t fullname JOIN u ON fullname.a = u.a", "ALIAS_WS", " fullname"),
    ("SELECT rightmost.a FROM t AS rightmost", "IDENT", "rightmost"),
    ("SELECT windowed.a FROM t windowed WINDOW w AS (ORDER BY a)", "ALIAS_WS", " windowed"),
    ("SELECT a fetched FROM t fetchers FETCH FIRST 1 ROW ONLY", "ALIAS_WS", " fetchers"),
    ("SELECT lateral_x.a FROM t lateral_x", "ALIAS_WS", " lateral_x"),
    ("SELECT a FROM t distinctive WHERE a IS DISTINCT FROM b", "ALIAS_WS", " distinctive"),
    ("SELECT a AS valuesx FROM t WHERE b IN (VALUES (1))", "IDENT", "valuesx"),
    ("SELECT trim_x, substring_y, position_z FROM t", "IDENT", "trim_x"),
    ("SELECT trim (name) FROM t", "IDENT", "trim"),
)


@pytest.mark.parametrize("dialect", ("sqlite", "postgres", "duckdb"))
@pytest.mark.parametrize(("query", "terminal", "text"), KEYWORD_NAMES)
def test_keywords_and_names_that_begin_with_them_are_read_apart(dialect: str, query: str, terminal: str,
                                                                  text: str) -> None:
    grammar = sql.grammar(dialect)
    if "FETCH" in query and dialect == "sqlite":
        query = query.replace(" FETCH FIRST 1 ROW ONLY", " LIMIT 1")
    grammar.validate(query)
    tokens = [(t.type, str(t)) for t in grammar.parse(query).scan_values(lambda v: hasattr(v, "type"))]
    assert (terminal, text) in tokens, tokens


def test_qualify_and_lateral_names_are_checked_against_the_schema() -> None:
    from constrain.errors import SchemaError

    schema = sql.Schema.from_dict({"t": {"a": "integer", "b": "integer"}, "u": {"a": "integer"}}, dialect="duckdb")
    for dialect, query in (("duckdb", "SELECT a, row_number() OVER (ORDER BY a) AS r FROM t QUALIFY nosuch = 1"),
                           ("postgres", "SELECT a FROM t, LATERAL (SELECT nosuch FROM u) AS s"),
                           ("sqlite", "SELECT rank() OVER w FROM t WINDOW w AS (PARTITION BY nosuch)")):
        with pytest.raises(SchemaError, match="nosuch"):
            sql.validate(query, dialect, schema)
    assert sql.validate("SELECT a, row_number() OVER (ORDER BY a) AS r FROM t QUALIFY r = 1", "duckdb", schema)
    assert sql.validate("SELECT s.a FROM t, LATERAL (SELECT u.a FROM u WHERE u.a = t.b) AS s", "postgres", schema)


def test_the_row_cap_keeps_the_meaning_of_fetch_and_values() -> None:
    capped = sql.Policy(max_rows=2)
    assert sql.validate("SELECT 1 FETCH FIRST ROW ONLY", "postgres", policy=capped).text == "SELECT 1 FETCH FIRST ROW ONLY"
    assert sql.validate("VALUES (1), (2), (3)", "sqlite", policy=capped).text == "VALUES (1), (2)"
    assert sql.validate("VALUES (1), (2)", "sqlite", policy=capped).text == "VALUES (1), (2)"
    assert "LIMIT 2" in sql.validate("VALUES (3), (2), (1) ORDER BY 1", "postgres", policy=capped).text
