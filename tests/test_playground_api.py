"""The playground's JSON API over real HTTP on 127.0.0.1, against the public functions it wraps."""

from __future__ import annotations

import base64
import json
import re
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from constrain import Grammar, load_grammar, sql
from constrain.cli import main
from constrain.grammar.explain import explain
from constrain.playground import LIMITS, MAX_BODY_BYTES, Playground

HANGS = 'start: A B\nA: /a+/\nB: "a"\n'  # llguidance 1.9 spins computing the first token mask


@pytest.fixture(scope="module")
def server() -> Iterator[Playground]:
    with Playground(workers=2, call_seconds=4.0, check_seconds=25.0) as playground:
        yield playground


@pytest.fixture(scope="module")
def client(server: Playground) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as http:
        yield http


def post(client: httpx.Client, path: str, body: Any) -> tuple[int, Any]:
    response = client.post(path, json=body)
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, response.json()


# -- the page ------------------------------------------------------------------------------------------
def test_page_and_static_files_are_served_from_the_package(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="app.js">' in page.text and 'href="style.css"' in page.text
    script, style = client.get("/app.js"), client.get("/style.css")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    for text in (page.text, script.text, style.text):  # nothing is fetched from the internet
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_grammar_list_and_packaged_text(client: httpx.Client) -> None:
    info = client.get("/api/grammars").json()
    assert {"json", "dsl/cron", "sql/sqlite"} <= {g["name"] for g in info["grammars"]}
    assert info["initial"]["name"] == "dsl/cron" and info["targets"] == ["llamacpp", "openai", "sglang", "vllm"]
    assert info["limits"]["text_bytes"] == LIMITS["text_bytes"]
    json_grammar = client.get("/api/grammar", params={"name": "json"}).json()
    assert json_grammar["text"] == load_grammar("json").text
    assert json_grammar["origin"] == {"kind": "packaged", "name": "json"}
    missing = client.get("/api/grammar", params={"name": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "GrammarError"


# -- check ---------------------------------------------------------------------------------------------
def test_check_locates_findings_and_builds_each_provider_request(client: httpx.Client) -> None:
    text = 'start: item+\nitem: WORD " "\nWORD: /\\w+(?=x)/\n'
    status, data = post(client, "/api/check", {"grammar": text, "targets": ["openai", "vllm", "llamacpp"]})
    assert status == 200
    expected = [d.to_dict() for d in Grammar(text).check(targets=("openai", "vllm", "llamacpp"))]
    assert data["diagnostics"] == expected
    lookaround = next(d for d in data["diagnostics"] if d["code"] == "lookaround")
    assert (lookaround["line"], lookaround["severity"]) == (3, "error")
    assert data["ok"] is False and data["hang_probe"]["ran"] is False  # llguidance refuses: no probe

    status, data = post(client, "/api/check", {"grammar": load_grammar("dsl/cron").text,
                                               "origin": {"kind": "packaged", "name": "dsl/cron"}})
    assert status == 200 and data["ok"] and data["typed"] and data["parser"] == load_grammar("dsl/cron").parser
    assert data["hang_probe"] == {"ran": True, "hangs": False,
                                  "message": "every random walk finished its token masks in time"}
    requests = data["requests"]
    cron = load_grammar("dsl/cron")
    tool = requests["openai"]["body"]["tools"][0]
    assert tool["format"] == {"type": "grammar", "syntax": "lark", "definition": cron.text}
    assert requests["openai"]["body"]["tool_choice"] == {"type": "custom", "name": tool["name"]}
    assert requests["vllm"]["body"]["structured_outputs"] == {"grammar": cron.text}
    assert requests["llamacpp"]["body"]["grammar"] == cron.to_gbnf()
    # what generate sends: the guide in the tool's description, or in the system message, and the bound
    from constrain.generate import guide

    assert tool["description"] == guide(cron) and requests["openai"]["body"]["max_output_tokens"] == cron.max_tokens
    vllm = requests["vllm"]["body"]
    assert vllm["messages"][0]["content"].endswith(guide(cron, worked=False)) and vllm["max_tokens"] == cron.max_tokens


def test_check_reports_a_grammar_that_does_not_build(client: httpx.Client) -> None:
    status, data = post(client, "/api/check", {"grammar": "start: a\na: \"x\" b\n"})
    assert status == 200 and not data["ok"] and data["parser"] is None
    assert any(d["severity"] == "error" for d in data["diagnostics"])


# -- explain -------------------------------------------------------------------------------------------
def test_explain_matches_constrain_explain(client: httpx.Client) -> None:
    cron = load_grammar("dsl/cron")
    body = {"grammar": cron.text, "origin": {"kind": "packaged", "name": "dsl/cron"}}
    status, data = post(client, "/api/explain", {**body, "text": "*/5 25 * * *"})
    assert status == 200 and not data["ok"]
    expected = explain(cron, "*/5 25 * * *").to_dict()
    assert {k: data[k] for k in expected} == expected
    assert data["engines"][1]["error"]["column"] == 6 and data["tree"] is None

    status, data = post(client, "/api/explain", {**body, "text": "*/5 9-17 * * MON-FRI"})
    assert status == 200 and data["ok"]
    assert [e["engine"] for e in data["engines"]] == [f"lark/{cron.parser}", "llguidance", "typed"]
    assert data["tree"].startswith("start") and "MON" in data["tree"]
    assert json.loads(data["value"])["minute"]["items"] == [{"step": 5}]

    # the same text, edited by one character: the engines judge alone
    status, data = post(client, "/api/explain", {**body, "grammar": cron.text + "\n", "text": "*/5 9-17 * * MON-FRI"})
    assert status == 200 and data["ok"] and data["typed"] is False and len(data["engines"]) == 2


def test_explain_refuses_bad_requests_with_typed_errors(client: httpx.Client) -> None:
    status, data = post(client, "/api/explain", {"grammar": "start: a\na: \"x\" b\n", "text": "x"})
    assert status == 422 and data["error"]["type"] == "GrammarError" and data["error"]["diagnostics"]
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"'})
    assert status == 400 and data["error"] == {"type": "InputError", "message": "`text` must be a string"}
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"', "text": "x" * (LIMITS["text_bytes"] + 1)})
    assert status == 400 and "over the playground's limit" in data["error"]["message"]
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"', "text": "x", "origin": {"kind": "zip"}})
    assert status == 400 and "unknown origin kind" in data["error"]["message"]



def test_an_answer_carries_the_version_of_its_request(client: httpx.Client) -> None:
    """The page numbers its requests by the version of the text they judge; each answer, errors included, says which."""
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"', "text": "x", "version": 7})
    assert status == 200 and data["ok"] and data["version"] == 7
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"', "version": 8})
    assert status == 400 and data["version"] == 8 and data["error"]["type"] == "InputError"
    status, data = post(client, "/api/check", {"grammar": 'start: "x"', "version": "9"})
    assert status == 400 and data["error"]["message"] == "`version` must be an integer, got '9'"
    status, data = post(client, "/api/explain", {"grammar": 'start: "x"', "text": "x"})
    assert status == 200 and "version" not in data

# -- sample --------------------------------------------------------------------------------------------
def test_sample_draws_with_a_seed_and_marks_the_typed_verdict(client: httpx.Client) -> None:
    cron = load_grammar("dsl/cron")
    body = {"grammar": cron.text, "origin": {"kind": "packaged", "name": "dsl/cron"}, "n": 12, "seed": 7}
    status, first = post(client, "/api/sample", body)
    assert status == 200 and first["seed"] == 7
    assert [s["text"] for s in first["samples"]] == cron.sample(12, seed=7)
    assert all(s["lark_ok"] for s in first["samples"])
    assert all(s["typed"] is not None for s in first["samples"])
    # a range like 40-3 parses but the cron check refuses it: the typed verdict says so
    for s in first["samples"]:
        try:
            cron.parse_typed(s["text"])
            assert s["typed"]["ok"]
        except Exception:
            assert not s["typed"]["ok"] and s["typed"]["message"]
    status, data = post(client, "/api/sample", {**body, "n": LIMITS["samples"] + 1})
    assert status == 400 and "`n` must be an integer" in data["error"]["message"]


# -- compile-schema ------------------------------------------------------------------------------------
def test_compile_json_schema_with_widenings(client: httpx.Client) -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    status, data = post(client, "/api/compile-schema", {"kind": "json-schema", "schema": json.dumps(schema)})
    assert status == 422 and data["error"]["type"] == "JSONSchemaError" and "uniqueItems" in data["error"]["message"]
    status, data = post(client, "/api/compile-schema", {"kind": "json-schema", "schema": schema, "widen": True})
    assert status == 200 and data["widenings"] == [{"keyword": "uniqueItems", "pointer": "#/uniqueItems"}]
    body = {"grammar": data["grammar"], "origin": data["origin"]}
    status, verdict = post(client, "/api/explain", {**body, "text": "[1,1]"})
    assert status == 200 and [e["ok"] for e in verdict["engines"]] == [True, True, False]  # the validator refuses
    status, verdict = post(client, "/api/explain", {**body, "text": "[1,2]"})
    assert status == 200 and verdict["ok"] and json.loads(verdict["value"]) == [1, 2]
    status, data = post(client, "/api/compile-schema", {"kind": "json-schema", "schema": "{not json"})
    assert status == 400 and "not valid JSON" in data["error"]["message"]


def test_compile_sqlite_database_binds_the_grammar_to_its_schema(client: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
    conn.close()
    upload = {"kind": "sqlite", "database_base64": base64.b64encode(path.read_bytes()).decode(), "filename": path.name}
    status, data = post(client, "/api/compile-schema", upload)
    assert status == 200 and data["tables"] == {"users": {"id": "INTEGER", "name": "TEXT", "age": "INTEGER"}}
    body = {"grammar": data["grammar"], "origin": data["origin"]}
    status, verdict = post(client, "/api/explain", {**body, "text": "SELECT name FROM users WHERE age > 30"})
    assert status == 200 and verdict["ok"] and json.loads(verdict["value"])["tables"] == ["users"]
    status, verdict = post(client, "/api/explain", {**body, "text": "SELECT email FROM users"})
    # the grammar takes any name (an alias or a CTE could be called email); the typed check, sql.validate
    # with the database's schema, refuses the column the table lacks
    bound = sql.grammar("sqlite", sql.Schema.from_sqlite(path))
    assert status == 200 and not verdict["ok"]
    engines = explain(bound, "SELECT email FROM users").to_dict()["engines"]
    assert verdict["engines"][:2] == engines and all(e["ok"] for e in engines)
    assert verdict["engines"][2]["engine"] == "typed" and not verdict["engines"][2]["ok"]
    assert "email" in json.dumps(verdict["engines"][2])
    status, data = post(client, "/api/compile-schema", {"kind": "sqlite", "database_base64": base64.b64encode(b"no db").decode()})
    assert status == 400 and data["error"]["type"] == "InputError"
    status, data = post(client, "/api/compile-schema", {"kind": "ddl", "ddl": "CREATE TABLE t (a INT, b TEXT);", "dialect": "postgres"})
    assert status == 200 and data["origin"]["dialect"] == "postgres" and data["tables"] == {"t": {"a": "INT", "b": "TEXT"}}


# -- the server's own limits ---------------------------------------------------------------------------
def test_http_level_errors(server: Playground, client: httpx.Client) -> None:
    response = client.post("/api/check", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "InputError"
    response = client.post("/api/check", content=b"grammar=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    response = client.post("/api/check", content=b"[]", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]
    response = client.post("/api/nope", json={})
    assert response.status_code == 404
    assert client.get("/api/check").status_code == 405
    assert client.get("/", headers={"host": "evil.example:80"}).status_code == 403
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:  # refused before it is read
        raw.sendall(f"POST /api/check HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n{{".encode())
        head = b"".join(iter(lambda: raw.recv(65536), b"")).decode()  # the server closes the connection
    assert head.startswith("HTTP/1.1 413 ") and "over the limit" in head
    status, data = post(client, "/api/check", {"grammar": "x" * (LIMITS["grammar_bytes"] + 1)})
    assert status == 400 and "`grammar` is" in data["error"]["message"]


def test_a_hostile_grammar_cannot_pin_the_server(client: httpx.Client) -> None:
    started = time.monotonic()
    status, data = post(client, "/api/sample", {"grammar": HANGS, "n": 3})
    assert status == 422 and data["error"]["type"] == "TimeLimitError"
    assert time.monotonic() - started < 15
    started = time.monotonic()  # the same grammar again: refused at once, no second spin
    status, data = post(client, "/api/explain", {"grammar": HANGS, "text": "aa"})
    assert status == 422 and data["error"]["type"] == "TimeLimitError" and time.monotonic() - started < 1
    status, data = post(client, "/api/check", {"grammar": HANGS})
    assert status == 200 and data["hang_probe"]["hangs"] and not data["ok"]
    status, data = post(client, "/api/explain", {"grammar": 'start: "a"+', "text": "aaa"})  # the workers were replaced
    assert status == 200 and data["ok"]


def test_cli_rejects_a_port_in_use(server: Playground, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["playground", "--port", str(server.port)]) == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in capsys.readouterr().err


def test_the_docs_document_every_endpoint() -> None:
    from constrain.playground._api import OPERATIONS

    docs = Path(__file__).resolve().parents[1] / "docs"
    page = (docs / "guides" / "playground.md").read_text(encoding="utf-8")
    assert {f"`POST /api/{op}`" for op in OPERATIONS} <= {m for m in re.findall(r"`POST /api/[a-z-]+`", page)}
    assert "(../playground.png)" in page and (docs / "playground.png").is_file()


def test_cli_prints_the_url_serves_and_stops_with_its_workers() -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "constrain", "playground", "--port", "0", "--grammar", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"constrain playground: (http://127\.0\.0\.1:\d+/) ", line)
        assert match, line
        info = httpx.get(match.group(1) + "api/grammars", timeout=30).json()
        assert info["initial"]["name"] == "json"
        children = [p.parent.name for p in Path("/proc").glob("[0-9]*/stat") if _ppid(p) == proc.pid]
        assert len(children) == 3  # the worker processes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _ppid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
