"""The generate → validate → re-ask loop against the real local server (outputs scripted where a test needs them)."""

from __future__ import annotations

import asyncio
import json

import lark
import pytest
from pydantic import BaseModel, ConfigDict

import constrain
from _fault_server import drop, fault_server, output, served, status  # noqa: F401  (fixtures)
from constrain import Grammar, generate, load_grammar
from constrain.errors import GenerationError, ServerError, TruncatedError, ValidationError
from constrain.providers import Message, OpenAI, OpenAIChat

SUM = Grammar('start: NUM ("+" NUM)*\nNUM: /[0-9]{1,3}/', name="sum")


def provider(url: str) -> OpenAI:
    return OpenAI(base_url=url, model="m", backoff=0.01, max_backoff=0.02)


def test_result_value_is_the_typed_tree_raw_and_audit(served) -> None:
    _, url = served
    result = generate("add some numbers", grammar=SUM, provider=provider(url))
    assert isinstance(result.value, lark.Tree) and result.value == SUM.parse(result.raw)
    assert len(result.attempts) == 1 and result.attempts[0].ok and result.attempts[0].raw == result.raw
    assert result.usage.output_tokens > 0 and result.usage == result.attempts[0].usage
    assert result.elapsed >= result.attempts[0].elapsed > 0
    assert result.provider == "openai" and result.request_id


def test_transformer_gives_a_computed_value(served) -> None:
    _, url = served

    class Add(lark.Transformer):
        def start(self, items: list[lark.Token]) -> int:
            return sum(int(t) for t in items)

    result = generate("add", grammar=SUM.with_transformer(Add()), provider=provider(url))
    assert result.value == sum(int(n) for n in result.raw.split("+"))


def test_packaged_grammar_by_name_gives_its_typed_value(served) -> None:
    _, url = served
    result = generate("any JSON", grammar="json", provider=provider(url))
    assert result.value == json.loads(result.raw)


def test_validator_result_is_the_value(served) -> None:
    _, url = served
    result = generate("add", grammar=SUM, provider=provider(url), validator=lambda text: text.count("+"))
    assert result.value == result.raw.count("+")


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a closed object: random walks reach the required keys

    x: int
    y: int


def test_output_type_gives_a_pydantic_instance_and_reasks_on_schema_errors(served) -> None:
    server, url = served
    server.inject(output('{"x": 1}'), output('{"x": 1, "y": 2}'))
    result = generate("a point", grammar="json", output_type=Point, provider=provider(url))
    assert result.value == Point(x=1, y=2)
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[0].error.engine == "pydantic"  # type: ignore[union-attr]


def test_output_type_without_grammar_uses_json_schema_when_available(served) -> None:
    if not hasattr(constrain, "json_schema") and not _has_json_schema():
        pytest.skip("constrain.json_schema is not in this build")
    _, url = served
    result = generate("a point", output_type=Point, provider=provider(url))
    assert isinstance(result.value, Point)
    assert result.value == Point.model_validate_json(result.raw)


def _has_json_schema() -> bool:
    try:
        from constrain import json_schema  # noqa: F401
    except ImportError:
        return False
    return True


def test_invalid_output_is_reasked_with_the_located_error(served) -> None:
    server, url = served
    server.inject(output("12+x"))
    result = generate("add", grammar=SUM, provider=provider(url))
    first, second = result.attempts
    assert isinstance(first.error, ValidationError) and first.raw == "12+x" and second.ok
    error = SUM.llg_error("12+x")
    assert error is not None and first.error.offset == error.offset == 3
    # the re-ask shows the model its output and the error with its location
    sent = server.requests_to("/responses")[-1].body["input"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] == "12+x"
    assert "1:4" in sent[3]["content"] and "rejected" in sent[3]["content"]


def test_all_attempts_failing_raises_generation_error_with_every_attempt(served) -> None:
    server, url = served
    server.inject(output("a"), output("b"), output("c"))
    with pytest.raises(GenerationError) as info:
        generate("add", grammar=SUM, provider=provider(url), max_attempts=3)
    attempts = info.value.attempts
    assert [a.raw for a in attempts] == ["a", "b", "c"]
    assert all(isinstance(a.error, ValidationError) for a in attempts)
    assert len(server.requests_to("/responses")) == 3 and "3 attempt(s) failed" in str(info.value)


