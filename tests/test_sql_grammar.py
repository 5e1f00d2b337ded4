"""The packaged SQL grammars: clean checks, features accepted by both engines and sqlglot, writes refused."""

from __future__ import annotations

import re

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain import available_grammars, load_grammar
from constrain.errors import ValidationError
from constrain.sql import grammar
from constrain.sql._dialects import DIALECTS, get_dialect
from constrain.sql.grammar import identifier_regex, render_dialect_file, word_regex

DIALECT_NAMES = sorted(DIALECTS)

# Read-only queries every dialect grammar must accept (and sqlglot must read in that dialect).
FEATURES = [
    "SELECT 1",
    "select name ,  country from singer;",
    "SELECT count(*) FROM head WHERE age  >  56",
    "SELECT count (*) FROM head",
    "SELECT DISTINCT T1.name FROM a AS T1 JOIN b AS T2 ON T1.id  =  T2.id WHERE T2.x = 'Yes'",
    "SELECT a FROM t1 INNER JOIN t2 ON t1.id = t2.id LEFT JOIN t3 ON t3.id = t2.id LEFT OUTER JOIN t4 USING (id)",
    "SELECT a FROM t1 CROSS JOIN t2 NATURAL JOIN t3, t4 AS x",
    "SELECT t.* FROM t",
    "SELECT * FROM (SELECT a, b FROM t) AS sub WHERE sub.a > 1",
    "SELECT a FROM t WHERE b IN (SELECT b FROM u) AND NOT EXISTS (SELECT 1 FROM v WHERE v.b = t.b)",
    "SELECT a FROM t WHERE b NOT IN (1, 2, 3) OR c IS NOT NULL OR d IS NULL",
    "SELECT a FROM t WHERE name LIKE '%Ha%' AND name NOT LIKE 'x\\_%' ESCAPE '\\'",
    "SELECT a FROM t WHERE x BETWEEN 10 AND 15 AND y NOT BETWEEN -1 AND +1.5e3",
    "SELECT a FROM t UNION SELECT a FROM u UNION ALL SELECT a FROM v INTERSECT SELECT a FROM w EXCEPT SELECT a FROM x",
    "SELECT born_state FROM head GROUP BY born_state HAVING count(*)  >=  3 ORDER BY count(*) DESC LIMIT 1",
    "SELECT a FROM t ORDER BY a ASC, b DESC LIMIT 10 OFFSET 5",
    "SELECT a, rank() OVER (PARTITION BY b ORDER BY c DESC) FROM t",
    "SELECT sum(x) OVER (ORDER BY y), row_number() OVER () FROM t",
    "SELECT CASE WHEN a > 1 THEN 'big' WHEN a = 1 THEN 'one' ELSE 'small' END AS size FROM t",
    "SELECT CASE a WHEN 1 THEN 'x' END FROM t",
    "SELECT CAST(a AS INTEGER), CAST(b AS VARCHAR(20)), CAST(c AS DECIMAL(10, 2)) FROM t",
    "SELECT a || '-' || b, a * 2 - b / 3 % 4, -a FROM t",
    "WITH x AS (SELECT a FROM t), y (c) AS (SELECT 1) SELECT * FROM x JOIN y ON x.a = y.c",
    "SELECT \"weird name\" FROM \"my table\" WHERE \"weird name\" <> 'it''s'",
    "SELECT max(a), min(b), avg(c), sum(DISTINCT d), count(DISTINCT e) FROM t",
    "SELECT coalesce(a, b, 0), lower(name), length(name), round(x, 2), abs(-1) FROM t",
    "SELECT a FROM t WHERE a = NULL OR b = TRUE OR c = current_date",
    "SELECT a FROM t WHERE (a = 1 OR (b = 2 AND c = 3))",
    "SELECT a\nFROM t\nWHERE b = 1\n",
    # names a model uses that no schema lists: select-list aliases, CTEs, derived tables and their columns
    "SELECT FirstName, SUM(Total) AS TotalSpent FROM Customer GROUP BY FirstName ORDER BY TotalSpent DESC LIMIT 5",
    "SELECT count(*) total FROM t GROUP BY a HAVING total > 1 ORDER BY total",
    "WITH spend AS (SELECT CustomerId, SUM(Total) AS amount FROM Invoice GROUP BY CustomerId) "
    "SELECT c.FirstName, s.amount FROM Customer AS c JOIN spend AS s ON s.CustomerId = c.CustomerId",
    "SELECT sub.total FROM (SELECT a, count(*) AS total FROM t GROUP BY a) AS sub ORDER BY sub.total",
    'SELECT a AS "Total Spent" FROM t ORDER BY "Total Spent"',
    "SELECT customers.name FROM customers AS customers JOIN orders AS purchases ON purchases.id = customers.id",
    "WITH revenue AS (SELECT 1 AS x) SELECT x FROM revenue",  # a CTE name that begins like RECURSIVE
    "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c",
    "SELECT count(*) FILTER (WHERE a > 1), sum(b) OVER (PARTITION BY c ORDER BY d "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
    "SELECT avg(x) OVER (ORDER BY y RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t",
    "SELECT a FROM t ORDER BY a NULLS LAST LIMIT 5, 10",
    # schema-qualified tables, and columns qualified by schema and table
    "SELECT public.album.title, album.id, a.x, public.album.* FROM public.album JOIN chinook.Artist AS a ON a.id = album.id",
    "SELECT count(*) FROM main.Album, s.t AS x WHERE x.a IN (SELECT b FROM s.u)",
]

