"""The main job offline, end to end with the real embedded model: the CLI, and the server behind the OpenAI provider.

Needs the ``[local]`` extra; skips locally without it, fails under CI (``CI`` set) so CI always runs it.
"""

from __future__ import annotations

import collections
import json
import os
import sqlite3

import pytest

from constrain import ModelError
from constrain._databases import packaged_database

pytestmark = pytest.mark.local_model

QUESTION = "How many albums does each artist have?"


@pytest.fixture(scope="module")
def local():
    try:
        import llama_cpp  # noqa: F401

        from constrain.providers.local import Local

        provider = Local()
        provider.load()
    except (ImportError, ModelError) as exc:
        reason = f"the [local] extra is not installed (pip install 'constrain-cfg[local]'): {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return provider


@pytest.fixture()
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No remote provider configured: the CLI must fall back to the embedded model."""
    for name in ("OPENAI_API_KEY", "CONSTRAIN_PROVIDER", "CONSTRAIN_BASE_URL", "CONSTRAIN_MODEL"):
        monkeypatch.delenv(name, raising=False)


def _album_counts() -> collections.Counter[int]:
    with sqlite3.connect(f"file:{packaged_database('chinook')}?mode=ro", uri=True) as conn:
        return collections.Counter(n for (n,) in conn.execute("select count(*) from Album group by ArtistId"))


def _assert_answers_the_question(columns: list[str], rows: list[list[object]]) -> None:
    """Some column holds each artist's album count: as a multiset, the true counts (zeros allowed for
    artists without albums when the model used an outer join)."""
    expected = _album_counts()
    for index in range(len(columns)):
        values = [row[index] for row in rows]
        if all(isinstance(v, int) for v in values):
            found = collections.Counter(v for v in values if v != 0)
            if found == expected:
                return
    raise AssertionError(f"no column of the answer holds the album counts per artist: {columns} {rows[:5]}")


def test_constrain_sql_runs_offline_on_the_packaged_chinook(local, offline_env, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    code = main(["sql", QUESTION, "--db", "chinook", "--run", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["ok"] is True
    assert record["provider"] == "local"
    assert "album" in record["sql"].lower()
    assert set(t.lower() for t in record["tables"]) >= {"album"}
    _assert_answers_the_question(record["rows"]["columns"], record["rows"]["rows"])


def test_human_output_prints_the_query_and_the_rows(local, offline_env, capsys: pytest.CaptureFixture[str]) -> None:
    from constrain.cli import main

    assert main(["sql", QUESTION, "--db", "chinook", "--run"]) == 0
    out = capsys.readouterr().out
    assert "select" in out.lower().split("\n", 1)[0]
    assert "rows)" in out.strip().splitlines()[-1]


def test_openai_provider_through_constrain_serve_with_the_real_model(local) -> None:
    from constrain import sql
    from constrain.grammar import load_grammar
    from constrain.providers import OpenAI
    from constrain.providers.base import Constraint, Message
    from constrain.providers.local import LocalBackend
    from constrain.server import Server, ServerThread

    with ServerThread(Server(LocalBackend(local))) as base_url:
        remote = OpenAI("local", base_url=base_url, api_key="unused-key")
        answer = sql.ask(QUESTION, db="chinook", provider=remote, run=True)
        assert answer.rows is not None
        _assert_answers_the_question(list(answer.rows.columns), [list(r) for r in answer.rows.rows])
        direct = sql.ask(QUESTION, db="chinook", provider=local, run=True)
        assert answer.sql == direct.sql  # greedy decoding: the same model answers the same way over HTTP

        deltas: list[str] = []
        json_grammar = load_grammar("json")
        streamed = remote.complete(
            [Message("user", "Give a JSON object with keys name and year for the album Back in Black.")],
            Constraint(json_grammar),
            on_delta=deltas.append,
        )
        assert "".join(deltas) == streamed.text
        assert isinstance(json_grammar.parse_json(streamed.text), dict)


def test_constrain_serve_command_listens_on_localhost_with_the_local_model(local) -> None:
    import subprocess
    import sys

    import httpx

    from constrain.grammar import Grammar
    from constrain.providers import OpenAI
    from constrain.providers.base import Constraint, Message

    proc = subprocess.Popen(
        [sys.executable, "-m", "constrain", "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        event = json.loads(proc.stdout.readline())
        assert event["event"] == "listening" and event["backend"].startswith("local:")
        base_url = event["base_url"]
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base_url}/models", timeout=30).status_code == 200
        out = OpenAI("local", base_url=base_url, api_key="unused").complete(
            [Message("user", "Is the sky blue? Answer yes or no.")], Constraint(Grammar('start: "yes" | "no"'))
        )
        assert out.text in ("yes", "no")
    finally:
        proc.terminate()
        proc.wait(30)
