"""sql/mysql: the MySQL / MariaDB dialect grammar.

* the forms models write for MySQL are admitted by both engines (lark and llguidance) and read by
  sqlglot's mysql reader; forms MySQL cannot run are refused by both;
* Spider's gold SQL transpiled to MySQL by sqlglot: at least 99% admitted, and the engines agree on
  every query (the figures are printed: ``pytest -q -s tests/test_sql_mysql.py -k spider``);
* llguidance random walks parse with lark and with sqlglot's mysql reader (soundness);
* the dialect record: aliases, quoting, reserved words, exact name comparison.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import sqlglot

from conftest import corpus
from constrain import load_grammar
from constrain.cli import main
from constrain.errors import SchemaError, ValidationError
from constrain.sql import Schema, grammar, validate
from constrain.sql._dialects import get_dialect
from constrain.sql.grammar import QUOTED_NAME_MAX

# MySQL as models write it: every form must be admitted by both engines and read by sqlglot(mysql).
MODEL_STYLE = [
    "SELECT a FROM t LIMIT 2, 3",
    "select count(*) as cnt from t where year(d) = 2020 group by month(d) order by cnt desc;",
    "SELECT IF(a > 1, 'y', 'n'), IFNULL(a, 0), DATE_FORMAT(d, '%Y-%m'), ISNULL(b), COALESCE(a, b), NULLIF(a, b) FROM t",
    "SELECT LEFT(name, 3), RIGHT(name, 2), REPLACE(name, 'a', 'b'), MOD(a, 2), CHAR(65), DATE(d), MONTH(d), DAY(d) FROM t",
    "SELECT IF (a > 1, 1, 0), REPEAT('x', 3), DATABASE(), SCHEMA() FROM t",
    "SELECT CAST(a AS SIGNED), CAST(a AS UNSIGNED), CAST(a AS SIGNED INTEGER), CAST(a AS UNSIGNED INTEGER), "
    "CAST(a AS DECIMAL(10, 2)), CAST(a AS CHAR), CAST(a AS CHAR(10)), CAST(a AS SIGNED ) FROM t",
    "SELECT CAST(a AS DATE), CAST(a AS DATETIME), CAST(a AS TIME), CAST(a AS DOUBLE), CAST(a AS FLOAT), "
    "CAST(a AS BINARY), CAST(a AS JSON) FROM t",
    "SELECT a DIV 2, a MOD 3, a % 2, a & b, a | b, a ^ b FROM t",
    "SELECT a FROM t WHERE a REGEXP '^x' AND b NOT REGEXP 'y' AND c RLIKE 'z' AND d NOT RLIKE 'w'",
    "SELECT a <=> b, a || b FROM t WHERE a XOR b",
    "SELECT a FROM t WHERE a IS NULL OR a <=> NULL OR b IS NOT NULL",
    "SELECT a FROM t WHERE a = TRUE OR b = FALSE OR c IS TRUE OR d IS NOT FALSE OR e IS UNKNOWN",
    "SELECT DATE_ADD(d, INTERVAL 1 DAY), DATE_SUB(NOW(), INTERVAL 30 DAY), d - INTERVAL 7 DAY, d + INTERVAL '1' MONTH FROM t",
    "SELECT DATE_ADD(d, INTERVAL t.n DAY), DATE_ADD(d, INTERVAL n HOUR), DATE_ADD(d, INTERVAL (n * 7) DAY), "
    "DATE_ADD(d, INTERVAL -1 WEEK), d + INTERVAL '1:30' HOUR_MINUTE FROM t",
    "SELECT a FROM t WHERE d > CURDATE() - INTERVAL 1 YEAR AND d < CURRENT_DATE AND ts <= CURRENT_TIMESTAMP",
    "SELECT CURRENT_DATE(), NOW(), UTC_TIMESTAMP FROM t",
    "SELECT EXTRACT(YEAR FROM d), EXTRACT(YEAR_MONTH FROM d), extract(day from d) FROM t",
    "SELECT GROUP_CONCAT(DISTINCT x ORDER BY y DESC SEPARATOR ', ') FROM t",
    "SELECT GROUP_CONCAT(x SEPARATOR ','), GROUP_CONCAT(x ORDER BY y), GROUP_CONCAT(x), group_concat(DISTINCT x) FROM t GROUP BY z",
    "SELECT COUNT(DISTINCT a, b) FROM t",
    "SELECT CONVERT(x, SIGNED), CONVERT(x, DECIMAL(10, 2)), CONVERT(x USING utf8mb4), CONVERT(x, UNSIGNED INTEGER) FROM t",
    "SELECT a FROM t WHERE BINARY name = 'X' AND x COLLATE utf8mb4_bin = 'y' AND z = 'q' COLLATE utf8mb4_general_ci",
    "SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c DESC) AS rn, RANK() OVER (ORDER BY c), "
    "DENSE_RANK() OVER (ORDER BY c) FROM t",
    "SELECT SUM(x) OVER (ORDER BY y ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), LAG(x, 1) OVER (ORDER BY y), "
    "LEAD(x) OVER (ORDER BY y), NTILE(4) OVER (ORDER BY y), PERCENT_RANK() OVER (ORDER BY y) FROM t",
    "WITH x AS (SELECT a FROM t) SELECT * FROM x",
    "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c",
    "SELECT a FROM t1 STRAIGHT_JOIN t2 ON t1.a = t2.a",
    "SELECT a FROM t1 RIGHT JOIN t2 ON t1.a = t2.a RIGHT OUTER JOIN t3 USING (a) LEFT JOIN t4 ON t4.a = t1.a "
    "INNER JOIN t5 ON 1 CROSS JOIN t6 NATURAL JOIN t7 NATURAL LEFT JOIN t8",
    "SELECT 'it\\'s', \"Paris\", 'a''b', \"say \\\"hi\\\"\", 'C:\\\\dir' FROM t WHERE x = \"O'Brien\"",
    "SELECT x'4D', X'4d', b'101', 0x4D, 0b101 FROM t",
    "SELECT 1 FROM DUAL",
    "SELECT a AS \"Total\", b AS 'Other', c AS `x y` FROM t ORDER BY Total",
    "SELECT `my col` FROM `my table` AS `x y` WHERE `x y`.`my col` > 1",
    "SELECT TIMESTAMPDIFF(DAY, a, b), DATEDIFF(a, b), STR_TO_DATE(a, '%Y-%m-%d'), CONCAT(a, ' ', b), "
    "CONCAT_WS(',', a, b), SUBSTRING(a, 1, 3), LENGTH(a), UPPER(a), ROUND(a, 2) FROM t",
    "SELECT a FROM t WHERE d > '2020-01-01' AND date = 1 AND time < 2",
    "SELECT COUNT(*) FROM t GROUP BY a WITH ROLLUP",
    "SELECT a FROM t WHERE a LIKE 'x%' ESCAPE '|' AND b NOT LIKE '%y'",
    "SELECT a FROM t WHERE a IN (SELECT b FROM u) AND NOT EXISTS (SELECT 1 FROM v)",
    "SELECT DISTINCT(a), b FROM t",
    "SELECT * FROM db.t JOIN `db 2`.`t 2` ON db.t.a = `db 2`.`t 2`.a",
    "SELECT t.*, db.t.* FROM db.t",
    "SELECT Title FROM chinook.Album WHERE chinook.Album.AlbumId = 1",
    "SELECT a FROM t WHERE b BETWEEN 1 AND 10 AND c NOT BETWEEN 2 AND 3",
    "SELECT JSON_EXTRACT(a, '$.x'), JSON_UNQUOTE(a) FROM t",
    "SELECT a FROM t UNION SELECT b FROM u UNION ALL SELECT c FROM v",
    "SELECT t1.name FROM CAST AS t2 JOIN actor AS t1 ON t2.aid = t1.aid",  # CAST is not reserved in MySQL
]

# Not MySQL (or not one read-only statement): both engines refuse.
NOT_MYSQL = [
    'SELECT a FROM "t"',  # "t" is a string in MySQL
    "SELECT [a] FROM t",
    "SELECT x::int FROM t",
    "SELECT a FROM t WHERE a ILIKE 'x'",
    "SELECT a FROM t WHERE a GLOB 'x*'",
    "SELECT a FROM t ORDER BY a NULLS FIRST",
    "SELECT count(*) FILTER (WHERE a > 1) FROM t",
    "SELECT a FROM t WHERE a == 1",
    "SELECT a FROM t WHERE a ISNULL",
    "SELECT CAST(a AS INTEGER) FROM t",  # MySQL casts to SIGNED
    "SELECT a FROM t WHERE b = 'x\\'",  # the backslash escapes the closing quote
    "SELECT rank FROM t",  # reserved in MySQL 8: `rank`
    "SELECT a FROM t, u ON t.a = u.a",
    "SELECT a FROM t INTO OUTFILE '/tmp/x'",
    "SELECT a INTO @v FROM t",
    "SELECT @@version",
    "SELECT @v := 1",
    "SELECT a FROM t FOR UPDATE",
    "SELECT a FROM t LOCK IN SHARE MODE",
    "SELECT a FROM t; DELETE FROM t",
    "SELECT a FROM t -- x",
    "SELECT a FROM t # x",
    "SELECT a FROM t WHERE b = 1 /*! OR 1 = 1 */",
]


@pytest.fixture(scope="module")
def mysql_grammar():
    return load_grammar("sql/mysql")


@pytest.mark.parametrize("query", MODEL_STYLE)
def test_model_style_mysql_is_admitted_by_both_engines_and_sqlglot(mysql_grammar, query: str) -> None:
    mysql_grammar.validate(query)
    sqlglot.parse_one(query, read="mysql")


@pytest.mark.parametrize("query", NOT_MYSQL)
def test_forms_mysql_cannot_run_are_refused_by_both_engines(mysql_grammar, query: str) -> None:
    assert not mysql_grammar.matches(query)
    with pytest.raises(ValidationError):
        mysql_grammar.parse(query)


def _spider_gold() -> Counter[str]:
    lines = corpus("spider", "train_gold.sql").read_text(encoding="utf-8").splitlines()
    return Counter(line.split("\t")[0] for line in lines if line.strip())


# the one form sqlglot writes that the grammar leaves out: a parenthesised SELECT ... LIMIT as a set
# operand, from gold SQL that SQLite itself refuses (LIMIT before INTERSECT)
_KNOWN = re.compile(r"^\(SELECT .* LIMIT \d+\) (?:UNION|INTERSECT|EXCEPT) ")


def test_spider_gold_transpiled_to_mysql_is_admitted_by_both_engines(mysql_grammar) -> None:
    gold = _spider_gold()
    total = sum(gold.values())
    admitted = agreed = 0
    rejected: dict[str, str] = {}
    for query, count in gold.items():
        text = sqlglot.transpile(query, read="sqlite", write="mysql")[0]
        llg = mysql_grammar.llg_error(text)
        try:
            mysql_grammar.parse(text)
            lark_error = None
        except ValidationError as exc:
            lark_error = exc
        agreed += count * ((llg is None) == (lark_error is None))
        if llg is None and lark_error is None:
            admitted += count
            sqlglot.parse_one(text, read="mysql")
        else:
            rejected[text] = str(llg or lark_error).splitlines()[0]
    print(f"\nsql/mysql admits {admitted}/{total} ({admitted / total:.2%}) of Spider's gold SQL transpiled to MySQL; "
          f"lark and llguidance agree on {agreed}/{total}")
    for text, why in rejected.items():
        print(f"  {text}\n      {why}")
    assert agreed == total
    assert [t for t in rejected if not _KNOWN.match(t)] == []
    assert admitted >= 0.99 * total


def test_llguidance_walks_parse_in_lark_and_sqlglot(mysql_grammar) -> None:
    texts = mysql_grammar.sample(300, seed=14, max_bytes=300)
    assert len(texts) == 300
    unread = []
    for text in texts:
        mysql_grammar.parse(text)
        try:
            sqlglot.parse_one(text, read="mysql")
        except sqlglot.errors.SqlglotError:
            unread.append(text)
    # sqlglot reads "SELECT * EXCEPT SELECT ..." as the star's EXCEPT modifier (see test_sql_soundness)
    assert all(re.search(r"\*\s+except\s", t, re.IGNORECASE) for t in unread), unread
    assert len(unread) <= len(texts) // 50


def test_dialect_record() -> None:
    mysql = get_dialect("mysql")
    assert get_dialect("mariadb") is mysql and get_dialect("MySQL") is mysql
    assert mysql.sqlglot_name == "mysql" and mysql.grammar_name == "sql/mysql"
    assert mysql.quote("Album") == "Album"
    assert mysql.quote("rank") == "`rank`"  # reserved in MySQL 8
    assert mysql.quote("current_date") == "`current_date`"  # bare, a value
    assert mysql.quote("my`name") == "`my``name`"
    assert mysql.quote("Free Meal Count (K-12)") == "`Free Meal Count (K-12)`"
    assert mysql.quote("isnull") == "isnull"
    # names compare exactly: tables are case-sensitive files on Linux servers
    assert mysql.same_identifier("Album", "Album")
    assert not mysql.same_identifier("Album", "ALBUM")


def test_schema_bound_grammar_spells_long_names() -> None:
    long_name = "x" * (QUOTED_NAME_MAX + 10)
    schema = Schema.from_dict({"Album": ["AlbumId", "Title"], long_name: ["id"]}, dialect="mysql")
    g = grammar("mysql", schema=schema)
    g.validate(f"SELECT `{long_name}`.id, Album.Title FROM `{long_name}` JOIN Album ON 1 = 1")
    assert grammar("mariadb") is load_grammar("sql/mysql")


def test_validate_reads_mysql() -> None:
    query = validate("SELECT IF(a > 1, 'y', \"n\") AS x FROM t WHERE d > CURDATE() - INTERVAL 7 DAY LIMIT 5, 10", "mysql")
    assert query.dialect == "mysql"


def test_cli_check_reports_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "sql/mysql"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "error" not in out.lower(), out


def test_columns_match_in_any_case_tables_do_not() -> None:
    # MySQL reads column names in any case (tables are files, case-sensitive on Linux): a model's
    # `LOCATION` for the catalog's `Location` runs there, so it validates; `STADIUM` for `stadium` does not
    schema = Schema.from_dict({"stadium": ["Stadium_ID", "Location", "Name"], "concert": ["concert_ID", "Stadium_ID"]},
                              dialect="mysql")
    query = validate("SELECT LOCATION, name, s.stadium_id FROM stadium AS s JOIN concert AS c "
                     "ON s.STADIUM_ID = c.Stadium_ID ORDER BY `NAME`", "mysql", schema=schema)
    assert set(query.columns) >= {"stadium.Location", "stadium.Name", "stadium.Stadium_ID"}
    validate("SELECT count(*) AS LOCATION FROM stadium ORDER BY location", "mysql", schema=schema)
    with pytest.raises(SchemaError) as info:
        validate("SELECT Location FROM STADIUM", "mysql", schema=schema)
    assert info.value.name == "STADIUM"
    with pytest.raises(SchemaError) as info:
        validate("SELECT Locations FROM stadium", "mysql", schema=schema)
    assert "Locations" in str(info.value)
