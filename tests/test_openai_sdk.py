"""Bring your own openai client: the real ``openai`` package pointed at ``constrain serve`` (a subprocess on
127.0.0.1) and at the test server, for ``generate`` / ``agenerate``, ``sql.ask`` / ``sql.aask``,
``run_batch``, and the ``openai_tools`` / ``parse_openai`` helpers on the SDK's own response objects."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

openai = pytest.importorskip("openai")

import constrain  # noqa: E402
from _fault_server import FaultServer, fault_server, output, served, status  # noqa: E402,F401  (fixtures)
from constrain import Grammar, sql  # noqa: E402
from constrain.batch import run_batch  # noqa: E402
from constrain.errors import (  # noqa: E402
    AuthenticationError,
    InputError,
    ProviderConnectionError,
    ResponseFormatError,
    ServerError,
    TruncatedError,
    ValidationError,
)
from constrain.generate import guide  # noqa: E402
from constrain.providers import OpenAI, OpenAIChat, OpenAISDK, OpenAISDKChat, from_env, from_openai_client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-SDK-never-shown-7531"
GRAMMAR = Grammar('start: "SELECT " COL (", " COL)* " FROM t"\nCOL: /[a-z]{1,8}/', name="tiny-sql",
                  description="One SELECT of lowercase columns from t.", examples=["SELECT a, b FROM t"])


def sdk(url: str, **kwargs: Any) -> Any:
    return openai.OpenAI(base_url=url, api_key=kwargs.pop("api_key", KEY), **kwargs)


def async_sdk(url: str, **kwargs: Any) -> Any:
    return openai.AsyncOpenAI(base_url=url, api_key=kwargs.pop("api_key", KEY), **kwargs)


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``constrain serve`` (random-walk backend: no model download) on a free port, requiring ``KEY``."""
    env = {**os.environ, "CONSTRAIN_SDK_TEST_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "constrain", "serve", "--backend", "random-walk", "--port", "0",
             "--api-key-env", "CONSTRAIN_SDK_TEST_KEY"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first line says where it listens
        if not line.startswith("listening on http://127.0.0.1:"):
            pytest.fail(f"constrain serve did not start: {line!r} {log.read_text()}")
        yield line.split()[2]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# -- through the client: the same bodies, the client's transport ---------------------------------------
def test_the_client_sends_exactly_the_http_providers_bodies(served: tuple[FaultServer, str]) -> None:
    server, url = served
    constrain.generate("columns of t?", grammar=GRAMMAR, provider=OpenAI("m", base_url=url, api_key=KEY), max_tokens=40)
    constrain.generate("columns of t?", grammar=GRAMMAR, provider=OpenAISDK(sdk(url), "m"), max_tokens=40)
    ours, theirs = server.requests_to("/responses")
    assert ours.path == theirs.path == "/v1/responses"
    assert theirs.body == ours.body and theirs.body["tools"][0]["description"] == guide(GRAMMAR)
    assert theirs.headers["authorization"] == f"Bearer {KEY}"
    assert "x-stainless-package-version" in theirs.headers and "x-stainless-package-version" not in ours.headers

    constrain.generate("columns of t?", grammar=GRAMMAR, provider=OpenAIChat("m", base_url=url, api_key=KEY))
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=from_openai_client(sdk(url), api="chat", model="m"))
    ours, theirs = server.requests_to("/chat/completions")
    assert theirs.body == ours.body and theirs.body["tools"][0]["custom"]["name"] == "emit"
    assert result.provider == "openai-chat" and GRAMMAR.matches(result.raw)


def test_generate_takes_the_client_as_provider(served: tuple[FaultServer, str]) -> None:
    server, url = served
    server.inject(output("SELECT A FROM t"), output("SELECT a, bc FROM t"))
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(url))
    assert result.raw == "SELECT a, bc FROM t" and result.provider == "openai" and result.model == "gpt-5-mini"
    assert [c.value for c in result.value.children] == ["a", "bc"]
    first = result.attempts[0].error
    assert isinstance(first, ValidationError) and (first.line, first.column) == (1, 8)
    # the re-ask went through the client too, with the validator's located error
    reask = server.requests_to("/responses")[-1]
    assert "1:8" in reask.body["input"][-1]["content"] and "x-stainless-lang" in reask.headers


