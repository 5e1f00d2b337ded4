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