def test_a_refused_answer_written_again_is_not_fed_back_again_and_the_next_request_samples(served) -> None:
    server, url = served
    server.inject(output("12+x"), output("12+x"), output("12+y"), output("7"))
    chat = OpenAIChat(base_url=url, model="m", backoff=0.01)
    result = generate("add", grammar=SUM, provider=chat, max_attempts=4)
    assert [a.raw for a in result.attempts] == ["12+x", "12+x", "12+y", "7"] and result.value is not None
    sent = [s.body for s in server.requests_to("/chat/completions")]
    assert len(sent) == 4
    # the first two requests decode with the server's defaults (no sampling asked); the second carries the feedback
    assert "seed" not in sent[0] and "seed" not in sent[1]
    assert [m["role"] for m in sent[1]["messages"]] == ["system", "user", "assistant", "user"]
    # the repeat adds no second copy of the same feedback; from then on each request is a seeded sample
    assert sent[2]["messages"] == sent[1]["messages"]
    assert (sent[2]["temperature"], sent[2]["seed"]) == (0.7, 3)
    # a new refused answer is fed back as before, still sampled
    assert sent[3]["messages"][-2]["content"] == "12+y" and (sent[3]["temperature"], sent[3]["seed"]) == (0.7, 4)


def test_token_budget_bounds_the_loop(served) -> None:
    server, url = served
    server.inject(output("x" * 40), output("y" * 40), output("z"))
    with pytest.raises(GenerationError, match="token budget spent") as info:
        generate("add", grammar=SUM, provider=provider(url), max_attempts=5, max_total_tokens=20)
    assert len(info.value.attempts) == 1
    sent = server.requests_to("/responses")[0].body
    assert sent["max_output_tokens"] == 20


def test_truncation_is_its_own_error_and_is_reasked(served) -> None:
    server, url = served
    server.inject(output("123+456+789+123"), output("1"))
    result = generate("add", grammar=SUM, provider=provider(url), max_tokens=2)
    assert isinstance(result.attempts[0].error, TruncatedError)
    assert result.attempts[0].error.partial == "123+45"
    assert result.raw == "1"
    assert "token limit" in server.requests_to("/responses")[-1].body["input"][-1]["content"]


def test_streaming_violation_is_cut_and_reasked(served) -> None:
    server, url = served
    server.inject(output("12+3;drop"))
    seen: list[str] = []
    result = generate("add", grammar=SUM, provider=provider(url), on_delta=seen.append)
    first = result.attempts[0]
    assert isinstance(first.error, ValidationError) and first.error.offset == 4
    assert result.attempts[1].ok and "".join(seen).startswith("12+3") and "".join(seen).endswith(result.raw)


def test_provider_errors_propagate_after_retries(served) -> None:
    server, url = served
    server.inject(status(500), status(500), status(500))
    with pytest.raises(ServerError):
        generate("add", grammar=SUM, provider=provider(url))


def test_transient_fault_then_success(served) -> None:
    server, url = served
    server.inject(drop(), status(503))
    assert SUM.matches(generate("add", grammar=SUM, provider=provider(url)).raw)


def test_chat_provider_and_regex_syntax(served) -> None:
    _, url = served
    result = generate("a code", grammar=r"[A-Z]{3}-[0-9]{2}", syntax="regex", provider=OpenAIChat(base_url=url))
    import re

    assert re.fullmatch(r"[A-Z]{3}-[0-9]{2}", result.raw) and result.value is not None


def test_agenerate_matches_generate(served) -> None:
    server, url = served
    server.inject(output("9+"))

    async def run() -> constrain.Result:
        p = provider(url)
        try:
            return await constrain.agenerate([Message("user", "add")], grammar=SUM, provider=p)
        finally:
            await p.aclose()

    result = asyncio.run(run())
    assert not result.attempts[0].ok and result.attempts[1].ok
    assert result.value == SUM.parse(result.raw)


