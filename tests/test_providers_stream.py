"""Streaming over SSE (Responses events, Chat Completions chunks): deltas checked against the grammar as they
arrive, cut at the first bad byte."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from _fault_server import drop, fault_server, output, served  # noqa: F401  (fixtures)
from constrain import Grammar
from constrain.errors import ProviderConnectionError, RateLimitError, ServerError, ValidationError
from constrain.providers import VLLM, Constraint, LlamaCppServer, Message, OpenAI, OpenAIChat, SGLang

GRAMMAR = Grammar('start: "SELECT " COL (", " COL)* " FROM t"\nCOL: /[a-zé]{1,8}/', name="tiny-sql")
MESSAGES = [Message("user", "columns of t?")]


def stream(url: str, **options: object) -> tuple[list[str], object]:
    deltas: list[str] = []
    provider = OpenAI(base_url=url, backoff=0.01, max_backoff=0.02, **options)  # type: ignore[arg-type]
    completion = provider.complete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
    return deltas, completion


def test_stream_delivers_deltas_that_join_to_the_output(served) -> None:
    server, url = served
    deltas, completion = stream(url)
    assert server.requests_to("/responses")[-1].body["stream"] is True
    assert len(deltas) > 1 and "".join(deltas) == completion.text  # type: ignore[attr-defined]
    assert GRAMMAR.matches(completion.text)  # type: ignore[attr-defined]
    assert completion.usage.output_tokens == len(deltas)  # type: ignore[attr-defined]


def test_stream_and_plain_request_give_the_same_answer(served) -> None:
    _, url = served
    _, streamed = stream(url)
    plain = OpenAI(base_url=url).complete(MESSAGES, Constraint(GRAMMAR))
    assert streamed.text == plain.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider_class", [OpenAI, VLLM], ids=lambda c: c.name)
@pytest.mark.parametrize("bad", ["SELECT ab, c FROM t!", "SELECT ab; DROP", "SELECT é, Ü FROM t", "DELETE"])
def test_stream_leaving_the_grammar_is_cut_at_the_first_bad_byte(served, bad: str, provider_class) -> None:
    server, url = served
    server.inject(output(bad))
    deltas: list[str] = []
    with pytest.raises(ValidationError) as info:
        provider_class(base_url=url).complete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
    data = bad.encode("utf-8")
    expected_offset = GRAMMAR._llg().prefix_ok(data)
    assert info.value.offset == expected_offset
    valid_prefix = data[:expected_offset].decode("utf-8", errors="ignore")  # whole characters only
    assert "".join(deltas) == valid_prefix  # the caller saw only the valid prefix
    assert info.value.engine == "llguidance" and "cut at byte" in str(info.value)
    assert info.value.line == 1 and info.value.column == len(valid_prefix) + 1


def test_stream_truncated_by_max_output_tokens_is_reported_as_length(served) -> None:
    server, url = served
    server.inject(output("SELECT abcdefgh, abcdefgh, abcdefgh FROM t"))
    deltas, completion = stream(url)
    assert completion.finish_reason == "stop"  # type: ignore[attr-defined]
    server.inject(output("SELECT abcdefgh, abcdefgh, abcdefgh FROM t"))
    p = OpenAI(base_url=url)
    completion = p.complete(MESSAGES, Constraint(GRAMMAR), max_tokens=3, on_delta=lambda d: None)
    assert completion.finish_reason == "length" and completion.raw["incomplete_details"]["reason"] == "max_output_tokens"
    assert completion.text == "SELECT ab"  # three 3-character pieces from the scripted backend


def test_stream_dropped_before_any_delta_is_retried(served) -> None:
    server, url = served
    server.inject(drop())
    deltas, completion = stream(url)
    assert "".join(deltas) == completion.text  # type: ignore[attr-defined]
    assert len(server.requests_to("/responses")) == 2


@pytest.mark.parametrize("provider_class", [OpenAI, LlamaCppServer], ids=lambda c: c.name)
def test_async_stream(served, provider_class) -> None:
    _, url = served

    async def run() -> tuple[list[str], str]:
        deltas: list[str] = []
        p = provider_class(base_url=url)
        completion = await p.acomplete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
        await p.aclose()
        return deltas, completion.text

    deltas, text = asyncio.run(run())
    assert "".join(deltas) == text and GRAMMAR.matches(text)


def test_stream_that_ends_without_completion_is_a_connection_error() -> None:
    sse = (
        'event: response.output_item.added\ndata: {"type":"response.output_item.added","item":{"type":"custom_tool_call","id":"ctc_1","name":"emit","input":""}}\n\n'
        'event: response.custom_tool_call_input.delta\ndata: {"type":"response.custom_tool_call_input.delta","item_id":"ctc_1","delta":"SELECT a"}\n\n'
    )
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"}))
    deltas: list[str] = []
    with pytest.raises(ProviderConnectionError, match="before response.completed"):
        OpenAI(base_url="http://unused.invalid/v1", transport=transport, max_retries=0).complete(
            MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append
        )
    assert deltas == ["SELECT a"]


# -- Chat Completions streaming (vLLM, llama.cpp, SGLang): chat.completion.chunk events ----------------
CHAT_STREAMERS = [VLLM, LlamaCppServer, SGLang]


@pytest.mark.parametrize("provider_class", CHAT_STREAMERS, ids=lambda c: c.name)
def test_chat_stream_delivers_checked_deltas_and_usage(served, provider_class) -> None:
    server, url = served
    deltas: list[str] = []
    completion = provider_class(base_url=url).complete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
    body = server.requests_to("/chat/completions")[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(deltas) > 1 and "".join(deltas) == completion.text and GRAMMAR.matches(completion.text)
    assert completion.usage.output_tokens == len(deltas) and completion.usage.input_tokens > 0
    assert completion.finish_reason == "stop"
    plain = provider_class(base_url=url).complete(MESSAGES, Constraint(GRAMMAR))
    assert plain.text == completion.text  # the same deterministic answer, streamed or not


def test_chat_stream_cut_by_max_tokens_is_reported_as_length(served) -> None:
    server, url = served
    server.inject(output("SELECT abcdefgh, abcdefgh, abcdefgh FROM t"))
    completion = VLLM(base_url=url).complete(MESSAGES, Constraint(GRAMMAR), max_tokens=3, on_delta=lambda d: None)
    assert completion.finish_reason == "length" and completion.text == "SELECT ab"


def _chat_sse(*chunks: str) -> httpx.MockTransport:
    sse = "".join(f"data: {c}\n\n" for c in chunks)
    return httpx.MockTransport(lambda r: httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"}))


def test_chat_stream_without_a_finish_reason_is_a_connection_error() -> None:
    transport = _chat_sse('{"choices":[{"index":0,"delta":{"content":"SELECT a"},"finish_reason":null}]}')
    deltas: list[str] = []
    with pytest.raises(ProviderConnectionError, match="before a finish_reason"):
        VLLM(base_url="http://unused.invalid/v1", transport=transport, max_retries=0).complete(
            MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append
        )
    assert deltas == ["SELECT a"]


@pytest.mark.parametrize(("chunk", "error"), [
    ('{"error":{"message":"slow down","type":"requests","code":429}}', RateLimitError),
    ('{"object":"error","message":"engine died","type":"InternalServerError","code":500}', ServerError),
])
def test_chat_stream_error_chunk_is_a_typed_error_with_the_servers_message(chunk: str, error: type) -> None:
    transport = _chat_sse('{"choices":[{"index":0,"delta":{"content":"SELECT a"},"finish_reason":null}]}', chunk)
    with pytest.raises(error) as info:
        VLLM(base_url="http://unused.invalid/v1", transport=transport, max_retries=0).complete(
            MESSAGES, Constraint(GRAMMAR), on_delta=lambda d: None
        )
    assert info.value.server_message and info.value.server_message.split(" (")[0] in chunk


def test_openai_chat_custom_tools_are_not_streamed(served) -> None:
    server, url = served
    deltas: list[str] = []
    completion = OpenAIChat(base_url=url, api_key="k").complete(MESSAGES, Constraint(GRAMMAR), on_delta=deltas.append)
    assert "stream" not in server.requests_to("/chat/completions")[-1].body
    assert deltas == [completion.text]  # the whole answer, once
