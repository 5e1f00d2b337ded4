"""Resilience against a real local server that injects faults: retries, backoff, typed errors, no key leaks."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from _fault_server import drop, fault_server, malformed, served, status, truncate  # noqa: F401  (fixtures)
from _fault_server import delay as slow
from constrain import Grammar
from constrain.errors import (
    AuthenticationError,
    BadRequestError,
    GrammarRejectedError,
    NotFoundError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from constrain.providers import Constraint, Message, OpenAI, OpenAIChat

KEY = "sk-test-Very-Secret-Key-0123456789"
GRAMMAR = Grammar('start: "id-" DIGITS\nDIGITS: /[0-9]{1,6}/', name="ids")
MESSAGES = [Message("user", "give me an id")]


def provider(url: str, **options: object) -> OpenAI:
    settings = {"timeout": 2.0, "max_retries": 2, "backoff": 0.01, "max_backoff": 0.05, "seed": 7} | options
    return OpenAI(base_url=url, api_key=KEY, model="m", **settings)  # type: ignore[arg-type]


def call(url: str, **options: object) -> str:
    return provider(url, **options).complete(MESSAGES, Constraint(GRAMMAR)).text


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_retried_then_succeed(served, code: int) -> None:
    server, url = served
    server.inject(status(code), status(code))
    text = call(url)
    assert GRAMMAR.matches(text)
    assert len(server.requests_to("/responses")) == 3


def test_server_error_after_retries_is_typed_with_status_message_and_request_id(served) -> None:
    server, url = served
    server.inject(*(status(503, "engine overloaded") for _ in range(3)))
    with pytest.raises(ServerError) as info:
        call(url)
    assert info.value.status == 503
    assert info.value.server_message == "engine overloaded"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert len(server.requests_to("/responses")) == 3  # 1 + max_retries


def test_rate_limit_honours_retry_after(served) -> None:
    server, url = served
    server.inject(status(429, "slow down", retry_after="0.4"))
    started = time.perf_counter()
    call(url, backoff=0.001, max_backoff=0.001)
    assert time.perf_counter() - started >= 0.4
    assert len(server.requests_to("/responses")) == 2


def test_rate_limit_honours_retry_after_ms_over_retry_after(served) -> None:
    server, url = served
    server.inject(status(429, "slow down", retry_after="30", retry_after_ms="250"))
    started = time.perf_counter()
    call(url, backoff=0.001, max_backoff=0.001)
    elapsed = time.perf_counter() - started
    assert 0.25 <= elapsed < 5


def test_rate_limit_exhausted_raises_rate_limit_error(served) -> None:
    server, url = served
    server.inject(*(status(429, "quota", retry_after="0") for _ in range(2)))
    with pytest.raises(RateLimitError) as info:
        call(url, max_retries=1)
    assert info.value.status == 429 and info.value.retry_after == 0


@pytest.mark.parametrize(
    ("code", "error"),
    [(400, BadRequestError), (401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError)],
)
def test_client_errors_are_not_retried(served, code: int, error: type[Exception]) -> None:
    server, url = served
    server.inject(status(code, "nope"))
    with pytest.raises(error) as info:
        call(url)
    assert not isinstance(info.value, GrammarRejectedError)
    assert len(server.requests_to("/responses")) == 1


def test_grammar_rejected_by_the_server_points_at_constrain_check(served) -> None:
    server, url = served
    bad = Grammar('start: A\nA: /(?=a)a/', name="lookahead")  # lark builds it; llguidance refuses lookaround
    with pytest.raises(GrammarRejectedError) as info:
        provider(url).complete(MESSAGES, Constraint(bad))
    assert info.value.status == 400
    assert "constrain check lookahead" in str(info.value)
    assert "grammar" in (info.value.server_message or "").lower()
    assert len(server.requests_to("/responses")) == 1


def test_slow_response_times_out_and_is_retried(served) -> None:
    server, url = served
    server.inject(slow(1.0))
    text = call(url, timeout=0.3)
    assert GRAMMAR.matches(text)
    assert len(server.requests_to("/responses")) == 2


def test_always_slow_raises_timeout_error(served) -> None:
    server, url = served
    server.inject(slow(1.0), slow(1.0))
    with pytest.raises(ProviderTimeoutError) as info:
        call(url, timeout=0.2, max_retries=1)
    assert "0.2s" in str(info.value)


def test_dropped_connection_is_retried(served) -> None:
    server, url = served
    server.inject(drop())
    assert GRAMMAR.matches(call(url))
    assert len(server.requests_to("/responses")) == 2


def test_dropped_connections_exhausted_raise_connection_error(served) -> None:
    server, url = served
    server.inject(drop(), drop())
    with pytest.raises(ProviderConnectionError):
        call(url, max_retries=1)


def test_truncated_body_is_a_connection_error_and_is_retried(served) -> None:
    server, url = served
    server.inject(truncate())
    assert GRAMMAR.matches(call(url))
    server.inject(truncate())
    with pytest.raises(ProviderConnectionError):
        call(url, max_retries=0)


def test_malformed_json_is_a_format_error_not_retried(served) -> None:
    server, url = served
    server.inject(malformed())
    with pytest.raises(ResponseFormatError) as info:
        call(url)
    assert "not valid JSON" in str(info.value)
    assert len(server.requests_to("/responses")) == 1


def test_chat_provider_retries_the_same_way(served) -> None:
    server, url = served
    server.inject(status(502), drop())
    chat = OpenAIChat(base_url=url, api_key=KEY, timeout=2.0, backoff=0.01, max_backoff=0.02)
    assert GRAMMAR.matches(chat.complete(MESSAGES, Constraint(GRAMMAR)).text)
    assert len(server.requests_to("/chat/completions")) == 3


def test_async_client_retries_and_maps_errors(served) -> None:
    server, url = served
    server.inject(status(500), drop(), status(404, "no such model"))

    async def run() -> None:
        p = provider(url)
        try:
            with pytest.raises(NotFoundError) as info:
                await p.acomplete(MESSAGES, Constraint(GRAMMAR))
            assert info.value.server_message == "no such model"
            completion = await p.acomplete(MESSAGES, Constraint(GRAMMAR))
            assert GRAMMAR.matches(completion.text)
        finally:
            await p.aclose()

    asyncio.run(run())
    assert len(server.requests_to("/responses")) == 4


def test_backoff_grows_exponentially_within_jitter(served) -> None:
    server, url = served
    server.inject(status(500), status(500))
    started = time.perf_counter()
    call(url, backoff=0.1, max_backoff=10.0)
    # delays 0.1 and 0.2, each within +/-25 %: at least 0.225 s in total
    assert time.perf_counter() - started >= 0.225


def test_the_key_never_appears_in_errors_reprs_or_logs(served, caplog: pytest.LogCaptureFixture) -> None:
    server, url = served
    caplog.set_level(logging.DEBUG)
    p = provider(url)
    assert KEY not in repr(p) and KEY not in str(vars(p))
    server.inject(status(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(AuthenticationError) as info:
        p.complete(MESSAGES, Constraint(GRAMMAR))
    for error in (info.value,):
        assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(vars(error))
    server.inject(status(500, f"echo {KEY}"), status(500, f"echo {KEY}"), status(500, f"echo {KEY}"))
    with pytest.raises(ServerError) as info2:
        p.complete(MESSAGES, Constraint(GRAMMAR))
    assert KEY not in str(info2.value)
    p.complete(MESSAGES, Constraint(GRAMMAR))  # a success logs too
    assert caplog.records, "expected retry warnings and debug lines"
    assert all(KEY not in r.getMessage() for r in caplog.records)
    # the key did travel, in the header only
    assert server.seen[-1].headers["authorization"] == f"Bearer {KEY}"
