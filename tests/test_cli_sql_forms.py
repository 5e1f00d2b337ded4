"""`constrain sql` end to end on every form a model writes: the grammar sent to the server admits it,
the validator accepts it, and the rows are what SQLite gives for the same query.

The server is the project's real OpenAI-compatible server on 127.0.0.1 with a scripted output; the
packaged Chinook database is the one the README's quickstart uses.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain._databases import resolve_database
from constrain.cli import main

FORMS = {
    "alias in ORDER BY (the quickstart's question)":
        "SELECT FirstName, LastName, SUM(Total) AS TotalSpent\nFROM Customer JOIN Invoice USING (CustomerId)\n"
        "GROUP BY FirstName, LastName\nORDER BY TotalSpent DESC LIMIT 5",
    "alias without AS in HAVING": "SELECT BillingCountry, count(*) invoices FROM Invoice GROUP BY BillingCountry "
                                  "HAVING invoices > 30 ORDER BY invoices DESC",
    "alias in WHERE (SQLite)": "SELECT Name, Milliseconds / 60000.0 AS minutes FROM Track WHERE minutes > 20 ORDER BY Name",
    "CTE": "WITH spend AS (SELECT CustomerId, SUM(Total) AS amount FROM Invoice GROUP BY CustomerId)\n"
           "SELECT c.FirstName, s.amount FROM Customer AS c JOIN spend AS s ON s.CustomerId = c.CustomerId "
           "ORDER BY s.amount DESC LIMIT 3",
    "derived table": "SELECT sub.n FROM (SELECT ArtistId, count(*) AS n FROM Album GROUP BY ArtistId) AS sub "
                     "ORDER BY sub.n DESC LIMIT 2",
    "backticks": "SELECT `Name` FROM `Genre` ORDER BY `Name` LIMIT 3",
    "brackets": "SELECT [Name] FROM [MediaType] ORDER BY [Name]",
    'AS "alias"': 'SELECT count(*) AS "Track Count" FROM Track',
    "AS 'alias'": "SELECT Title AS 'album' FROM Album ORDER BY album LIMIT 2",
    "AS `alias`": "SELECT Title AS `album title` FROM Album ORDER BY `album title` DESC LIMIT 2",
    "lowercase keywords and ;": "select name from artist where artistid < 4 order by name;",
    "LIMIT n, m": "SELECT Name FROM Genre ORDER BY Name LIMIT 2, 3",
    "IIF": "SELECT Name, IIF(Milliseconds > 300000, 'long', 'short') AS kind FROM Track ORDER BY TrackId LIMIT 3",
    "window function": "SELECT Name, RANK() OVER (PARTITION BY AlbumId ORDER BY Milliseconds DESC) AS r "
                       "FROM Track WHERE AlbumId = 1 ORDER BY r",
    "double-quoted string": 'SELECT Name FROM Artist WHERE Name = "AC/DC"',
    "FILTER": "SELECT count(*) FILTER (WHERE Milliseconds > 300000) AS long_tracks FROM Track",
}


def _rows(query: str) -> list[list[object]]:
    conn = sqlite3.connect(f"file:{resolve_database('chinook')}?mode=ro", uri=True)
    try:
        return [list(row) for row in conn.execute(query.replace('"AC/DC"', "'AC/DC'"))]
    finally:
        conn.close()


@pytest.mark.parametrize("form", FORMS)
def test_constrain_sql_runs_each_form(form: str, served, capsys: pytest.CaptureFixture[str]) -> None:
    server, url = served
    query = FORMS[form]
    server.inject(output(query))
    code = main(["sql", "a question", "--db", "chinook", "-p", "openai", "--base-url", url, "--run", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out)
    assert len(record["attempts"]) == 1, record["attempts"]
    assert record["rows"]["rows"] == _rows(query)
    assert record["rows"]["rows"], "each form is chosen to return rows"
    # the grammar the server received admits the query as written
    (request,) = server.requests_to("/responses")[-1:]
    grammar_text = request.body["tools"][0]["format"]["definition"]
    from constrain import Grammar

    assert Grammar(grammar_text, name="sent").matches(query)


def test_a_double_quoted_near_miss_of_a_column_is_named_and_reasked(served, capsys: pytest.CaptureFixture[str]) -> None:
    server, url = served
    server.inject(output('SELECT Name FROM Artist WHERE "Naem" = \'AC/DC\''), output("SELECT Name FROM Artist WHERE Name = 'AC/DC'"))
    code = main(["sql", "AC/DC", "--db", "chinook", "-p", "openai", "--base-url", url, "--run", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["rows"]["rows"] == [["AC/DC"]]
    first = record["attempts"][0]
    assert not first["ok"] and "Naem" in json.dumps(first["error"]) and "Name" in json.dumps(first["error"])


def test_a_schema_repair_is_printed_and_can_be_turned_off(served, capsys: pytest.CaptureFixture[str]) -> None:
    server, url = served
    forgot_the_join = "SELECT Title, Name FROM Album WHERE AlbumId = 1"
    server.inject(output(forgot_the_join))
    code = main(["sql", "first album and its artist", "--db", "chinook", "-p", "openai", "--base-url", url, "--run"])
    captured = capsys.readouterr()
    assert code == 0 and "JOIN Artist ON Album.ArtistId = Artist.ArtistId" in captured.out
    assert "For Those About To Rock We Salute You  AC/DC" in captured.out
    assert "constrain: schema repair: unknown column 'Name' in Album" in captured.err
    # off: the refusal goes back to the model, which answers again
    server.inject(output(forgot_the_join), output("SELECT Title FROM Album WHERE AlbumId = 1"))
    code = main(["sql", "first album", "--db", "chinook", "-p", "openai", "--base-url", url, "--run", "--json",
                 "--no-schema-repairs"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["rewrites"] == [] and [a["ok"] for a in record["attempts"]] == [False, True]