# FEATURES that MySQL does not run: a backslash escapes in its strings ('\\' is unterminated), "..." is a
# string (not a name), CAST takes no INTEGER / VARCHAR, and there is no NULLS LAST or FILTER (WHERE ...).
# DIALECT_FEATURES["mysql"] holds their MySQL spellings.
NOT_MYSQL = {
    "SELECT a FROM t WHERE name LIKE '%Ha%' AND name NOT LIKE 'x\\_%' ESCAPE '\\'",
    "SELECT CAST(a AS INTEGER), CAST(b AS VARCHAR(20)), CAST(c AS DECIMAL(10, 2)) FROM t",
    "SELECT \"weird name\" FROM \"my table\" WHERE \"weird name\" <> 'it''s'",
    "SELECT count(*) FILTER (WHERE a > 1), sum(b) OVER (PARTITION BY c ORDER BY d "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
    "SELECT a FROM t ORDER BY a NULLS LAST LIMIT 5, 10",
}
assert NOT_MYSQL <= set(FEATURES)

# Forms of one dialect (and the other dialects that share them).
DIALECT_FEATURES = {
    "sqlite": [
        "SELECT `Charter School (Y/N)`, [Free Meal Count (K-12)] FROM `frpm` AS T1 WHERE T1.`County Name` = 'Alameda'",
        "SELECT a AS 'total' FROM t ORDER BY total",
        "SELECT a AS `x y`, b AS [z] FROM t",
        "SELECT t1.name FROM CAST AS t2 JOIN actor AS t1 ON t2.aid = t1.aid",
        "SELECT IIF(a > 1, 'y', 'n') FROM t",
        'SELECT "my schema"."Odd Table"."a b", [x].[y].z FROM "my schema"."Odd Table" JOIN `s`.`u` ON 1 = 1',
    ],
    "postgres": [
        "SELECT EXTRACT(YEAR FROM d), x::REAL, (a + b)::numeric(10, 2) FROM t WHERE name ILIKE 'x%'",
        "SELECT a FROM t WHERE d > DATE '2020-01-01' AND d < now() - INTERVAL '1 day' AND ts >= TIMESTAMP '2020-01-01 00:00'",
        "SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC NULLS FIRST",
        "SELECT count(*) FILTER (WHERE a > 1), first_name || ' ' || last_name FROM t",
        "SELECT extract(month from d)::int AS m FROM t",
        'SELECT "my schema"."Odd Table"."a b", s."T".x FROM "my schema"."Odd Table" JOIN s."T" ON 1 = 1',
    ],
}
DIALECT_FEATURES["duckdb"] = DIALECT_FEATURES["postgres"] + ["SELECT a AS 'total' FROM t ORDER BY total"]
DIALECT_FEATURES["mysql"] = [
    "SELECT a FROM t WHERE name LIKE '%Ha%' AND name NOT LIKE 'x\\_%' ESCAPE '|' AND b = 'it\\'s'",
    "SELECT CAST(a AS SIGNED), CAST(b AS CHAR(20)), CAST(c AS DECIMAL(10, 2)), CAST(d AS UNSIGNED INTEGER) FROM t",
    "SELECT `weird name` FROM `my table` WHERE `weird name` <> \"it's\"",
    "SELECT sum(b) OVER (PARTITION BY c ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
    "SELECT a FROM t ORDER BY a IS NULL, a LIMIT 5, 10",
    "SELECT IF(a > 1, 'y', 'n'), IFNULL(a, 0), LEFT(b, 2), DATE_FORMAT(d, '%Y-%m') FROM t WHERE a DIV 2 = 1 XOR b MOD 3 = 0",
    "SELECT a FROM t WHERE d > CURDATE() - INTERVAL 7 DAY AND name REGEXP '^A' AND b <=> NULL",
    "SELECT GROUP_CONCAT(DISTINCT x ORDER BY y SEPARATOR ', '), EXTRACT(YEAR FROM d) FROM t GROUP BY z",
    "SELECT CONVERT(x, SIGNED), CONVERT(x USING utf8mb4), x COLLATE utf8mb4_bin FROM t1 STRAIGHT_JOIN t2 ON t1.a = t2.a",
    "SELECT 1 FROM DUAL",
    "SELECT `my schema`.`Odd Table`.`a b`, s.`T`.x FROM `my schema`.`Odd Table` JOIN s.`T` ON 1 = 1",
]