def test_streaming_through_the_client_is_checked_as_it_arrives(served: tuple[FaultServer, str]) -> None:
    server, url = served
    server.inject(output("SELECT ab, 9 FROM t"))
    deltas: list[str] = []
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(url), on_delta=deltas.append)
    assert all(s.body["stream"] is True for s in server.requests_to("/responses"))
    cut = result.attempts[0].error
    assert isinstance(cut, ValidationError) and cut.offset == len("SELECT ab, ")
    # the caller saw the valid prefix of the refused answer, then the whole accepted one
    assert "".join(deltas) == "SELECT ab, " + result.raw and result.attempts[1].ok


def test_the_clients_retries_apply_and_none_are_added(served: tuple[FaultServer, str]) -> None:
    server, url = served
    server.inject(status(503, "busy", retry_after_ms="1"))
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(url, max_retries=2))
    first, second = server.requests_to("/responses")
    assert second.headers.get("x-stainless-retry-count") == "1" and GRAMMAR.matches(result.raw)
    server.reset()
    server.inject(status(503, "busy", retry_after_ms="1"))
    with pytest.raises(ServerError) as caught:
        constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(url, max_retries=0))
    assert len(server.requests_to("/responses")) == 1  # the client's max_retries=0 is the whole budget
    assert caught.value.status == 503 and caught.value.server_message == "busy"


def test_async_client(served: tuple[FaultServer, str]) -> None:
    server, url = served
    client = async_sdk(url)

    async def both() -> list[constrain.Result[Any]]:
        return list(await asyncio.gather(*(constrain.agenerate(f"q{i}", grammar=GRAMMAR, provider=client) for i in range(4))))

    results = asyncio.run(both())
    assert all(GRAMMAR.matches(r.raw) for r in results) and len(server.requests_to("/responses")) == 4
    assert all(s.headers.get("x-stainless-async", "false") != "false" for s in server.requests_to("/responses"))
    # a sync call cannot drive an AsyncOpenAI client: it says what to use instead, and sends nothing
    with pytest.raises(InputError, match="agenerate"):
        constrain.generate("q", grammar=GRAMMAR, provider=async_sdk(url))
    assert len(server.requests_to("/responses")) == 4
    # its connections belong to that (ended) loop: another loop is refused before anything is sent
    with pytest.raises(InputError, match="event loop that has ended"):
        asyncio.run(constrain.agenerate("q", grammar=GRAMMAR, provider=client))
    provider = OpenAISDK(async_sdk(url))  # one provider, two loops: the same
    assert GRAMMAR.matches(asyncio.run(constrain.agenerate("q", grammar=GRAMMAR, provider=provider)).raw)
    with pytest.raises(InputError, match="event loop that has ended"):
        asyncio.run(constrain.agenerate("q", grammar=GRAMMAR, provider=provider))
    # a sync client serves async calls from a worker thread
    result = asyncio.run(constrain.agenerate("q", grammar=GRAMMAR, provider=sdk(url)))
    assert GRAMMAR.matches(result.raw) and len(server.requests_to("/responses")) == 6


def test_azure_client(served: tuple[FaultServer, str]) -> None:
    server, url = served
    client = openai.AzureOpenAI(base_url=url, api_key=KEY, api_version="2025-04-01-preview")
    with pytest.raises(InputError, match="deployment name"):
        from_openai_client(client)
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=from_openai_client(client, model="my-deployment"))
    seen = server.requests_to("/responses")[-1]
    assert seen.headers["api-key"] == KEY and "api-version=2025-04-01-preview" in seen.query
    assert seen.body["model"] == "my-deployment" and GRAMMAR.matches(result.raw)


# -- constrain serve --------------------------------------------------------------------------------
def test_against_constrain_serve(serve_url: str) -> None:
    result = constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(serve_url))
    assert GRAMMAR.matches(result.raw) and result.attempts[-1].request_id
    deltas: list[str] = []
    streamed = constrain.generate("columns of t?", grammar=GRAMMAR, provider=sdk(serve_url), on_delta=deltas.append)
    assert "".join(deltas) == streamed.raw and len(deltas) > 1
    chat = constrain.generate("columns?", grammar=GRAMMAR, provider=from_openai_client(sdk(serve_url), api="chat"))
    assert GRAMMAR.matches(chat.raw)
    value = asyncio.run(constrain.agenerate("a number", grammar="json", provider=async_sdk(serve_url)))
    assert json.loads(value.raw) == value.value
    # the server wants KEY: another key is refused, and never shown
    wrong = "sk-wrong-key-0000-NEVER-SHOWN"
    with pytest.raises(AuthenticationError) as caught:
        constrain.generate("q", grammar=GRAMMAR, provider=sdk(serve_url, api_key=wrong))
    assert caught.value.status == 401 and wrong not in str(caught.value) and wrong not in repr(caught.value)


