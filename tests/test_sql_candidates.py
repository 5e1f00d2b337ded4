"""``sql.ask(candidates=K)``: K drafted queries, each validated and run, chosen by their results.

The candidates come from the scripted test server (each queued output answers one request, in the
order the requests arrive; the K requests are concurrent, so a test never depends on which candidate
number got which script unless it says so), over the real Chinook SQLite database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain import sql
from constrain.errors import GenerationError, PolicyError, ValidationError
from constrain.providers import OpenAI, OpenAIChat
from constrain.providers.base import Completion, Usage
from constrain.sql.ask import REDRAW_TEMPERATURE, Candidate, vote


def _chinook() -> str:
    from conftest import corpus

    return str(corpus("chinook", "Chinook_Sqlite.sqlite"))


def _provider(url: str) -> OpenAI:
    return OpenAI(base_url=url, model="m", backoff=0.01, max_backoff=0.02)


def test_the_majority_result_wins_whatever_the_queries_look_like(served) -> None:
    server, url = served
    server.inject(
        output("SELECT count(*) FROM Album"),
        output("SELECT count(*) FROM Artist"),
        output("SELECT COUNT(AlbumId) FROM Album"),
        output("SELECT count(*) FROM Genre"),
        output("SELECT count(a.Title) FROM Album AS a"),
    )
    answer = sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=5, run=True)
    assert answer.rows is not None and answer.rows.rows == [(347,)]
    assert answer.vote is not None and answer.vote.rule == "majority"
    assert [len(members) for _, members in answer.vote.groups] == [3, 1, 1]
    assert len(answer.candidates) == 5 and all(c.ok and c.signature for c in answer.candidates)
    assert sorted(c.votes for c in answer.candidates) == [1, 1, 3, 3, 3]
    assert answer.sql in {c.raw for c in answer.candidates if c.votes == 3}
    sent = server.requests_to("/responses")
    assert len(sent) == 5  # one request per candidate; the greedy one and four samples
    assert sorted(s.body["temperature"] for s in sent) == [0.0, 0.7, 0.7, 0.7, 0.7]
    record = json.loads(json.dumps(answer.to_dict()))
    assert record["vote"]["winner"] == answer.vote.winner and len(record["candidates"]) == 5
    assert {c["signature"] for c in record["candidates"]} == {sig for sig, _ in answer.vote.groups}


def test_equal_results_in_another_order_are_one_group_unless_the_query_orders(served) -> None:
    server, url = served
    server.inject(
        output("SELECT GenreId FROM Genre WHERE GenreId < 4"),
        output("SELECT GenreId FROM Genre WHERE GenreId < 4 ORDER BY GenreId DESC"),
        output("SELECT GenreId FROM Genre WHERE GenreId < 4 ORDER BY GenreId"),
    )
    answer = sql.ask("first genres", db=_chinook(), provider=_provider(url), candidates=3, run=True)
    sigs = {c.raw: c.signature for c in answer.candidates}
    unordered = sigs["SELECT GenreId FROM Genre WHERE GenreId < 4"]
    desc = sigs["SELECT GenreId FROM Genre WHERE GenreId < 4 ORDER BY GenreId DESC"]
    asc = sigs["SELECT GenreId FROM Genre WHERE GenreId < 4 ORDER BY GenreId"]
    assert len({unordered, desc, asc}) == 3  # an ORDER BY makes the order part of the result


def test_a_tie_prefers_a_non_empty_result(served) -> None:
    server, url = served
    server.inject(output("SELECT Name FROM Artist WHERE Name = 'nobody at all'"), output("SELECT Name FROM Artist WHERE ArtistId = 1"))
    answer = sql.ask("the first artist", db=_chinook(), provider=_provider(url), candidates=2, run=True)
    assert answer.vote is not None and answer.vote.rule == "tie: non-empty"
    assert answer.rows is not None and answer.rows.rows == [("AC/DC",)]


def test_a_tie_between_results_goes_to_the_greedy_candidate_without_likelihoods(served) -> None:
    server, url = served
    server.inject(output("SELECT Name FROM Artist WHERE ArtistId = 1"), output("SELECT Name FROM Artist WHERE ArtistId = 2"))
    answer = sql.ask("an artist", db=_chinook(), provider=_provider(url), candidates=2, run=True)
    assert answer.vote is not None and answer.vote.rule == "tie: most likely" and answer.vote.winner == 1
    assert answer.sql == answer.candidates[0].raw and answer.candidates[0].temperature == 0.0


def _ran(number: int, signature: str, rows: int, logprob: float | None) -> Candidate:
    query = sql.validate("SELECT 1")
    return Candidate(number, "SELECT 1", 0.7, number, None, query,
                     sql.Rows(("x",), [(1,)] * rows), signature, logprob, Usage(), 0.0)


def test_a_tie_goes_to_the_candidate_the_model_found_most_likely() -> None:
    chosen, sized = vote([_ran(1, "a", 1, -4.0), _ran(2, "b", 1, -1.5), _ran(3, "c", 1, -3.0)])
    assert chosen.rule == "tie: most likely" and chosen.winner == 2
    chosen, _ = vote([_ran(1, "a", 1, -4.0), _ran(2, "b", 0, -0.5), _ran(3, "a", 1, -6.0), _ran(4, "b", 0, -0.1)])
    assert chosen.rule == "tie: non-empty" and chosen.winner == 1  # non-empty first; then the likelier member
    chosen, sized = vote([_ran(1, "a", 1, -9.0), _ran(2, "b", 1, -0.1), _ran(3, "a", 1, -8.0)])
    assert chosen.rule == "majority" and chosen.winner == 3 and [c.votes for c in sized] == [2, 1, 2]


def test_failed_and_timed_out_candidates_are_excluded_with_their_reason(served) -> None:
    server, url = served
    server.inject(
        output("SELECT count(*) FROM Album"),
        output("SELECT count(*) FROM NoSuchTable"),
        output("SELECT count(*) FROM Track AS a, Track AS b, Track AS c"),
        output("SELECT count(*) FROM Album"),
    )
    answer = sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=4, run=True, query_seconds=0.3)
    by_raw = {c.raw: c for c in answer.candidates}
    unknown = by_raw["SELECT count(*) FROM NoSuchTable"]
    assert isinstance(unknown.error, ValidationError) and "NoSuchTable" in str(unknown.error)
    slow = by_raw["SELECT count(*) FROM Track AS a, Track AS b, Track AS c"]
    assert isinstance(slow.error, PolicyError) and slow.error.rule == "timeout"
    for failed in (unknown, slow):
        assert not failed.ok and failed.signature is None and failed.rows is None and failed.votes == 0
        assert failed.to_dict()["error"]["message"]
    assert answer.vote is not None and answer.vote.rule == "unanimous" and answer.rows.rows == [(347,)]


def test_nothing_runs_that_validate_refused(served, tmp_path) -> None:
    import shutil

    db = tmp_path / "copy.sqlite"
    shutil.copy(_chinook(), db)
    server, url = served
    # SQLite would run the first (a double-quoted word as a string) and the second (a write):
    # validate() refuses both, so neither may run
    server.inject(
        output('SELECT count(*) FROM Album WHERE Title = "Facelift"'),
        output("DELETE FROM Album"),
        output("SELECT count(*) FROM Album WHERE Title = 'Facelift'"),
    )
    answer = sql.ask("albums called Facelift", db=str(db), provider=_provider(url), candidates=3, run=True,
                     double_quoted_strings=False)
    refused = [c for c in answer.candidates if not c.ok]
    assert len(refused) == 2 and all(c.rows is None and c.signature is None and c.query is None for c in refused)
    assert answer.rows is not None and answer.rows.rows == [(1,)] and answer.vote.rule == "only one ran"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM Album").fetchone() == (347,)


def test_a_repair_round_runs_only_when_no_candidate_survives_a_reask_and_fresh_samples(served) -> None:
    server, url = served
    server.inject(output("SELECT count(*) FROM Albums"), output("SELECT count(*) FROM Albumz"),  # round 1
                  output("SELECT count(*) FROM Album"),  # round 2: the re-ask (sent first)
                  output("SELECT count(AlbumId) FROM Album"))  # round 2: the fresh sample
    answer = sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=2, run=True)
    assert answer.rows is not None and answer.rows.rows == [(347,)]
    assert answer.vote is not None and answer.vote.rounds == 2 and answer.vote.rule == "unanimous"
    assert [(c.round, c.reask, c.ok) for c in answer.candidates] == [(1, False, False), (1, False, False),
                                                                      (2, True, True), (2, False, True)]
    sent = [s.body for s in server.requests_to("/responses")]
    assert len(sent) == 4
    reask, fresh = sent[2], sent[3]
    # the re-ask feeds a failure back, greedily; the fresh sample is the first prompt again, hotter
    assert reask["input"][-2]["content"] in {"SELECT count(*) FROM Albums", "SELECT count(*) FROM Albumz"}
    assert "rejected by the local validator" in reask["input"][-1]["content"] and reask["temperature"] == 0.0
    assert fresh["input"] == sent[0]["input"] and fresh["temperature"] == REDRAW_TEMPERATURE
    record = json.loads(json.dumps(answer.to_dict()))
    assert record["vote"]["rounds"] == 2 and [c["reask"] for c in record["candidates"]] == [False, False, True, False]


def test_each_repair_round_feeds_back_a_failure_not_fed_back_before(served) -> None:
    server, url = served
    bad = [f"SELECT count(*) FROM Album{suffix}" for suffix in "stuvwx"]
    server.inject(*(output(text) for text in bad))
    with pytest.raises(GenerationError) as caught:
        sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=2, max_attempts=3, run=True)
    assert len(caught.value.attempts) == 6 and "none of 6 candidates (3 rounds)" in str(caught.value)
    sent = [s.body for s in server.requests_to("/responses")]
    reasks = [body["input"][-2]["content"] for body in sent if len(body["input"]) > 2]
    assert len(reasks) == 2 and reasks[0] != reasks[1] and set(reasks) <= set(bad)


def test_when_nothing_survives_and_no_attempt_is_left_every_candidate_is_in_the_error(served) -> None:
    server, url = served
    server.inject(output("SELECT count(*) FROM Albums"), output("SELECT nope FROM Album"))
    with pytest.raises(GenerationError) as caught:
        sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=2, max_attempts=1)
    assert len(caught.value.attempts) == 2 and "none of 2 candidates" in str(caught.value)
    assert len(server.requests_to("/responses")) == 2


def test_aask_sends_the_candidates_together_and_chat_sends_seeds(served) -> None:
    server, url = served
    server.inject(output("SELECT count(*) FROM Genre"), output("SELECT count(GenreId) FROM Genre"), output("SELECT 1"))
    provider = OpenAIChat(base_url=url, model="m", backoff=0.01)
    answer = asyncio.run(sql.aask("how many genres", db=_chinook(), provider=provider, candidates=3, run=True, seed=10))
    assert answer.rows is not None and answer.rows.rows == [(25,)] and answer.vote.rule == "majority"
    bodies = [s.body for s in server.requests_to("/chat/completions")]
    assert sorted((b["temperature"], b.get("seed")) for b in bodies) == [(0.0, None), (0.7, 11), (0.7, 12)]


def test_candidates_need_a_database_and_a_positive_count(served) -> None:
    from constrain.errors import InputError

    _, url = served
    schema = sql.Schema.from_sqlite(_chinook())
    with pytest.raises(InputError, match="need a database"):
        sql.ask("x", db=schema, provider=_provider(url), candidates=3)
    with pytest.raises(InputError, match="at least 1"):
        sql.ask("x", db=_chinook(), provider=_provider(url), candidates=0)


def test_cli_sql_candidates_json_shows_every_candidate_and_the_vote(served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, url = served
    server.inject(output("SELECT count(*) FROM Album"), output("SELECT count(*) FROM Album AS x"), output("SELECT count(*) FROM Artist"))
    assert main(["sql", "albums", "--db", _chinook(), "-p", "openai", "--base-url", url, "--candidates", "3", "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert len(record["candidates"]) == 3 and record["vote"]["rule"] == "majority"
    assert [len(g["candidates"]) for g in record["vote"]["groups"]] == [2, 1]
    assert record["rows"] is None  # --run not given: the rows were compared, not returned
    server.inject(output("SELECT count(*) FROM Album"), output("SELECT count(*) FROM Album AS x"))
    assert main(["sql", "albums", "--db", _chinook(), "-p", "openai", "--base-url", url, "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("SELECT count(*) FROM Album") and "2 candidates, results grouped 2" in captured.err


def test_the_table_shows_floats_as_the_shell_does_and_json_keeps_them_exact(served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, url = served
    query = "SELECT SUM(Total) AS spent, 3.0 AS three, 0.1 + 0.2 AS tiny FROM Invoice WHERE CustomerId = 6"
    server.inject(output(query))
    assert main(["sql", "spent", "--db", _chinook(), "-p", "openai", "--base-url", url, "-k", "1", "--run"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[-2].split() == ["49.62", "3.0", "0.3"]
    server.inject(output(query))
    assert main(["sql", "spent", "--db", _chinook(), "-p", "openai", "--base-url", url, "-k", "1", "--run", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["rows"]["rows"] == [[49.620000000000005, 3.0, 0.30000000000000004]]


def test_the_prompt_describes_keys_and_a_few_bounded_sample_values(served) -> None:
    server, url = served
    server.inject(output("SELECT count(*) FROM Album"))
    sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=1)
    prompt = server.requests_to("/responses")[0].body["input"][0]["content"]
    assert "AlbumId INTEGER PRIMARY KEY" in prompt and "ArtistId INTEGER REFERENCES Artist(ArtistId)" in prompt
    assert "Name NVARCHAR(120)  -- e.g. 'AC/DC'\n" in prompt  # one value, of text columns only
    assert "  Milliseconds INTEGER,\n" in prompt and "  UnitPrice NUMERIC(10,2)\n" in prompt
    assert "'Embraer - Empresa Brasileira de Aeron...'" in prompt  # a long value is cut
    plain = sql.Schema.from_sqlite(_chinook())
    rich = sql.Schema.from_sqlite(_chinook(), samples=3)
    assert plain == rich and plain.describe() == rich.describe()  # samples change prompts only
    assert rich.table("InvoiceLine").primary_key == ("InvoiceLineId",)
    assert {fk.ref_table for fk in rich.table("InvoiceLine").foreign_keys} == {"Invoice", "Track"}
    server.inject(output("SELECT count(*) FROM Album"))
    sql.ask("How many albums?", db=_chinook(), provider=_provider(url), candidates=1, sample_values=0, keys=False)
    assert plain.describe() in server.requests_to("/responses")[-1].body["input"][0]["content"]


def test_a_provider_without_sampling_answers_with_one_candidate() -> None:
    from constrain.providers.base import Provider

    class Fixed(Provider):
        name = "fixed"

        def complete(self, messages, constraint, *, max_tokens=None, on_delta=None) -> Completion:  # type: ignore[no-untyped-def]
            return Completion("SELECT count(*) FROM Album", Usage(1, 1))

        async def acomplete(self, messages, constraint, *, max_tokens=None, on_delta=None) -> Completion:  # type: ignore[no-untyped-def]
            return self.complete(messages, constraint)

    answer = sql.ask("albums", db=_chinook(), provider=Fixed(), candidates=4, run=True)
    assert answer.vote is None and len(answer.result.attempts) == 1 and answer.rows.rows == [(347,)]


def test_schema_repairs_apply_the_one_change_an_error_proposes_and_say_so(served) -> None:
    server, url = served
    forgot_the_join = "SELECT FirstName, SUM(Total) AS Spent FROM Customer GROUP BY Customer.CustomerId ORDER BY Spent DESC LIMIT 5"
    server.inject(output(forgot_the_join))
    answer = sql.ask("top customers", db=_chinook(), provider=_provider(url), candidates=1, run=True)
    assert len(server.requests_to("/responses")) == 1  # repaired, not re-asked
    assert answer.result.raw == forgot_the_join and answer.query.original_text == forgot_the_join
    assert "JOIN Invoice ON Customer.CustomerId = Invoice.CustomerId" in answer.sql
    assert len(answer.query.rewrites) == 1 and answer.query.rewrites[0].startswith("schema repair: unknown column 'Total'")
    assert answer.to_dict()["rewrites"] == list(answer.query.rewrites)  # what --json prints
    with sqlite3.connect(_chinook()) as conn:  # the rows are those of the query with the join written out
        expected = conn.execute(answer.sql).fetchall()
    assert answer.rows is not None and answer.rows.rows == expected and len(expected) == 5
    # off: the model is re-asked with the error instead
    server.inject(output(forgot_the_join), output("SELECT count(*) FROM Customer"))
    answer = sql.ask("top customers", db=_chinook(), provider=_provider(url), candidates=1, run=True, schema_repairs=False)
    assert [a.ok for a in answer.result.attempts] == [False, True] and answer.query.rewrites == ()


def test_a_repair_that_does_not_lead_to_a_valid_query_leaves_the_first_error(served) -> None:
    server, url = served
    server.inject(output("SELECT FirstName, Total, Nonsense FROM Customer"))
    with pytest.raises(GenerationError) as caught:
        sql.ask("q", db=_chinook(), provider=_provider(url), candidates=1, max_attempts=1)
    error = caught.value.attempts[0].error
    assert error.name == "Total" and error.fix is not None and "Invoice" in error.fix