# Not read-only, not one statement, or not the dialect's lexical shape: both engines refuse.
REFUSED = [
    "DELETE FROM t",
    "UPDATE t SET a = 1",
    "INSERT INTO t VALUES (1)",
    "DROP TABLE t",
    "CREATE TABLE t (a INT)",
    "PRAGMA table_info(t)",
    "ATTACH DATABASE 'x.db' AS x",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE t",
    "SELECT a FROM t -- comment",
    "SELECT a /* hidden */ FROM t",
    "SELECT a FROM t WHERE b = 1 --; DROP TABLE t",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    "SELECTa FROM t",
    "SELECT a FROMt x",
    "SELECT a FROM t WHERE",
    "SELECT a FROM t WHERE b = 1 OR",
    "\u017fELECT a FROM t",  # long s: a Unicode case variant of S
    "ＳＥＬＥＣＴ a FROM t",  # fullwidth letters
    " SELECT a FROM t",
    "SELECT a FROM t LIMIT 1 UNION SELECT b FROM u",
    "SELECT a FROM select",
    "SELECT from FROM t",
    "SELECT a - -1 FROM t",
    "SELECT a--1 FROM t",
    "SELECT a FROM t WHERE b = 'unterminated",
    "SELECT load_extension ('x') ; SELECT 1",
    "SELECT a FROM t" + " " * 200,
]


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_packaged_grammar_is_listed_lalr_and_checks_clean(dialect: str) -> None:
    name = f"sql/{dialect}"
    assert name in {info.name for info in available_grammars()}
    g = load_grammar(name)
    assert grammar(dialect) is g
    assert g.parser == "lalr"
    errors = [d for d in g.check() if d.severity == "error"]
    assert errors == [], "\n".join(map(str, errors))


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_dialect_file_is_the_rendering_of_its_data(dialect: str) -> None:
    from constrain.grammar._packaged import grammars_dir

    on_disk = (grammars_dir() / "sql" / f"{dialect}.lark").read_text(encoding="utf-8")
    assert on_disk == render_dialect_file(get_dialect(dialect)), (
        f"grammars/sql/{dialect}.lark is stale: regenerate it with constrain.sql.grammar.render_dialect_file")


# a feature MySQL spells otherwise (NOT_MYSQL) is tested in its MySQL spelling, in DIALECT_FEATURES['mysql']
@pytest.mark.parametrize(("dialect", "query"), [(d, q) for q in FEATURES for d in DIALECT_NAMES
                                                if not (d == "mysql" and q in NOT_MYSQL)])
def test_feature_accepted_by_both_engines_and_sqlglot(dialect: str, query: str) -> None:
    g = load_grammar(f"sql/{dialect}")
    g.validate(query)
    sqlglot.parse_one(query, read=get_dialect(dialect).sqlglot_name)


