"""What each provider puts on the wire and reads back, checked against the real local server's log."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from _fault_server import fault_server, served  # noqa: F401  (fixtures)
from constrain import Grammar, load_grammar
from constrain.errors import AuthenticationError, InputError, ResponseFormatError
from constrain.providers import (
    PROVIDERS,
    AzureOpenAI,
    Constraint,
    LlamaCppServer,
    Message,
    OpenAI,
    OpenAIChat,
    SGLang,
    VLLM,
    choose,
    get,
)

GRAMMAR = Grammar('start: "SELECT " COL (", " COL)* " FROM t"\nCOL: /[a-z]{1,8}/', name="tiny-sql")
MESSAGES = [Message("system", "be terse"), Message("user", "columns of t?")]


def test_openai_sends_a_forced_custom_grammar_tool(served) -> None:
    server, url = served
    p = OpenAI("gpt-test", base_url=url, api_key="k", reasoning_effort="low")
    completion = p.complete(MESSAGES, Constraint(GRAMMAR, name="sql", description="one query"), max_tokens=64)
    body = server.requests_to("/responses")[-1].body
    assert body["tools"] == [
        {"type": "custom", "name": "sql", "description": "one query",
         "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR.text}}
    ]
    assert body["tool_choice"] == {"type": "custom", "name": "sql"}
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "low"}
    assert body["model"] == "gpt-test" and body["max_output_tokens"] == 64
    assert body["input"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "columns of t?"}]
    assert "stream" not in body
    # the server put a reasoning item first; the call was found by type
    assert [item["type"] for item in completion.raw["output"]] == ["reasoning", "custom_tool_call"]
    assert completion.text == completion.raw["output"][1]["input"]
    assert GRAMMAR.matches(completion.text)
    assert completion.usage.output_tokens == completion.raw["usage"]["output_tokens"] > 0
    assert completion.usage.input_tokens == completion.raw["usage"]["input_tokens"] > 0
    assert completion.request_id is not None and completion.finish_reason == "stop"


def test_openai_regex_constraint_sends_the_bare_regex(served) -> None:
    server, url = served
    constraint = Constraint.regex(r"[0-9]{3}-[a-z]{2}")
    completion = OpenAI(base_url=url).complete(MESSAGES, constraint)
    fmt = server.requests_to("/responses")[-1].body["tools"][0]["format"]
    assert fmt == {"type": "grammar", "syntax": "regex", "definition": r"[0-9]{3}-[a-z]{2}"}
    assert constraint.grammar.matches(completion.text)
    assert constraint.grammar.parse(completion.text)  # the local Lark twin accepts it as well


def test_output_is_found_by_type_not_by_index() -> None:
    body = {"id": "r", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "thinking aloud"}]},
        {"type": "custom_tool_call", "name": "other", "input": "x"},
        {"type": "custom_tool_call", "name": "emit", "input": "SELECT a FROM t"},
    ], "usage": {"input_tokens": 5, "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 2}}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body, headers={"x-request-id": "abc"}))
    p = OpenAI(base_url="http://unused.invalid/v1", transport=transport)
    completion = p.complete(MESSAGES, Constraint(GRAMMAR))
    assert completion.text == "SELECT a FROM t"
    assert completion.usage.reasoning_tokens == 2 and completion.request_id == "abc"
    body["output"] = body["output"][:2]
    with pytest.raises(ResponseFormatError, match="output item types: reasoning, message"):
        p.complete(MESSAGES, Constraint(GRAMMAR))


def test_async_transport_is_injectable() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"output": [{"type": "custom_tool_call", "name": "emit", "input": "SELECT b FROM t"}]})

    p = OpenAI(base_url="http://unused.invalid/v1", transport=httpx.MockTransport(answer))
    completion = asyncio.run(p.acomplete(MESSAGES, Constraint(GRAMMAR)))
    assert completion.text == "SELECT b FROM t" and len(seen) == 1


def test_chat_uses_the_nested_custom_tool_shape(served) -> None:
    server, url = served
    completion = OpenAIChat("gpt-test", base_url=url).complete(MESSAGES, Constraint(GRAMMAR), max_tokens=50)
    body = server.requests_to("/chat/completions")[-1].body
    assert body["tools"] == [{"type": "custom", "custom": {
        "name": "emit", "description": Constraint.description,
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": GRAMMAR.text}}}}]
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "emit"}}
    assert body["max_completion_tokens"] == 50 and body["messages"][1]["content"] == "columns of t?"
    call = completion.raw["choices"][0]["message"]["tool_calls"][0]
    assert call["type"] == "custom" and completion.text == call["custom"]["input"]
    assert GRAMMAR.matches(completion.text)


def test_vllm_sends_structured_outputs_never_guided_grammar(served) -> None:
    server, url = served
    completion = VLLM("served-model", base_url=url).complete(MESSAGES, Constraint(GRAMMAR), max_tokens=40)
    body = server.requests_to("/chat/completions")[-1].body
    assert body["structured_outputs"] == {"grammar": GRAMMAR.text}
    assert not any(key.startswith("guided") for key in body) and "tools" not in body
    assert body["max_tokens"] == 40
    assert GRAMMAR.matches(completion.text)


def test_gbnf_providers_send_the_converted_grammar(served) -> None:
    if not hasattr(Grammar, "to_gbnf"):
        pytest.skip("Grammar.to_gbnf (the Lark-to-GBNF converter) is not in this build")
    server, url = served
    for cls, field in ((LlamaCppServer, "grammar"), (SGLang, "ebnf")):
        completion = cls(base_url=url).complete(MESSAGES, Constraint(GRAMMAR))
        body = server.requests_to("/chat/completions")[-1].body
        assert body[field] == GRAMMAR.to_gbnf() and "::=" in body[field]
        assert GRAMMAR.matches(completion.text), cls.name


def test_azure_sends_api_key_header_and_api_version(served) -> None:
    server, url = served
    AzureOpenAI("deployment", base_url=url, api_key="azure-key").complete(MESSAGES, Constraint(GRAMMAR))
    seen = server.requests_to("/responses")[-1]
    assert seen.headers["api-key"] == "azure-key" and "authorization" not in seen.headers
    assert seen.query == "api-version=preview"


def test_openai_without_a_key_for_the_public_endpoint_fails_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        OpenAI()


def test_registry_and_environment_choice(served) -> None:
    _, url = served
    assert choose("vllm", {}) == "vllm"
    assert choose(None, {"CONSTRAIN_PROVIDER": "sglang", "OPENAI_API_KEY": "k"}) == "sglang"
    assert choose(None, {"OPENAI_API_KEY": "k"}) == "openai"
    assert choose(None, {"CONSTRAIN_BASE_URL": url}) == "openai"
    assert choose(None, {}) == "local"
    assert choose(None, {}, base_url=url) == "openai"  # a server URL speaks the OpenAI wire format
    assert choose(None, {"CONSTRAIN_PROVIDER": "vllm"}, base_url=url) == "vllm"
    with pytest.raises(InputError, match="'local' takes no base_url option"):
        get("local", base_url=url)  # not a TypeError from deep inside
    p = get("openai-chat", base_url=url, model="m")
    assert isinstance(p, OpenAIChat) and p.model == "m"
    for name in PROVIDERS:
        assert PROVIDERS[name].startswith("constrain.providers.")
    with pytest.raises(InputError, match="known providers"):
        get("nonesuch")


def test_packaged_json_grammar_round_trip(served) -> None:
    _, url = served
    grammar = load_grammar("json")
    completion = OpenAI(base_url=url).complete(MESSAGES, Constraint(grammar))
    assert grammar.parse_typed(completion.text) == json.loads(completion.text)


def test_non_streaming_provider_hands_the_whole_text_to_on_delta(served) -> None:
    _, url = served
    deltas: list[str] = []
    completion = OpenAIChat(base_url=url).complete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
    assert deltas == [completion.text]