def test_tools_and_parser_on_the_sdks_own_objects(serve_url: str) -> None:
    client = sdk(serve_url)
    response = client.responses.create(model="m", input="columns of t?", **constrain.openai_tools(GRAMMAR))
    assert isinstance(response, openai.types.responses.Response)
    parsed = constrain.parse_openai(response, GRAMMAR)
    assert GRAMMAR.matches(parsed.raw) and parsed.value == GRAMMAR.parse_typed(parsed.raw)
    assert parsed.usage.output_tokens == response.usage.output_tokens > 0 and parsed.model == response.model
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "columns?"}],
                                                **constrain.openai_tools(GRAMMAR, api="chat"))
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    chat = constrain.parse_openai(completion, GRAMMAR)
    assert chat.raw == completion.choices[0].message.tool_calls[0].custom.input and chat.provider == "openai-chat"
    assert constrain.parse_openai(completion.model_dump(), GRAMMAR).raw == chat.raw  # the JSON form too


# -- the helpers ------------------------------------------------------------------------------------------
def test_openai_tools_shapes() -> None:
    definition = {"syntax": "lark", "definition": GRAMMAR.text}
    responses = constrain.openai_tools(GRAMMAR, tool_name="sql")
    assert responses == {
        "tools": [{"type": "custom", "name": "sql", "description": guide(GRAMMAR),
                   "format": {"type": "grammar", **definition}}],
        "tool_choice": {"type": "custom", "name": "sql"},
        "parallel_tool_calls": False,
    }
    assert "One SELECT of lowercase columns" in guide(GRAMMAR) and "SELECT a, b FROM t" in guide(GRAMMAR)
    chat = constrain.openai_tools(GRAMMAR, api="chat", tool_name="sql")
    assert chat == {
        "tools": [{"type": "custom", "custom": {"name": "sql", "description": guide(GRAMMAR),
                                                "format": {"type": "grammar", "grammar": definition}}}],
        "tool_choice": {"type": "custom", "custom": {"name": "sql"}},
        "parallel_tool_calls": False,
    }
    regex = constrain.openai_tools(r"[0-9]{3}", syntax="regex")["tools"][0]["format"]
    assert regex == {"type": "grammar", "syntax": "regex", "definition": "[0-9]{3}"}
    plain = constrain.openai_tools(GRAMMAR, describe=False)["tools"][0]["description"]
    assert plain == constrain.providers.Constraint(GRAMMAR).description
    with pytest.raises(InputError, match="api must be"):
        constrain.openai_tools(GRAMMAR, api="completions")  # type: ignore[arg-type]


def test_parser_verdicts_on_sdk_responses(served: tuple[FaultServer, str]) -> None:
    server, url = served
    client = sdk(url)
    tools = constrain.openai_tools("json")

    def ask(text: str, **extra: Any) -> Any:
        server.inject(output(text))
        return client.responses.create(model="m", input="a value", **tools, **extra)

    assert constrain.parse_openai(ask('{"a": [1, true]}'), "json").value == {"a": [1, True]}
    from pydantic import BaseModel

    class Point(BaseModel):
        x: int
        y: int

    point = constrain.parse_openai(ask('{"x": 1, "y": 2}'), "json", output_type=Point).value
    assert point == Point(x=1, y=2)
    with pytest.raises(ValidationError) as caught:
        constrain.parse_openai(ask('{"a":\n  [1, }'), "json")
    assert (caught.value.line, caught.value.column) == (2, 7) and str(caught.value).startswith("2:7: ")
    with pytest.raises(ValidationError) as caught:  # the typed check: valid JSON, not a Point
        constrain.parse_openai(ask('{"x": 1}'), "json", output_type=Point)
    with pytest.raises(TruncatedError):
        constrain.parse_openai(ask('{"aaaaaaaaaaaa": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}', max_output_tokens=3), "json")
    with pytest.raises(ResponseFormatError, match="no custom_tool_call named 'other'"):
        constrain.parse_openai(ask("[1]"), "json", tool_name="other")
    server.inject(output("[1, 2"))
    chat = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                          **constrain.openai_tools("json", api="chat"))
    with pytest.raises(ValidationError) as caught:
        constrain.parse_openai(chat, "json")
    assert (caught.value.line, caught.value.column) == (1, 6)
    with pytest.raises(InputError, match="parse_openai takes"):
        constrain.parse_openai(42, "json")