@pytest.mark.parametrize(("dialect", "query"), [(d, q) for d, qs in DIALECT_FEATURES.items() for q in qs])
def test_dialect_feature_accepted_by_both_engines_and_sqlglot(dialect: str, query: str) -> None:
    g = load_grammar(f"sql/{dialect}")
    g.validate(query)
    sqlglot.parse_one(query, read=get_dialect(dialect).sqlglot_name)


@pytest.mark.parametrize(("dialect", "query"), [
    ("sqlite", "SELECT EXTRACT(YEAR FROM d) FROM t"),
    ("sqlite", "SELECT x::REAL FROM t"),
    ("sqlite", "SELECT a FROM t WHERE a ILIKE 'x'"),
    ("postgres", "SELECT `a` FROM t"),
    ("postgres", "SELECT [a] FROM t"),
    ("postgres", "SELECT a AS 'x' FROM t"),
    ("postgres", "SELECT a FROM t WHERE a REGEXP 'x'"),
    ("mysql", 'SELECT a FROM "t"'),
    ("mysql", "SELECT [a] FROM t"),
    ("mysql", "SELECT x::int FROM t"),
    ("mysql", "SELECT a FROM t WHERE a ILIKE 'x'"),
    ("mysql", "SELECT a FROM t ORDER BY a NULLS FIRST"),
    ("mysql", "SELECT count(*) FILTER (WHERE a > 1) FROM t"),
    ("mysql", "SELECT a FROM t WHERE a == 1"),
    ("mysql", "SELECT a FROM t WHERE b = 'x\\'"),  # the backslash escapes the closing quote
    ("mysql", "SELECT rank FROM t"),  # reserved in MySQL 8: `rank`
])
def test_forms_of_other_dialects_are_refused(dialect: str, query: str) -> None:
    g = load_grammar(f"sql/{dialect}")
    assert not g.matches(query)
    with pytest.raises(ValidationError):
        g.parse(query)


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
@pytest.mark.parametrize("query", REFUSED)
def test_refused_by_both_engines(dialect: str, query: str) -> None:
    g = load_grammar(f"sql/{dialect}")
    assert not g.matches(query)
    with pytest.raises(ValidationError) as info:
        g.parse(query)
    assert info.value.line is not None and info.value.column is not None


def test_error_names_the_place_and_what_was_expected() -> None:
    g = load_grammar("sql/sqlite")
    with pytest.raises(ValidationError) as info:
        g.validate("SELECT a FROM t WHERE b = 1 OR")
    err = info.value
    assert err.offset == len("SELECT a FROM t WHERE b = 1 OR")
    assert err.expected


_KEYWORDS = sorted(get_dialect("sqlite").keywords)
_IDENT = re.compile(identifier_regex(_KEYWORDS))
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=70)


@settings(max_examples=300, deadline=None)
@given(word=st.one_of(_word, st.sampled_from(_KEYWORDS), st.sampled_from(_KEYWORDS).map(str.upper),
                      st.sampled_from(_KEYWORDS).map(lambda k: k + "x")))
def test_identifier_regex_is_shape_minus_keywords(word: str) -> None:
    expected = (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word) is not None and len(word) <= 64
                and word.lower() not in set(_KEYWORDS))
    assert (_IDENT.fullmatch(word) is not None) == expected


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text(alphabet="abAB_1 ", min_size=1, max_size=5), min_size=1, max_size=8),
       probe=st.text(alphabet="abAB_1 ", min_size=1, max_size=5))
def test_word_regex_matches_exactly_its_words(words: list[str], probe: str) -> None:
    insensitive = re.fullmatch(word_regex(words, case_insensitive=True), probe) is not None
    sensitive = re.fullmatch(word_regex(words, case_insensitive=False), probe) is not None
    assert sensitive == (probe in words)
    assert insensitive == (probe.lower() in {w.lower() for w in words})
    # lark takes the first alternative that matches: the regex must prefer the longest word
    longest = max((w for w in words if probe.startswith(w)), key=len, default=None)
    m = re.match(word_regex(words, case_insensitive=False), probe)
    assert (m.group(0) if m else None) == longest
