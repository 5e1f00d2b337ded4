"""``constrain.batch``: Batch API rounds (the validator's feedback in a follow-up batch), cancel, and the
online mode's AIMD concurrency, all against the real test server on 127.0.0.1 (``_fault_server``)."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _fault_server import INVALID_OUTPUT, TracingServer, status, traced, tracing_server  # noqa: F401  (fixtures)
from constrain import providers
from constrain.batch import BatchError, batch_status, cancel_batch, collect_batch, run_batch, submit_batch
from constrain.errors import ProviderError
from test_batch import SCHEMA, SECRET, _env, assert_exactly_once, prompt_of, read_jsonl

Served = tuple[TracingServer, str]


def write_input(path: Path, n: int, marks: dict[int, str] | None = None) -> Path:
    """``n`` items ``item-0`` ...; ``marks`` appends a word to some prompts (``BAD``: always refused,
    ``FIX``: refused until the request carries the validator's feedback)."""
    marks = marks or {}
    with open(path, "w") as fh:
        for i in range(n):
            word = f" {marks[i]}" if i in marks else ""
            fh.write(json.dumps({"id": f"item-{i}", "prompt": f"question number {i}{word}"}) + "\n")
    return path


def submit(url: str, source: Path, out: Path, **options: Any) -> Any:
    schema = source.parent / "schema.json"
    schema.write_text(json.dumps(SCHEMA))  # the random walk always satisfies it: only scripted outputs are refused
    return submit_batch(source, out, schema=str(schema), base_url=url, api_key=SECRET, model="gpt-test", **options)


def collect_all(out: Path, **options: Any) -> Any:
    return collect_batch(out, api_key=SECRET, wait=True, poll_interval=0.02, max_interval=0.05, timeout=60, **options)


def batch_lines(server: TracingServer, batch_id: str) -> list[dict[str, Any]]:
    """The request lines of one batch, as the server received its input file."""
    stored = server.batch.files[server.batch.batches[batch_id]["input_file_id"]]
    return [json.loads(line) for line in stored.data.splitlines()]


def sent_per_round(server: TracingServer, batches: list[dict[str, Any]]) -> dict[int, list[str]]:
    """round -> every custom_id sent in that round's batches (repeats kept)."""
    sent: dict[int, list[str]] = {}
    for b in batches:
        if b["batch_id"]:
            sent.setdefault(b["round"], []).extend(line["custom_id"] for line in batch_lines(server, b["batch_id"]))
    return sent


# -- rounds ------------------------------------------------------------------------------------------
def test_refused_outputs_go_into_follow_up_rounds_with_the_validators_feedback(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.scripted_backend.invalid_marker = "BAD"
    server.scripted_backend.fixed_by_feedback = "FIX"
    source = write_input(tmp_path / "in.jsonl", 12, {3: "FIX", 8: "FIX", 5: "BAD"})
    out = tmp_path / "out"
    first = submit(url, source, out)  # default: 3 rounds per item
    assert first.rounds == [{"round": 1, "items": 12, "succeeded": 0, "failed": 0, "refused": 0, "waiting": 12}]

    summary = collect_all(out)
    assert summary.finished and summary.exactly_once
    assert summary.rounds == [
        {"round": 1, "items": 12, "succeeded": 9, "failed": 0, "refused": 3, "waiting": 0},
        {"round": 2, "items": 3, "succeeded": 2, "failed": 0, "refused": 1, "waiting": 0},
        {"round": 3, "items": 1, "succeeded": 0, "failed": 1, "refused": 0, "waiting": 0},
    ]
    assert "round 2: 3 items: 2 succeeded, 0 failed, 1 refused, re-asked in round 3" in summary.describe()
    # the wire: each round's batch holds exactly the items refused in the round before, each once
    sent = sent_per_round(server, summary.batches)
    assert sorted(sent[1]) == sorted(f"item-{i}" for i in range(12))
    assert sorted(sent[2]) == ["item-3", "item-5", "item-8"] and sent[3] == ["item-5"]
    by_round = {b["round"]: b["batch_id"] for b in summary.batches}
    line = next(x for x in batch_lines(server, by_round[2]) if x["custom_id"] == "item-5")
    asked = line["body"]["input"]
    assert [m["role"] for m in asked[-2:]] == ["assistant", "user"] and asked[-2]["content"] == INVALID_OUTPUT
    assert asked[-1]["content"].startswith("Your previous answer was rejected by the local validator:")
    third = next(x for x in batch_lines(server, by_round[3]))["body"]["input"]
    assert third[:-2] == asked and [m["role"] for m in third[-4:]] == ["assistant", "user", "assistant", "user"]
    # ... the very messages the online loop's re-ask sends for the same refused output
    online = run_batch(write_input(tmp_path / "one.jsonl", 6, {5: "BAD"}), tmp_path / "online", schema=str(tmp_path / "schema.json"),
                       provider="openai", base_url=url, model="m", max_attempts=2, progress=False)
    assert online.counts.failed == 1
    reasks = [s.body for s in server.requests_to("/responses") if prompt_of(s.body) == "question number 5 BAD"]
    assert reasks[-1]["input"][-2:] == asked[-2:]

    results, failures = assert_exactly_once(out, {f"item-{i}" for i in range(12)})
    fixed = {r["id"]: r for r in results if r["attempts"] > 1}
    assert set(fixed) == {"item-3", "item-8"}
    for record in fixed.values():
        assert record["attempts"] == 2 and record["value"] == json.loads(record["output"])
        [refused] = record["rounds"]
        assert refused["round"] == 1 and refused["output"] == INVALID_OUTPUT and refused["batch_id"] == by_round[1]
        assert refused["error"]["type"] == "ValidationError" and "feedback" not in refused
    assert all("rounds" not in r for r in results if r["attempts"] == 1)
    [failure] = failures
    assert failure["id"] == "item-5" and failure["attempts"] == 3 and failure["last_output"] == INVALID_OUTPUT
    assert failure["error"]["type"] == "ValidationError"
    assert [(r["round"], r["batch_id"], r["error"]["type"]) for r in failure["rounds"]] == [
        (1, by_round[1], "ValidationError"), (2, by_round[2], "ValidationError"), (3, by_round[3], "ValidationError")]
    assert failure["usage"]["output_tokens"] == sum(r["usage"]["output_tokens"] for r in failure["rounds"]) > 0

    # collecting again sends nothing and changes nothing
    batches_before = len(server.batch.batches)
    again = collect_batch(out, api_key=SECRET)
    assert again.counts == summary.counts and len(server.batch.batches) == batches_before
    assert_exactly_once(out, {f"item-{i}" for i in range(12)})


def test_max_attempts_one_keeps_a_single_round_and_collect_can_change_it(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.scripted_backend.fixed_by_feedback = "FIX"
    source = write_input(tmp_path / "in.jsonl", 4, {1: "FIX"})
    out = tmp_path / "out"
    submit(url, source, out, max_attempts=1)
    batch_status(out, wait=True, poll_interval=0.02, api_key=SECRET)
    one = collect_batch(out, api_key=SECRET)
    assert one.finished and [r["round"] for r in one.rounds] == [1] and one.counts.failed == 1
    out2 = tmp_path / "out2"
    submit(url, source, out2, max_attempts=1)
    summary = collect_all(out2, max_attempts=2)  # given at collect: the refused item gets its second round
    assert summary.counts.succeeded == 4 and [r["items"] for r in summary.rounds] == [4, 1]


def _round_of_state(out: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(out / "state.sqlite") as con:
        return {row[0]: (row[1], row[2]) for row in con.execute("SELECT id, status, round FROM items")}


def test_a_collect_stopped_between_rounds_resumes_without_sending_twice(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.scripted_backend.fixed_by_feedback = "FIX"
    source = write_input(tmp_path / "in.jsonl", 10, {2: "FIX", 6: "FIX"})
    out = tmp_path / "out"
    submit(url, source, out)
    batch_status(out, wait=True, poll_interval=0.02, api_key=SECRET)
    # round 1 is collected, then the process dies before round 2 exists (here: its upload is refused)
    server.inject_at("POST", "/v1/files", status(400, "injected: upload refused"))
    with pytest.raises(ProviderError, match="injected: upload refused"):
        collect_batch(out, api_key=SECRET)
    rows = _round_of_state(out)  # planned for round 2, never sent
    assert rows["item-2"] == ("submitted", 2) and rows["item-6"] == ("submitted", 2) and rows["item-0"] == ("done", 1)
    with sqlite3.connect(out / "state.sqlite") as con:
        assert con.execute("SELECT file_id, batch_id FROM shards WHERE round = 2").fetchall() == [(None, None)]
    assert len(read_jsonl(out / "results.jsonl")) == 8
    batches = len(server.batch.batches)
    # run again: round 2 goes out once
    resumed = collect_batch(out, api_key=SECRET)
    assert len(server.batch.batches) == batches + 1 and resumed.rounds[1]["waiting"] == 2
    # killed after creating round 2's batch but before recording it: found again by its token
    with sqlite3.connect(out / "state.sqlite") as con:
        con.execute("UPDATE shards SET batch_id = NULL, status = NULL WHERE round = 2")
    final = collect_all(out)
    assert len(server.batch.batches) == batches + 1, "round 2 was created twice"
    assert final.exactly_once and final.counts.succeeded == 10
    sent = sent_per_round(server, final.batches)
    assert sorted(sent[2]) == ["item-2", "item-6"]


def test_sigkill_during_collect_wait_never_sends_an_item_twice_in_a_round(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.batch.step_seconds = 0.15  # each round's batches take about half a second on the server
    server.batch.line_seconds = 0.005
    server.scripted_backend.invalid_marker = "BAD"
    server.scripted_backend.fixed_by_feedback = "FIX"
    n = 60
    marks = {i: "FIX" for i in range(0, n, 5)} | {7: "BAD", 33: "BAD"}
    source = write_input(tmp_path / "in.jsonl", n, marks)
    out = tmp_path / "out"
    submit(url, source, out, max_lines=20)
    command = [sys.executable, "-m", "constrain", "batch", "collect", str(out), "--wait", "--poll-interval", "0.02", "--json"]
    rng = random.Random(23)
    kills = 0
    for attempt in range(8):
        process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if attempt < 6:
            # killed after a random number of its requests (polls, downloads, creates): somewhere in the rounds;
            # early in the first two runs, which a loaded machine's slower polling would otherwise outlast
            target = len(server.seen) + rng.randint(2, 12 if kills < 2 else 40)
            while process.poll() is None and len(server.seen) < target:
                time.sleep(0.002)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
        stdout, stderr = process.communicate(timeout=120)
        if process.returncode != -signal.SIGKILL:
            break
    assert kills >= 2
    assert process.returncode == 1, stderr.decode()  # finished; 1 because the BAD items failed
    summary = json.loads(stdout.decode().splitlines()[-1])
    assert summary["exactly_once"] and summary["succeeded"] == n - 2 and summary["failed"] == 2
    results, failures = assert_exactly_once(out, {f"item-{i}" for i in range(n)})
    assert {f["id"] for f in failures} == {"item-7", "item-33"} and all(f["attempts"] == 3 for f in failures)
    sent = sent_per_round(server, summary["batches"])
    for round_, ids in sent.items():
        assert len(ids) == len(set(ids)), f"round {round_}: an item was sent twice"
    assert sorted(sent[2]) == sorted(f"item-{i}" for i in marks) and sorted(sent[3]) == ["item-33", "item-7"]
    ours = {b["batch_id"] for b in summary["batches"]}
    token = _run_token(out)
    made = {b["id"] for b in server.batch.batches.values() if (b["metadata"] or {}).get("constrain_token", "").startswith(token)}
    assert made == ours, "a batch was created that the state does not know"


def _run_token(out: Path) -> str:
    with sqlite3.connect(out / "state.sqlite") as con:
        return str(con.execute("SELECT value FROM meta WHERE key = 'run_token'").fetchone()[0])


# -- cancel ------------------------------------------------------------------------------------------
def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_cancel_then_collect_takes_what_ran(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.batch.line_seconds = 0.03  # 15 lines a batch: about half a second each
    server.scripted_backend.invalid_marker = "BAD"
    source = write_input(tmp_path / "in.jsonl", 30, {1: "BAD"})
    out = tmp_path / "out"
    first = submit(url, source, out, max_lines=15)
    ids = [b["batch_id"] for b in first.batches]
    created = len(server.batch.batches)
    _wait_for(lambda: all(server.batch.batches[i]["request_counts"]["completed"] >= 4 for i in ids))
    summary = cancel_batch(out, api_key=SECRET)
    assert summary.cancelled and all(b["cancel_requested"] for b in summary.batches)
    assert {b["status"] for b in summary.batches} <= {"cancelling", "cancelled"}
    assert len([s for s in server.seen if s.path.endswith("/cancel")]) == 2
    assert "cancelled: no further round is submitted" in summary.describe()
    # a second cancel sends nothing new
    cancel_batch(out, api_key=SECRET)
    assert len([s for s in server.seen if s.path.endswith("/cancel")]) == 2
    with pytest.raises(BatchError, match="were cancelled"):
        submit(url, source, out)

    final = collect_all(out)
    assert final.finished and final.exactly_once
    for batch_id in ids:
        assert server.batch.history[batch_id][-2:] == ["cancelling", "cancelled"]
    ran = {json.loads(line)["custom_id"] for i in ids if server.batch.batches[i]["output_file_id"]
           for line in server.batch.files[server.batch.batches[i]["output_file_id"]].data.splitlines()}
    assert 8 <= len(ran) < 30
    results, failures = assert_exactly_once(out, {f"item-{i}" for i in range(30)})
    assert {r["id"] for r in results} == ran - {"item-1"}
    failed = {f["id"]: f for f in failures}
    # the refused item ran before the cancel: no round 2 for it after a cancel
    assert failed["item-1"]["error"]["type"] == "ValidationError" and failed["item-1"]["attempts"] == 1
    assert len(server.batch.batches) == created
    never = [f for name, f in failed.items() if name != "item-1"]
    assert len(never) == 30 - len(ran) and all(f["error"]["type"] == "BatchCancelled" for f in never)
    assert all("cancelled" in f["error"]["message"] for f in never)
    assert final.rounds == [{"round": 1, "items": 30, "succeeded": len(ran) - 1, "failed": 31 - len(ran), "refused": 0, "waiting": 0}]

    # --retry-failed lifts the cancel and sends the failures again, from round 1
    again = submit(url, source, out, retry_failed=True)
    assert not again.cancelled and again.counts.pending == 31 - len(ran)
    done = collect_all(out)
    assert done.exactly_once and done.counts.succeeded == 29 and not done.cancelled
    _, failures = assert_exactly_once(out, {f"item-{i}" for i in range(30)})
    assert [(f["id"], f["attempts"]) for f in failures] == [("item-1", 3)]


def test_cancel_before_a_follow_up_round_is_sent(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.scripted_backend.fixed_by_feedback = "FIX"
    source = write_input(tmp_path / "in.jsonl", 6, {4: "FIX"})
    out = tmp_path / "out"
    submit(url, source, out)
    created = len(server.batch.batches)
    batch_status(out, wait=True, poll_interval=0.02, api_key=SECRET)
    assert cancel_batch(out, api_key=SECRET).batches[0]["status"] == "completed"  # finished already: nothing to cancel
    assert not [s for s in server.seen if s.path.endswith("/cancel")]
    final = collect_batch(out, api_key=SECRET)
    assert final.finished and final.exactly_once and len(server.batch.batches) == created
    _, [failure] = assert_exactly_once(out, {f"item-{i}" for i in range(6)})
    assert failure["id"] == "item-4" and failure["error"]["type"] == "ValidationError" and failure["attempts"] == 1


def test_batch_cli_rounds_and_cancel(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.scripted_backend.fixed_by_feedback = "FIX"
    source = write_input(tmp_path / "in.jsonl", 5, {0: "FIX"})
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    out = tmp_path / "out"
    base = [sys.executable, "-m", "constrain", "batch"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=_env(), capture_output=True, text=True, timeout=120)

    done = cli("submit", str(source), "--schema", str(tmp_path / "schema.json"), "-o", str(out), "--base-url", url, "--max-attempts", "2")
    assert done.returncode == 0, done.stderr
    done = cli("collect", str(out), "--wait", "--poll-interval", "0.02")
    assert done.returncode == 0, done.stderr
    assert "round 1: 5 items: 4 succeeded, 0 failed, 1 refused, re-asked in round 2" in done.stdout
    assert "round 2: 1 item: 1 succeeded, 0 failed" in done.stdout
    status_json = json.loads(cli("status", str(out), "--json").stdout.splitlines()[-1])
    assert [r["items"] for r in status_json["rounds"]] == [5, 1] and status_json["cancelled"] is False
    # cancel: human text by default, JSON on request, an error exits non-zero
    done = cli("cancel", str(out))
    assert done.returncode == 0 and "no batch was running" in done.stdout and "constrain batch collect" in done.stdout
    data = json.loads(cli("cancel", str(out), "--json").stdout.splitlines()[-1])
    assert data["cancelled"] is True and data["finished"] is True
    done = cli("cancel", str(tmp_path / "nothing-here"))
    assert done.returncode == 2 and "no state.sqlite here" in done.stderr
    server.batch.line_seconds = 0.5  # still running when the cancel (a new process) comes
    out2 = tmp_path / "out2"
    assert cli("submit", str(source), "--schema", str(tmp_path / "schema.json"), "-o", str(out2), "--base-url", url).returncode == 0
    done = cli("cancel", str(out2), "--json")
    data = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0 and data["batches"][0]["cancel_requested"] and data["batches"][0]["status"] in ("cancelling", "cancelled")


# -- online: AIMD concurrency ------------------------------------------------------------------------
def _online(url: str, source: Path, out: Path, **options: Any) -> Any:
    schema = source.parent / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    return run_batch(source, out, schema=str(schema), base_url=url, model="m", progress=False, **options)


def test_online_concurrency_halves_on_rate_limits_and_grows_back(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.limit, server.retry_after_ms, server.latency = 4, 150, 0.02
    source = write_input(tmp_path / "in.jsonl", 160)
    summary = _online(url, source, tmp_path / "out", provider="openai", concurrency=16)
    assert summary.exactly_once and summary.counts.succeeded == 160
    c = summary.concurrency
    assert c["adaptive"] and c["maximum"] == 16 and c["rate_limited"] >= 2
    assert c["lowered"] >= 2 and c["lowest"] <= 4 and c["raised"] >= 2 and c["limit"] <= 16
    assert "rate-limited answers (429): lowered" in summary.describe()
    arrivals = server.arrivals
    assert max(a.in_flight for a in arrivals[:20]) > 4  # it starts at 16 in flight and meets the cap
    half = arrivals[len(arrivals) // 2:]
    assert max(a.in_flight for a in half) <= 6, "the limit came back up to the maximum instead of staying near the cap"
    # grown back: after a dip to 2 or fewer in flight, the server sees 4 or more at once again
    assert any(a.in_flight <= 2 and any(b.in_flight >= 4 for b in half[i + 1:]) for i, a in enumerate(half))
    for i, a in enumerate(arrivals):
        if not a.refused:
            continue
        # the refused request itself waits its retry-after ...
        again = next(b for b in arrivals[i + 1:] if b.prompt == a.prompt)
        assert again.at - a.at >= 0.15 * 0.95
        # ... while the others go on (no global pause)
        assert any(a.at < b.at < a.at + 0.15 and b.prompt != a.prompt for b in arrivals[i + 1:]), "every worker paused"
    refused_share = sum(a.refused for a in half) / len(half)

    # the fixed concurrency on the same server: refused far more often
    server.arrivals.clear()
    fixed = _online(url, source, tmp_path / "fixed", provider="openai", concurrency=16, adaptive=False)
    assert fixed.exactly_once and fixed.concurrency["lowered"] == 0 and fixed.concurrency["limit"] == 16
    fixed_half = server.arrivals[len(server.arrivals) // 2:]
    assert sum(a.refused for a in fixed_half) / len(fixed_half) > 2 * refused_share


def test_online_limit_for_a_provider_instance_works_per_item(traced: Served, tmp_path: Path) -> None:
    server, url = traced
    server.limit, server.retry_after_ms, server.latency = 3, 50, 0.02
    provider = providers.get("openai", base_url=url, model="m", max_retries=0)  # every 429 reaches the loop
    summary = _online(url, write_input(tmp_path / "in.jsonl", 80), tmp_path / "out", provider=provider, concurrency=12)
    assert summary.exactly_once and summary.counts.succeeded == 80
    assert summary.concurrency["lowered"] >= 1 and summary.concurrency["lowest"] <= 3
    half = server.arrivals[len(server.arrivals) // 2:]
    assert max(a.in_flight for a in half) <= 6
