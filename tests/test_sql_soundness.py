"""Soundness: every string the SQL grammars produce is SQL its dialect reads.

* llguidance random walks (``Grammar.sample``, byte-level) and hypothesis-generated strings from each
  packaged dialect grammar must parse with sqlglot in that dialect (and with the grammar's Lark parser);
* for sqlite, walks from grammars bound to real databases go through SQLite's own ``EXPLAIN`` on that
  database with SQLITE_DBCONFIG_DQS_DML off, so an unknown double-quoted name is an error, not a string.
  A context-free grammar cannot know which aliases a query defined or which table a column belongs to,
  so SQLite may still refuse a walk for scope (``no such column: T7.Name`` when T7 was never defined);
  it must never refuse one for syntax, for an unknown table, or for a name that is not in the schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import corpus
from constrain import load_grammar
from constrain.errors import SchemaError
from constrain.sql import Schema, grammar, validate
from constrain.sql._dialects import get_dialect
from test_sql_schema_bound import _spider_by_database

apsw = pytest.importorskip("apsw", reason="apsw (dev extra) is needed to turn SQLite's DQS fallback off")

WALKS = {"sqlite": 500, "postgres": 200, "duckdb": 200}
SEEDS = {"sqlite": 11, "postgres": 12, "duckdb": 13}


def _sqlglot_refusals(texts: list[str], dialect: str) -> list[str]:
    out = []
    for text in texts:
        try:
            sqlglot.parse_one(text, read=get_dialect(dialect).sqlglot_name)
        except sqlglot.errors.SqlglotError as exc:
            out.append(f"{text!r}: {str(exc).splitlines()[0]}")
    return out


@pytest.mark.parametrize("dialect", sorted(WALKS))
def test_llguidance_walks_parse_in_sqlglot_and_lark(dialect: str) -> None:
    g = load_grammar(f"sql/{dialect}")
    texts = g.sample(WALKS[dialect], seed=SEEDS[dialect], max_bytes=300)
    assert len(texts) == WALKS[dialect]
    for text in texts:
        g.parse(text)
    # The one form sqlglot cannot read: "SELECT * EXCEPT SELECT ..." (it takes EXCEPT for the star's
    # modifier). A star with no FROM clause runs on no engine, and validate() says so, at the star.
    unread = []
    for text in texts:
        try:
            sqlglot.parse_one(text, read=get_dialect(dialect).sqlglot_name)
        except sqlglot.errors.SqlglotError as exc:
            with pytest.raises(SchemaError, match=r"'\*' needs a FROM clause") as info:
                validate(text, dialect, policy=None)
            assert text.split("\n")[info.value.line - 1][info.value.column - 1] == "*", (text, exc)
            unread.append(text)
    assert len(unread) <= len(texts) // 50, unread


# hypothesis: queries assembled from the grammar's own pieces (names, literals, operators, clauses)
_KEYWORDS = get_dialect("sqlite").keywords
_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(lambda s: s.lower() not in _KEYWORDS)
_name = st.one_of(_ident, st.from_regex(r'"[^"\x00]{1,8}"', fullmatch=True))
_ws = st.sampled_from([" ", "  ", "\n", "\t", " \r\n "])
_ows = st.sampled_from(["", " ", "  ", "\n"])
_literal = st.one_of(
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,4})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
    st.from_regex(r"'(?:[^'\x00]|''){0,10}'", fullmatch=True),
)


def _kw(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.title()])


@st.composite
def _expr(draw: st.DrawFn, depth: int = 0) -> str:
    atom = draw(st.one_of(_literal, _name, st.tuples(_name, _name).map(lambda p: f"{p[0]}.{p[1]}")))
    if depth >= 3:
        return atom
    kind = draw(st.sampled_from(["atom", "binary", "compare", "func", "paren", "case", "in", "between", "not"]))
    sub = lambda: draw(_expr(depth + 1))  # noqa: E731
    if kind == "binary":
        return f"{sub()}{draw(_ows)}{draw(st.sampled_from(['+', '*', '/', '%', '||']))}{draw(_ows)}{sub()}"
    if kind == "compare":
        return f"{sub()}{draw(_ows)}{draw(st.sampled_from(['=', '<>', '<=', '>', '!=']))}{draw(_ows)}{sub()}"
    if kind == "func":
        return f"{draw(_ident)}{draw(_ows)}({draw(_ows)}{sub()}{draw(_ows)})"
    if kind == "paren":
        return f"({draw(_ows)}{sub()}{draw(_ows)})"
    if kind == "case":
        ws = draw(_ws)
        return f"{draw(_kw('CASE'))}{ws}{draw(_kw('WHEN'))}{ws}{sub()}{ws}THEN{ws}{sub()}{ws}{draw(_kw('END'))}"
    if kind == "in":
        return f"{sub()}{draw(_ws)}{draw(_kw('IN'))}{draw(_ows)}({sub()},{draw(_ows)}{sub()})"
    if kind == "between":
        ws = draw(_ws)
        return f"{sub()}{ws}{draw(_kw('BETWEEN'))}{ws}{sub()}{ws}{draw(_kw('AND'))}{ws}{sub()}"
    if kind == "not":
        return f"{draw(_kw('NOT'))}{draw(_ws)}{sub()}"
    return atom


@st.composite
def _query(draw: st.DrawFn) -> str:
    ws = draw(_ws)
    items = draw(st.lists(_expr(), min_size=1, max_size=3))
    text = f"{draw(_kw('SELECT'))}{ws}{(draw(_ows) + ',' + draw(_ows)).join(items)}"
    if draw(st.booleans()):
        text += f"{ws}{draw(_kw('FROM'))}{ws}{draw(_name)}"
        if draw(st.booleans()):
            text += f"{ws}AS{ws}{draw(_ident)}"
        if draw(st.booleans()):
            text += f"{ws}{draw(_kw('WHERE'))}{ws}{draw(_expr())}"
    if draw(st.booleans()):
        text += f"{ws}ORDER BY{ws}{draw(_expr())}{draw(st.sampled_from(['', ' ASC', ' DESC']))}"
    if draw(st.booleans()):
        text += f"{ws}LIMIT{ws}{draw(st.integers(0, 1000))}"
    return text + draw(st.sampled_from(["", ";", " ;", "\n"]))


@pytest.mark.parametrize("dialect", sorted(WALKS))
def test_hypothesis_queries_the_grammar_accepts_parse_in_sqlglot(dialect: str) -> None:
    """Assembled queries: whatever the grammar accepts (both engines), sqlglot must read."""
    g = load_grammar(f"sql/{dialect}")
    accepted: list[str] = []

    @given(_query())
    @settings(max_examples=50, deadline=None, database=None, derandomize=True,  # the count below must not be luck
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def check(text: str) -> None:
        if g.matches(text):
            g.parse(text)
            assert _sqlglot_refusals([text], dialect) == []
            accepted.append(text)

    check()
    assert len(accepted) >= 12  # the generator speaks the grammar's language often enough to matter


def _dqs_off(path: Path) -> "apsw.Connection":
    conn = apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    return conn


def test_dqs_off_really_makes_an_unknown_double_quoted_name_an_error() -> None:
    path = corpus("chinook", "Chinook_Sqlite.sqlite")
    lenient = apsw.Connection(f"file:{path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    lenient.config(apsw.SQLITE_DBCONFIG_DQS_DML, 1)
    assert lenient.execute('SELECT "nosuchcol" FROM Album LIMIT 1').fetchall() == [("nosuchcol",)]
    strict = _dqs_off(path)
    assert strict.config(apsw.SQLITE_DBCONFIG_DQS_DML, -1) == 0
    with pytest.raises(apsw.SQLError, match="no such column"):
        strict.execute('EXPLAIN SELECT "nosuchcol" FROM Album')


# SQLite errors a context-free grammar cannot rule out: a name used where its table or alias is not in scope,
# an aggregate or window function in the wrong clause, a column-count mismatch across UNION.
_SCOPE_ERRORS = re.compile(
    r"no such column: |ambiguous column name|misuse of (aggregate|window function)|no tables specified|"
    r"no such table: |no such function: |unsupported frame specification|frame starting offset|wrong number of arguments|is not a function|"
    r"term out of range|do not have the same number of result columns|not allowed in the GROUP BY|"
    r"only a single result allowed|sub-select returns|must appear in the GROUP BY|"
    r"row value misused|DISTINCT aggregates must have exactly one argument|cannot join using column|"
    r"a NATURAL join may not have|aggregate functions are not allowed|may not be used with|"
    r"misuse of aliased|RIGHT and FULL OUTER JOINs"
)


DATABASES = [("chinook", "Chinook_Sqlite.sqlite"), ("spider", "database/bike_1/bike_1.sqlite"),
             ("spider", "database/college_2/college_2.sqlite"), ("spider", "database/flight_4/flight_4.sqlite")]


@pytest.mark.parametrize(("corpus_name", "relative"), DATABASES)
def test_schema_bound_walks_are_refused_by_sqlite_for_names_and_scope_only(corpus_name: str, relative: str) -> None:
    """Every name position takes any identifier, so walks name tables and columns the schema lacks; SQLite
    (DQS off) may refuse them for that and for scope, never for syntax, and sqlglot reads every one."""
    path = corpus(corpus_name, *relative.split("/"))
    schema = Schema.from_sqlite(path)
    conn = _dqs_off(path)
    texts = grammar("sqlite", schema).sample(120, seed=5, max_bytes=300)
    clean = 0
    unsound = []
    for text in texts:
        sqlglot.parse_one(text, read="sqlite")
        try:
            conn.execute("EXPLAIN " + text).fetchall()
            clean += 1
        except apsw.Error as exc:
            message = str(exc).split(": ", 1)[-1] if str(exc).startswith("SQLError") else str(exc)
            if not _SCOPE_ERRORS.search(message):
                unsound.append(f"{text!r}: {message}")
    print(f"{relative}: {clean} of {len(texts)} walks pass EXPLAIN outright; the rest name what is not there")
    assert unsound == [], "\n".join(unsound)


@pytest.mark.parametrize(("corpus_name", "relative"), DATABASES)
def test_what_validate_returns_from_schema_bound_walks_passes_explain(corpus_name: str, relative: str) -> None:
    """The second wall: of the same kind of walks, validate() refuses each that SQLite would refuse (with a
    typed error), and whatever it returns passes EXPLAIN on the real database with DQS off."""
    from constrain.errors import ConstrainError
    from constrain.sql import validate

    path = corpus(corpus_name, *relative.split("/"))
    schema = Schema.from_sqlite(path)
    conn = _dqs_off(path)
    returned = refused = 0
    leaks = []
    for text in grammar("sqlite", schema).sample(150, seed=9, max_bytes=400):
        try:
            query = validate(text, "sqlite", schema)
        except ConstrainError:
            refused += 1
            continue
        returned += 1
        try:
            conn.execute("EXPLAIN " + query.text).fetchall()
        except apsw.Error as exc:
            leaks.append(f"{query.text!r}: {exc}")
    print(f"{relative}: validate() returned {returned} walks (all pass EXPLAIN) and refused {refused}")
    assert returned > 0
    assert leaks == [], "\n".join(leaks)

def test_spider_gold_through_validate_runs_with_dqs_off() -> None:
    """Real queries through both walls (every fourth database): a gold query ``validate`` returns passes
    EXPLAIN with DQS off as returned (its "x" strings rewritten to 'x'). The report gives the share of
    Spider gold SQLite refuses as written with DQS off (issue #3's figure)."""
    from constrain.sql import validate

    root = corpus("spider", "database")
    total = gold_fails = returned = 0
    unsound: list[str] = []
    for index, (db, queries) in enumerate(sorted(_spider_by_database().items())):
        path = Path(root, db, f"{db}.sqlite")
        if index % 4 or not path.exists():
            continue
        schema = Schema.from_sqlite(path)
        conn = _dqs_off(path)
        for query in queries:
            total += 1
            gold_fails += _explain_error(conn, query) is not None
            try:
                checked = validate(query, "sqlite", schema, policy=None)
            except Exception:  # a refusal is sound; what is returned must run
                continue
            returned += 1
            error = _explain_error(conn, checked.text)
            if error is not None and not _KNOWN_GOLD_ERRORS.search(error):
                unsound.append(f"[{db}] validated {checked.text!r}: {error}")
    print(f"Spider gold (every fourth database): {total}; SQLite refuses {gold_fails} ({gold_fails / total:.1%}) "
          f"as written with DQS off; validate() returns {returned} ({returned / total:.2%}), all passing EXPLAIN")
    assert total > 1500 and returned >= 0.995 * total
    assert unsound == [], "\n".join(unsound)


# Gold queries SQLite refuses even with its DQS fallback on (mistakes in the corpus, not the grammar's).
_KNOWN_GOLD_ERRORS = re.compile(r"ORDER BY clause should come after|no such table: Ref_Company_Types")


def _explain_error(conn: "apsw.Connection", query: str) -> str | None:
    try:
        conn.execute("EXPLAIN " + query).fetchall()
    except apsw.Error as exc:
        return str(exc)
    return None

