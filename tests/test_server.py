"""The grammar-enforcing server, spoken to with bare httpx: wire shapes, grammar checks, errors."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain import Grammar, load_grammar
from constrain.providers import Message
from constrain.server import GenerationRequest, RandomWalkBackend, Server, ServerThread

KEY = "server-key"
LARK = 'start: "v=" NUM (";" NUM)*\nNUM: /[0-9]{1,4}/'


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with ServerThread(Server(RandomWalkBackend(seed=3), api_key=KEY)) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as c:
            yield c


def responses_body(definition: str, syntax: str = "lark", **extra: Any) -> dict[str, Any]:
    tool = {"type": "custom", "name": "emit", "format": {"type": "grammar", "syntax": syntax, "definition": definition}}
    return {"model": "m", "input": "hello", "tools": [tool], "tool_choice": {"type": "custom", "name": "emit"}, **extra}


def call_input(response: dict[str, Any]) -> str:
    calls = [item for item in response["output"] if item["type"] == "custom_tool_call"]
    assert len(calls) == 1
    return calls[0]["input"]


def test_responses_output_is_in_the_grammar_after_a_reasoning_item(client: httpx.Client) -> None:
    r = client.post("/responses", json=responses_body(LARK))
    assert r.status_code == 200 and r.headers["x-request-id"].startswith("req_")
    data = r.json()
    assert data["output"][0]["type"] == "reasoning" and data["status"] == "completed"
    assert Grammar(LARK).validate(call_input(data))
    assert data["usage"]["total_tokens"] == data["usage"]["input_tokens"] + data["usage"]["output_tokens"]


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [('start: A\nA: /(?=x)x/', "lookaround"), ("start: x\nx{t}: t", "params"), ('start: undefined_rule', "")],
)
def test_invalid_grammar_gets_an_openai_shaped_400(client: httpx.Client, definition: str, fragment: str) -> None:
    r = client.post("/responses", json=responses_body(definition))
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_grammar"
    assert error["param"] == "tools[0].format.definition" and error["message"].startswith("Invalid grammar")
    if fragment:
        assert fragment in error["message"].lower() or "not supported" in error["message"].lower()


def test_a_grammar_llguidance_loops_on_gets_a_400_and_the_server_keeps_serving() -> None:
    hangs = 'start: A B\nA: /a+/\nB: "a"\n'  # llguidance 1.9 never finishes the first token mask
    with ServerThread(Server(RandomWalkBackend(seed=3), hang_seconds=1.0)) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.post("/responses", json=responses_body(hangs))
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_grammar"
            assert "does not finish computing the token mask" in r.json()["error"]["message"]
            chat = {"messages": [{"role": "user", "content": "hi"}], "structured_outputs": {"grammar": hangs}}
            assert c.post("/chat/completions", json=chat).status_code == 400
            assert c.post("/responses", json=responses_body(LARK)).status_code == 200


def test_regex_syntax(client: httpx.Client) -> None:
    r = client.post("/responses", json=responses_body(r"[a-c]{2}-[0-9]{2}", "regex"))
    import re

    assert re.fullmatch(r"[a-c]{2}-[0-9]{2}", call_input(r.json()))


def test_chat_nested_custom_tool(client: httpx.Client) -> None:
    tool = {"type": "custom", "custom": {"name": "emit", "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": LARK}}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool],
            "tool_choice": {"type": "custom", "custom": {"name": "emit"}}}
    data = client.post("/chat/completions", json=body).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "custom" and Grammar(LARK).matches(call["custom"]["input"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("structured_outputs", {"grammar": LARK}), ("grammar", 'root ::= "v=" [0-9] [0-9]?'), ("ebnf", 'root ::= "v=" [0-9]')],
)
def test_chat_constraint_fields_of_compatible_servers(client: httpx.Client, field: str, value: Any) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], field: value}
    data = client.post("/chat/completions", json=body).json()
    text = data["choices"][0]["message"]["content"]
    assert text.startswith("v=") and text[2:].isdigit()


def test_llamacpp_grammar_with_tools_is_a_400(client: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    body = {"messages": [{"role": "user", "content": "hi"}], "grammar": 'root ::= "a"', "tools": [tool]}
    assert client.post("/chat/completions", json=body).status_code == 400


def test_bad_requests(client: httpx.Client) -> None:
    assert client.post("/responses", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/responses", json={"model": "m"}).json()["error"]["param"] == "input"
    body = responses_body(LARK) | {"tool_choice": {"type": "custom", "name": "missing"}}
    assert client.post("/responses", json=body).json()["error"]["param"] == "tool_choice"
    assert client.post("/responses", json=responses_body(LARK, max_output_tokens=0)).status_code == 400
    assert client.post("/nowhere", json={}).status_code == 404
    assert client.get("/responses").status_code == 405
    assert client.get("/models").json()["data"][0]["id"] == "random-walk"


def test_wrong_key_is_a_401(client: httpx.Client) -> None:
    r = client.post("/responses", json=responses_body(LARK), headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_max_output_tokens_truncates_with_incomplete_status(client: httpx.Client) -> None:
    definition = 'start: "x" LONG\nLONG: /[a-z]{60,80}/'
    data = client.post("/responses", json=responses_body(definition, max_output_tokens=3)).json()
    assert data["status"] == "incomplete" and data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["usage"]["output_tokens"] == 3
    assert not Grammar(definition).matches(call_input(data))


def test_sse_event_sequence(client: httpx.Client) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("POST", "/responses", json=responses_body(LARK, stream=True)) as r:
        assert r.headers["content-type"] == "text/event-stream"
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind or "", json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.index("response.custom_tool_call_input.done") < kinds.index("response.completed")
    deltas = "".join(d["delta"] for k, d in events if k == "response.custom_tool_call_input.delta")
    done = next(d for k, d in events if k == "response.custom_tool_call_input.done")
    assert deltas == done["input"] == call_input(events[-1][1]["response"])
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), prompt=st.text(min_size=1, max_size=30))
def test_random_walk_backend_stays_in_the_grammar_and_is_deterministic(seed: int, prompt: str) -> None:
    grammar = load_grammar("json")
    backend = RandomWalkBackend(seed, variety=4)
    request = GenerationRequest((Message("user", prompt),), grammar)
    text = "".join(backend.generate(request))
    assert grammar.matches(text) and grammar.parse(text)
    assert "".join(RandomWalkBackend(seed, variety=4).generate(request)) == text


def test_oversized_or_chunked_request_bodies_get_a_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield json.dumps(responses_body(LARK)).encode()

    r = client.post("/responses", content=chunks())  # a generator body goes out chunked
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert client.post("/responses", json=responses_body(LARK)).status_code == 200  # a fresh connection
