"""``constrain sql-grammar`` and ``constrain validate --sql`` through ``constrain.cli.main`` on real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import corpus
from constrain import Grammar
from constrain.cli import main
from constrain.sql import Schema, grammar


@pytest.fixture(scope="module")
def chinook_db() -> Path:
    return corpus("chinook", "Chinook_Sqlite.sqlite")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sql_grammar_prints_the_schema_bound_grammar(chinook_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql-grammar", "--db", str(chinook_db)]) == 0
    printed = capsys.readouterr().out
    expected = grammar("sqlite", schema=Schema.from_sqlite(chinook_db)).text
    assert printed.rstrip("\n") == expected.rstrip("\n")
    printed_grammar = Grammar(printed)  # what was printed is a usable grammar
    assert printed_grammar.matches("SELECT Quantity FROM InvoiceLine")
    assert printed_grammar.matches("SELECT Quantity AS q FROM InvoiceLine ORDER BY q")  # any name: scope is validate's
    assert not printed_grammar.matches("DELETE FROM InvoiceLine")


def test_sql_grammar_json(chinook_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql-grammar", "--db", str(chinook_db), "--json"]) == 0
    (record,) = _json_lines(capsys.readouterr().out)
    schema = Schema.from_sqlite(chinook_db)
    assert record["tables"] == len(schema.tables) == 11
    assert record["grammar"] == grammar("sqlite", schema=schema).text


def test_sql_grammar_from_ddl_in_another_dialect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddl = tmp_path / "schema.sql"
    ddl.write_text("CREATE TABLE singer (singer_id INT, name TEXT);\nCREATE TABLE concert (concert_id INT);\n")
    assert main(["sql-grammar", "--ddl", str(ddl), "--dialect", "postgres", "--json"]) == 0
    (record,) = _json_lines(capsys.readouterr().out)
    assert record["tables"] == 2 and record["dialect"] == "postgres"
    bound = Grammar(record["grammar"])
    assert bound.matches("SELECT singer_id FROM singer") and bound.matches("SELECT x::int FROM singer")
    assert not bound.matches("SELECT `singer_id` FROM singer")  # backticks are not a postgres quote


def test_sql_grammar_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql-grammar", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "no such SQLite database file" in capsys.readouterr().err
    not_sqlite = tmp_path / "junk.sqlite"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    assert main(["sql-grammar", "--db", str(not_sqlite)]) == 2
    assert "constrain: error:" in capsys.readouterr().err
    assert main(["sql-grammar"]) == 2
    assert "--db" in capsys.readouterr().err


QUERIES = [
    ("SELECT Name FROM Artist WHERE ArtistId = 1", True),
    ("SELECT Title FROM Album WHERE Title = 'Facelift'", True),
    ("SELECT T1.InvoiceLineId FROM Invoice AS T1", False),  # schema: Invoice has no InvoiceLineId
    ("SELECT 1; DROP TABLE Artist", False),
    ("SELECT Nmae FROM Artist", False),
]


def test_validate_sql_lines_against_a_database(tmp_path: Path, chinook_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "queries.sql"
    lines.write_text("\n".join(q for q, _ in QUERIES) + "\n")
    code = main(["validate", "--sql", "--db", str(chinook_db), "--lines", str(lines), "--json"])
    records = _json_lines(capsys.readouterr().out)
    summary = records.pop()
    assert [r["ok"] for r in records] == [ok for _, ok in QUERIES]
    assert [r["line"] for r in records] == list(range(1, len(QUERIES) + 1))
    assert summary == {"summary": True, "total": 5, "passed": 2, "failed": 3}
    assert code == 1
    schema_error = records[2]["error"]
    assert schema_error["type"] == "SchemaError" and "InvoiceId" in schema_error["message"]
    assert schema_error["line"] == 1 and schema_error["column"] == 11
    assert schema_error["name"] == "InvoiceLineId" and "InvoiceId" in schema_error["suggestions"]


def test_validate_sql_human_output_and_files(tmp_path: Path, chinook_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.sql"
    good.write_text("SELECT count(*) FROM Track WHERE Milliseconds > 300000;\n")
    assert main(["validate", "--sql", "--db", str(chinook_db), str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{good}: ok" in out and "1/1 passed" in out and "sql/sqlite bound to" in out
    bad = tmp_path / "bad.sql"
    bad.write_text("PRAGMA table_info(Artist)")
    assert main(["validate", "--sql", "--db", str(chinook_db), str(bad)]) == 1
    assert "0/1 passed" in capsys.readouterr().out


def test_validate_sql_with_ddl_and_dialect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddl = tmp_path / "schema.sql"
    ddl.write_text("CREATE TABLE singer (singer_id INT, name TEXT, age INT);\n")
    queries = tmp_path / "q.txt"
    queries.write_text("SELECT name FROM singer WHERE age > 30\nSELECT nam FROM singer\n")
    code = main(["validate", "--sql", "--dialect", "postgres", "--ddl", str(ddl), "--lines", str(queries), "--json"])
    records = _json_lines(capsys.readouterr().out)
    assert [r.get("ok") for r in records[:2]] == [True, False]
    assert code == 1


def test_validate_sql_without_schema_checks_syntax_and_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("SELECT anything FROM anywhere\nSELECT * FROM sqlite_master\nSELECT a FROM t LIMIT 5\n")
    assert main(["validate", "--sql", "--lines", str(queries), "--json"]) == 1
    records = _json_lines(capsys.readouterr().out)
    assert records[0]["ok"] is True and records[1]["ok"] is False and records[2]["ok"] is True
    refused = records[1]["error"]
    assert refused.get("rule") == "system_table" or refused["engine"] in ("lark", "llguidance")


def test_validate_sql_option_mistakes(tmp_path: Path, chinook_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1")
    assert main(["validate", "--db", str(chinook_db), str(query)]) == 2
    assert "add --sql" in capsys.readouterr().err
    assert main(["validate", "--sql", "--grammar", "json", str(query)]) == 2
    assert "exclusive" in capsys.readouterr().err
    assert main(["validate", "--sql", "--dialect", "oracle", str(query)]) == 2
    assert "unknown SQL dialect" in capsys.readouterr().err