def test_bad_arguments() -> None:
    with pytest.raises(constrain.InputError):
        generate("", grammar=SUM, provider=OpenAI(base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(constrain.InputError):
        generate("x", provider=OpenAI(base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(constrain.InputError):
        generate("x", grammar=SUM, provider=OpenAI(base_url="http://127.0.0.1:9/v1"), max_attempts=0)
    with pytest.raises(constrain.GrammarError):
        generate("x", grammar="no/such/grammar", provider=OpenAI(base_url="http://127.0.0.1:9/v1"))


def test_result_serialises_for_audit(served) -> None:
    server, url = served
    server.inject(output("1+"))
    result = generate("add", grammar=SUM, provider=provider(url))
    record = result.to_dict()
    json.dumps(record)
    assert record["attempts"][0]["error"]["type"] == "ValidationError"
    assert record["attempts"][0]["error"]["offset"] == 2 and record["attempts"][1]["ok"]


# -- constrain.sql.ask and the CLI ------------------------------------------------------------------
def _chinook() -> str:
    from conftest import corpus

    return str(corpus("chinook", "Chinook_Sqlite.sqlite"))


def test_sql_ask_validates_runs_and_reasks(served) -> None:
    from constrain import sql

    server, url = served
    server.inject(output("SELECT count(*) FROM NoSuchTable"), output("SELECT count(*) FROM Album"))
    answer = sql.ask("How many albums are there?", db=_chinook(), provider=provider(url), run=True)
    assert answer.sql == "SELECT count(*) FROM Album" and answer.query.tables == ("Album",)
    assert answer.rows is not None and answer.rows.rows == [(347,)] and not answer.rows.truncated
    first = answer.result.attempts[0]
    assert isinstance(first.error, ValidationError) and answer.result.attempts[1].ok
    sent = server.requests_to("/responses")
    described = sql.Schema.from_sqlite(_chinook(), samples=3).describe(keys=True, samples=True)
    assert described in sent[0].body["input"][0]["content"]
    assert sent[0].body["tools"][0]["name"] == "sql_query"
    assert sent[0].body["tools"][0]["format"]["definition"] == sql.grammar("sqlite", sql.Schema.from_sqlite(_chinook())).text
    assert sent[1].body["input"][-2]["content"] == "SELECT count(*) FROM NoSuchTable"


def test_sql_ask_policy_refusal_is_reasked(served) -> None:
    from constrain import sql
    from constrain.errors import PolicyError

    server, url = served
    server.inject(output("SELECT Name FROM Artist; SELECT 1"), output("SELECT Name FROM Artist"))
    answer = sql.ask("artists", db=_chinook(), provider=provider(url), run=True, max_rows=5)
    assert isinstance(answer.result.attempts[0].error, (PolicyError, ValidationError))
    assert answer.rows is not None and len(answer.rows.rows) == 5 and answer.rows.truncated


def test_cli_generate_human_and_json(served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, url = served
    server.inject(output("[1,"), output('{"k": [true]}'))
    assert main(["generate", "--grammar", "json", "x", "--provider", "openai", "--base-url", url]) == 0
    assert capsys.readouterr().out == '{"k": [true]}\n'
    server.inject(output("oops"), output("[1, 2]"))
    assert main(["generate", "-g", "json", "x", "-p", "openai", "--base-url", url, "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["ok"] and record["output"] == "[1, 2]" and not record["attempts"][0]["ok"]
    assert "attempt 1 rejected" in captured.err


def test_cli_generate_stream_and_failure(served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, url = served
    server.inject(output('{"a": 1}'))
    assert main(["generate", "-g", "json", "x", "-p", "openai", "--base-url", url, "--stream"]) == 0
    assert capsys.readouterr().out == '{"a": 1}\n'
    server.inject(output("no"), output("nope"))
    code = main(["generate", "-g", "json", "x", "-p", "openai", "--base-url", url, "--max-attempts", "2", "--json"])
    assert code == 1
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["ok"] is False and [a["raw"] for a in record["attempts"]] == ["no", "nope"]


def test_cli_sql_run(served, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    server, url = served
    server.inject(output("SELECT Name FROM Genre ORDER BY Name LIMIT 3"))
    assert main(["sql", "three genres", "--db", _chinook(), "--provider", "openai", "--base-url", url, "--run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "SELECT Name FROM Genre ORDER BY Name LIMIT 3"
    assert out[2].strip() == "Name" and out[-1] == "(3 rows)"
    server.inject(output("SELECT GenreId FROM Genre LIMIT 2"))
    assert main(["sql", "ids", "--db", _chinook(), "-p", "openai", "--base-url", url, "--run", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["rows"] == {"columns": ["GenreId"], "rows": [[1], [2]], "truncated": False}


def test_cli_provider_from_environment(served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from constrain.cli import main

    server, url = served
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CONSTRAIN_PROVIDER", raising=False)
    monkeypatch.setenv("CONSTRAIN_BASE_URL", url)
    server.inject(output("true"))
    assert main(["generate", "-g", "json", "x"]) == 0
    assert capsys.readouterr().out == "true\n" and len(server.requests_to("/responses")) == 1


def test_sql_ask_feeds_back_a_query_sqlite_refuses_at_run_time(served) -> None:
    from constrain import sql

    server, url = served
    server.inject(output("SELECT Name FROM Artist WHERE count(*) > 1"), output("SELECT count(*) FROM Artist"))
    answer = sql.ask("how many artists", db=_chinook(), provider=provider(url), run=True)
    first = answer.result.attempts[0].error
    assert isinstance(first, ValidationError) and "misuse of aggregate" in str(first)
    assert answer.rows is not None and answer.rows.rows == [(275,)]
    assert "misuse of aggregate" in server.requests_to("/responses")[-1].body["input"][-1]["content"]