# -- sql.ask and run_batch ----------------------------------------------------------------------------------
def small_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.executemany("INSERT INTO users(name) VALUES (?)", [("ada",), ("bob",), ("cy",)])
    return path


def test_sql_ask_takes_the_client(served: tuple[FaultServer, str], tmp_path: Path) -> None:
    server, url = served
    db = small_db(tmp_path / "small.sqlite")
    server.inject(output("SELECT count(*) FROM people"), output("SELECT count(*) FROM users"))
    answer = sql.ask("How many users?", db=str(db), provider=sdk(url), run=True)
    assert answer.sql == "SELECT count(*) FROM users" and answer.rows is not None and answer.rows.rows == [(3,)]
    refused = answer.result.attempts[0].error
    assert isinstance(refused, ValidationError) and "people" in str(refused)
    sent = server.requests_to("/responses")
    assert len(sent) == 2 and all("x-stainless-lang" in s.headers for s in sent)
    assert sent[0].body["tools"][0]["name"] == "sql_query"
    server.inject(output("SELECT name FROM users ORDER BY id"))
    answer = asyncio.run(sql.aask("Names?", db=str(db), provider=async_sdk(url), run=True))
    assert answer.rows is not None and answer.rows.rows == [("ada",), ("bob",), ("cy",)]


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_run_batch_takes_the_client(served: tuple[FaultServer, str], tmp_path: Path, flavour: str) -> None:
    server, url = served
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"i{n}", "prompt": f"value {n}"}) + "\n" for n in range(12)))
    client = async_sdk(url) if flavour == "async" else sdk(url)
    summary = run_batch(source, tmp_path / "out", grammar="json", provider=client, model="batch-model",
                        concurrency=4, progress=False)
    assert summary.counts.succeeded == 12 and summary.exactly_once
    sent = server.requests_to("/responses")
    assert len(sent) >= 12 and all(s.body["model"] == "batch-model" and "x-stainless-lang" in s.headers for s in sent)
    # each run_batch runs its own event loop: a sync client serves any number of them; an AsyncOpenAI
    # client's pooled connections belong to the first run's (ended) loop, refused before anything is sent
    before = len(server.seen)
    if flavour == "async":
        with pytest.raises(InputError, match="new AsyncOpenAI client"):
            run_batch(source, tmp_path / "again", grammar="json", provider=client, progress=False)
        assert len(server.seen) == before
        client = async_sdk(url)
    again = run_batch(source, tmp_path / "again", grammar="json", provider=client, concurrency=4, progress=False)
    assert again.counts.succeeded == 12 and again.exactly_once and len(server.seen) >= before + 12
    with pytest.raises(InputError, match="set on the openai client"):
        run_batch(source, tmp_path / "out2", grammar="json", provider=client, base_url=url, progress=False)


# -- the key, a missing package ---------------------------------------------------------------------------
def test_the_key_is_never_shown(served: tuple[FaultServer, str], caplog: pytest.LogCaptureFixture) -> None:
    server, url = served
    caplog.set_level(logging.DEBUG)
    provider = OpenAISDK(sdk(url), "m")
    assert KEY not in repr(provider) and KEY not in repr(vars(provider)) and KEY not in repr(OpenAISDKChat(sdk(url)))
    server.inject(status(401, f"Incorrect API key provided: {KEY}."))
    with pytest.raises(AuthenticationError) as caught:
        constrain.generate("q", grammar=GRAMMAR, provider=provider)
    assert "Incorrect API key provided: ***" in str(caught.value) and KEY not in repr(caught.value.__dict__)
    with pytest.raises(ProviderConnectionError) as broken:
        constrain.generate("q", grammar=GRAMMAR, provider=sdk(dead_url(), max_retries=0))
    assert KEY not in str(broken.value)
    assert KEY not in caplog.text and "Bearer" not in caplog.text


def dead_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_without_the_openai_package(monkeypatch: pytest.MonkeyPatch) -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=KEY)
    monkeypatch.setitem(sys.modules, "openai", None)  # `import openai` now fails
    with pytest.raises(InputError, match="pip install openai"):
        OpenAISDK(client)
    with pytest.raises(InputError, match="provider= takes"):
        from_env(client)  # not recognisable as a client without the package: said plainly
    monkeypatch.undo()
    # the helpers build plain dicts: they never need the package
    monkeypatch.setitem(sys.modules, "openai", None)
    assert constrain.openai_tools(GRAMMAR)["tool_choice"] == {"type": "custom", "name": "emit"}
    monkeypatch.undo()
    assert isinstance(from_env(client, model="m"), OpenAISDK)
