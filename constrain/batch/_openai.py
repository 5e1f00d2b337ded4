"""OpenAI Batch API mode: requests as Responses-API lines, uploaded through the Files API, run as batches.

``submit`` writes the pending items as ``{"custom_id", "method", "url": "/v1/responses", "body"}`` lines
(the body is exactly what the online provider sends), split into files of at most 50,000 lines and
200 MB, uploads each (``purpose=batch``) and creates a batch (``endpoint=/v1/responses``,
``completion_window=24h``) tagged with a metadata token, so a submit killed after the create finds its
batch again instead of creating a second one. ``status`` polls; ``collect`` downloads the output and
error files (streamed to disk), matches every line on ``custom_id``, validates it locally and records
the outcome; items of an expired, failed or cancelled batch without a line are recorded as failures.

Rounds: an output the validator refuses (or cut at the token limit) is fed back as the online loop's re-ask
does (``generate._feedback``: the refused output, then what was wrong), and the item goes into a follow-up
batch, up to ``max_attempts`` rounds; a malformed response is sent again as it was. An item's round and its
refused rounds live in its row, moved on in the same commit that takes it out of its batch, so a command
killed anywhere and run again never sends an item twice in one round. ``cancel`` asks the service to cancel
every running batch and records it: no further round is submitted, and ``collect`` takes what ran.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from ..errors import ConstrainError, InputError, ProviderConnectionError, ProviderError, ProviderTimeoutError, ResponseFormatError
from ..generate import _RETRY_ON_ERROR as _REASK  # what the generate loop feeds back to the model; the same here
from ..generate import _feedback  # the generate loop's re-ask message: one builder for both modes
from ..providers._http import RetryPolicy, _ssl_context, error_from_response
from ..providers.base import Completion, Message
from ..providers.openai import OpenAI
from . import _records
from ._pipeline import Pipeline
from ._state import _ITEM_COLUMNS, BatchError, Item, State, item_from_row

__all__ = ["BatchAPI", "MAX_LINES", "MAX_BYTES", "TERMINAL", "submit", "refresh", "wait", "collect", "cancel", "settle_cancelled"]

MAX_LINES = 50_000
MAX_BYTES = 200 * 1000 * 1000
ENDPOINT = "/v1/responses"
WINDOW = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_TOKEN_KEY = "constrain_token"
_LINE_ERRORS = {"failed": "BatchFailed", "expired": "BatchExpired", "cancelled": "BatchCancelled"}


class BatchAPI:
    """The Files and Batches endpoints, with the provider's base URL, key (never shown) and retry policy."""

    def __init__(self, provider: OpenAI, *, timeout: float = 120.0, retry: RetryPolicy | None = None) -> None:
        self.provider = provider
        self.retry = retry or RetryPolicy(max_retries=5, backoff=1.0, max_backoff=30.0)
        self._rng = random.Random()
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), params=dict(provider.default_query),
                                   verify=_ssl_context())

    def __repr__(self) -> str:
        return f"BatchAPI(base_url={self.provider.base_url!r})"

    def close(self) -> None:
        self.client.close()

    def _headers(self, json_body: bool = True) -> dict[str, str]:
        headers = self.provider._headers()
        if not json_body:
            headers.pop("Content-Type", None)
        return headers

    def _call(self, method: str, path: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        retry_number = 0
        name = self.provider.name
        while True:
            try:
                response = send()
                if response.status_code < 300:
                    return response
                error: ProviderError = error_from_response(response.status_code, response.headers, response.read(),
                                                           provider=name, secret=self.provider._key.value)
                error.args = (f"{method} {path}: {error}",)
            except httpx.TimeoutException as exc:
                error = ProviderTimeoutError(f"{name}: {method} {path}: no answer in time ({type(exc).__name__})", provider=name)
            except httpx.HTTPError as exc:
                error = ProviderConnectionError(f"{name}: {method} {path}: connection failed: {type(exc).__name__}", provider=name)
            delay = self.retry.delay(retry_number, error, self._rng)
            if delay is None:
                raise error
            retry_number += 1
            time.sleep(delay)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.provider.base_url}{path}"
        response = self._call(method, path, lambda: self.client.request(method, url, headers=self._headers(), **kwargs))
        try:
            return response.json()
        except ValueError:
            raise ConstrainError(f"{method} {path}: the answer is not JSON") from None

    def upload(self, path: Path) -> dict[str, Any]:
        """``POST /files`` (multipart, ``purpose=batch``), streamed from disk."""
        url = f"{self.provider.base_url}/files"

        def send() -> httpx.Response:
            with open(path, "rb") as fh:
                return self.client.post(url, headers=self._headers(json_body=False), data={"purpose": "batch"},
                                        files={"file": (path.name, fh, "application/jsonl")})

        return dict(self._call("POST", "/files", send).json())

    def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        body = {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": WINDOW, "metadata": metadata}
        return dict(self._json("POST", "/batches", json=body))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/batches/{batch_id}/cancel"))

    def find(self, metadata_key: str, value: str, pages: int = 5) -> dict[str, Any] | None:
        """The batch whose metadata carries ``value`` (the newest pages of ``GET /batches``)."""
        after: str | None = None
        for _ in range(pages):
            params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
            page = self._json("GET", "/batches", params=params)
            for batch in page.get("data") or []:
                if (batch.get("metadata") or {}).get(metadata_key) == value:
                    return dict(batch)
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page["data"][-1]["id"]
        return None

    def download(self, file_id: str, target: Path) -> Path:
        """``GET /files/{id}/content`` streamed into ``target`` (never held in memory)."""
        url = f"{self.provider.base_url}/files/{file_id}/content"
        temporary = target.with_suffix(".part")

        def send() -> httpx.Response:
            with self.client.stream("GET", url, headers=self._headers()) as response:
                if response.status_code < 300:
                    with open(temporary, "wb") as fh:
                        for chunk in response.iter_bytes(1 << 16):
                            fh.write(chunk)
                else:
                    response.read()
                return response

        self._call("GET", f"/files/{file_id}/content", send)
        os.replace(temporary, target)
        return target


# -- submit ------------------------------------------------------------------------------------------
def messages_for(item: Item, pipeline: Pipeline) -> list[Message]:
    """The conversation of an item's round: its prompt, then the feedback of every refused earlier round."""
    messages = pipeline.messages(item.prompt)
    for entry in item.history:
        messages += [Message(role, content) for role, content in entry.get("feedback") or ()]
    return messages


def _request_line(item: Item, pipeline: Pipeline, provider: OpenAI, max_tokens: int | None) -> bytes:
    body = provider.build(messages_for(item, pipeline), pipeline.constraint, max_tokens=max_tokens, stream=False).body
    line = {"custom_id": item.id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def plan_shards(state: State, pipeline: Pipeline, provider: OpenAI, max_tokens: int | None, max_lines: int, max_bytes: int) -> int:
    """Assign every pending item to a shard (a future batch) within the limits, one round per shard; one
    commit. Returns shards added."""
    state.db.execute("BEGIN IMMEDIATE")
    try:
        next_shard = (state.db.execute("SELECT max(shard) FROM shards").fetchone()[0] or 0) + 1
        added, lines, size = 0, 0, 0
        current: list[int] = []

        def close_shard(round_: int) -> None:
            nonlocal next_shard, added, lines, size
            state.db.execute("INSERT INTO shards(shard, token, lines, bytes, round) VALUES(?, ?, ?, ?, ?)",
                             (next_shard, f"{state.run_token}:{next_shard}", lines, size, round_))
            state.db.executemany("UPDATE items SET status = 'submitted', shard = ? WHERE seq = ?", [(next_shard, s) for s in current])
            next_shard, added, lines, size = next_shard + 1, added + 1, 0, 0
            current.clear()

        rounds = [r for (r,) in state.db.execute("SELECT DISTINCT round FROM items WHERE status = 'pending' ORDER BY round").fetchall()]
        for round_ in rounds:
            for item in state.items("status = 'pending' AND round = ?", (round_,)):
                n = len(_request_line(item, pipeline, provider, max_tokens))
                if n > max_bytes:
                    raise BatchError(f"item {item.id!r} (input line {item.line}) alone exceeds the {max_bytes}-byte file limit")
                if current and (lines + 1 > max_lines or size + n > max_bytes):
                    close_shard(round_)
                current.append(item.seq)
                lines, size = lines + 1, size + n
            if current:
                close_shard(round_)
        state.db.execute("COMMIT")
    except BaseException:
        state.db.execute("ROLLBACK")
        raise
    return added


def _write_requests(state: State, shard: int, pipeline: Pipeline, provider: OpenAI, max_tokens: int | None) -> Path:
    folder = state.folder / "requests"
    folder.mkdir(exist_ok=True)
    path = folder / f"batch-{shard:04d}.jsonl"
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as fh:
        for item in state.items("shard = ? AND status = 'submitted'", (shard,)):
            fh.write(_request_line(item, pipeline, provider, max_tokens))
    os.replace(temporary, path)
    return path


def submit(state: State, pipeline: Pipeline, api: BatchAPI, *, max_tokens: int | None = None,
           max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES, log: Callable[[str], None] | None = None) -> None:
    """Create a batch for every shard that has none yet; safe to repeat after any interruption."""
    provider = api.provider
    if not 1 <= max_lines <= MAX_LINES or not 1 <= max_bytes <= MAX_BYTES:
        raise InputError(f"a batch file holds 1..{MAX_LINES} lines and at most {MAX_BYTES} bytes")
    plan_shards(state, pipeline, provider, max_tokens, max_lines, max_bytes)
    for shard in state.shards("batch_id IS NULL AND collected = 0"):
        number = shard["shard"]
        if shard["file_id"] is None:
            path = _write_requests(state, number, pipeline, provider, max_tokens)
            uploaded = api.upload(path)
            state.update_shard(number, file_id=uploaded["id"])
            if log:
                log(f"uploaded {path.name}: {shard['lines']} requests (round {shard['round']}), "
                    f"{uploaded.get('bytes', shard['bytes'])} bytes as {uploaded['id']}")
        file_id = state.shards("shard = ?", (number,))[0]["file_id"]
        batch = api.find(_TOKEN_KEY, shard["token"]) or api.create(file_id, {_TOKEN_KEY: shard["token"]})
        _record_batch(state, number, batch)
        if log:
            log(f"batch {batch['id']} (round {shard['round']}): {batch.get('status')}")


def _record_batch(state: State, shard: int, batch: dict[str, Any]) -> None:
    errors = batch.get("errors")
    state.update_shard(shard, batch_id=batch["id"], status=batch.get("status"), output_file_id=batch.get("output_file_id"),
                       error_file_id=batch.get("error_file_id"), request_counts=json.dumps(batch.get("request_counts")),
                       errors=json.dumps(errors) if errors else None)


def refresh(state: State, api: BatchAPI) -> list[dict[str, Any]]:
    """Retrieve every batch not yet collected; return every shard's row."""
    for shard in state.shards("batch_id IS NOT NULL AND collected = 0"):
        if shard["status"] not in TERMINAL or shard["output_file_id"] is None and shard["error_file_id"] is None:
            _record_batch(state, shard["shard"], api.retrieve(shard["batch_id"]))
    return describe(state)


def describe(state: State) -> list[dict[str, Any]]:
    shown = []
    for shard in state.shards():
        entry = {k: shard[k] for k in ("shard", "round", "batch_id", "status", "lines", "output_file_id", "error_file_id", "collected")}
        entry["cancel_requested"] = bool(shard["cancel_requested"])
        entry["request_counts"] = json.loads(shard["request_counts"]) if shard["request_counts"] else None
        if shard["errors"]:
            entry["errors"] = json.loads(shard["errors"])
        shown.append(entry)
    return shown


def wait(state: State, api: BatchAPI, *, interval: float = 10.0, max_interval: float = 120.0, timeout: float | None = None,
         on_poll: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Poll with backoff (``interval`` doubling up to ``max_interval``) until every batch is terminal."""
    started = time.monotonic()
    delay = interval
    while True:
        shards = refresh(state, api)
        if on_poll:
            on_poll(shards)
        if all(s["status"] in TERMINAL for s in shards if not s["collected"]):
            return shards
        if timeout is not None and time.monotonic() - started + delay > timeout:
            raise BatchError(f"batches still running after {timeout:g} s; run `constrain batch status {state.folder} --wait` again")
        time.sleep(delay)
        delay = min(max_interval, delay * 1.5)


# -- collect -----------------------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                try:
                    yield number, json.loads(raw)
                except ValueError:
                    yield number, None


def _judge(item: Item, pipeline: Pipeline, provider: OpenAI, entry: dict[str, Any], batch_id: str, more: bool) -> tuple[str, str]:
    """``("done" | "failed", record line)``, or ``("refused", history JSON)`` when the item goes on to the next
    round (``more``: rounds are left and the folder was not cancelled)."""
    response = entry.get("response") if isinstance(entry.get("response"), dict) else None
    error = entry.get("error")
    extra = {"batch_id": batch_id}
    history = item.history
    answered = len(history)  # the rounds before this one all produced an output

    def failed(cause: BaseException | dict[str, Any], attempts: int, usage: Any = None, output: str | None = None,
               request_id: str | None = None) -> tuple[str, str]:
        last = _records.round_entry(item.round, cause, output=output, usage=usage, batch_id=batch_id, request_id=request_id)
        rounds = _records.rounds_of(history, last) if history else None
        total = _records.usage_of(history, usage) if usage is not None or history else None
        return "failed", _records.failure(item, cause, attempts=attempts, usage=total, last_output=output, rounds=rounds, **extra)

    def refused(cause: ConstrainError, usage: Any, output: str | None, request_id: str | None, feedback: list[Message]) -> tuple[str, str]:
        last = _records.round_entry(item.round, cause, output=output, usage=usage, batch_id=batch_id, request_id=request_id,
                                    feedback=[(m.role, m.content) for m in feedback])
        return "refused", json.dumps([*history, last], ensure_ascii=False, separators=(",", ":"))

    if error:
        code = str(error.get("code") or "batch_error")
        kind = {"batch_expired": "BatchExpired", "batch_cancelled": "BatchCancelled"}.get(code, "BatchRequestError")
        return failed({"type": kind, "code": code, "message": str(error.get("message") or code)}, answered)
    if response is None:
        return failed({"type": "BatchRequestError", "message": "the batch line has neither response nor error"}, answered)
    status = int(response.get("status_code") or 0)
    body = response.get("body")
    request_id = response.get("request_id")
    if status >= 300:
        failure = error_from_response(status, httpx.Headers({"x-request-id": str(request_id or "")}), json.dumps(body).encode(),
                                      provider=provider.name, grammar_name=pipeline.grammar.name)
        return failed(failure, answered + 1, request_id=request_id)
    try:
        completion: Completion = provider.read(body, pipeline.constraint, request_id=request_id, elapsed=0.0)
    except ResponseFormatError as exc:
        if more:  # nothing to feed back: the same request again
            return refused(exc, None, None, request_id, [])
        return failed(exc, answered + 1, request_id=request_id)
    except ConstrainError as exc:
        return failed(exc, answered + 1, request_id=request_id)
    try:
        value = pipeline.check(completion)
    except _REASK as exc:
        if more:
            return refused(exc, completion.usage, completion.text, request_id, _feedback(completion.text, exc))
        return failed(exc, answered + 1, completion.usage, completion.text, request_id)
    except ConstrainError as exc:
        return failed(exc, answered + 1, completion.usage, completion.text, request_id)
    rounds = _records.rounds_of(history) if history else None
    return "done", _records.success(item, pipeline, completion.text, value, answered + 1, _records.usage_of(history, completion.usage),
                                    model=completion.model, request_id=request_id, rounds=rounds, **extra)


def collect(state: State, pipeline: Pipeline, api: BatchAPI, *, max_attempts: int = 1, log: Callable[[str], None] | None = None) -> int:
    """Download, match, validate and record the lines of every finished batch not yet collected. An item
    refused in round ``r < max_attempts`` (and the folder not cancelled) goes back to pending for round
    ``r + 1``. Returns how many went on to a next round."""
    provider = api.provider
    downloads = state.folder / "downloads"
    downloads.mkdir(exist_ok=True)
    cancelled = state.cancelled
    moved_on = 0
    for shard in state.shards("batch_id IS NOT NULL AND collected = 0"):
        if shard["status"] not in TERMINAL:
            continue
        number, batch_id = shard["shard"], shard["batch_id"]
        for key in ("output_file_id", "error_file_id"):
            file_id = shard[key]
            if not file_id:
                continue
            path = api.download(file_id, downloads / f"{batch_id}-{key.split('_')[0]}.jsonl")
            outcomes: list[tuple[int, str, str]] = []
            refused: list[tuple[int, int, str]] = []
            for number_in_file, entry in _lines(path):
                if entry is None or not isinstance(entry.get("custom_id"), str):
                    if log:
                        log(f"{path.name}: line {number_in_file} is not a batch output line; skipped")
                    continue
                row = state.db.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ? AND shard = ? AND status = 'submitted'",
                                       (entry["custom_id"], number)).fetchone()
                if row is None:  # not ours, or already recorded by an earlier collect
                    continue
                item = item_from_row(row)
                verdict, payload = _judge(item, pipeline, provider, entry, batch_id, more=not cancelled and item.round < max_attempts)
                if verdict == "refused":
                    refused.append((item.seq, number, payload))
                else:
                    outcomes.append((item.seq, verdict, payload))
                if len(outcomes) + len(refused) >= 1000:
                    state.finish(outcomes)
                    state.advance(refused)
                    moved_on += len(refused)
                    outcomes, refused = [], []
            state.finish(outcomes)
            state.advance(refused)
            moved_on += len(refused)
        # whatever the batch never answered: expired, failed, cancelled, or a line missing from the files
        kind = _LINE_ERRORS.get(shard["status"], "MissingOutput")
        errors = json.loads(shard["errors"]) if shard["errors"] else None
        detail = "; ".join(str(e.get("message")) for e in (errors or {}).get("data") or [] if isinstance(e, dict))
        message = (f"batch {batch_id} ended {shard['status']}" + (f": {detail}" if detail else "")
                   if kind != "MissingOutput" else f"batch {batch_id} completed without a line for this custom_id")
        cause = {"type": kind, "message": message, "batch_status": shard["status"]}
        missing = [(item.seq, "failed", _never_answered(item, cause, batch_id))
                   for item in state.items("shard = ? AND status = 'submitted'", (number,))]
        state.finish(missing)
        state.update_shard(number, collected=1)
        if log:
            log(f"collected batch {batch_id} (round {shard['round']}, {shard['status']})")
    state.sync_outputs()
    return moved_on


def _never_answered(item: Item, cause: dict[str, Any], batch_id: str | None) -> str:
    """The failure record of an item whose round produced no output (its earlier rounds kept)."""
    last = _records.round_entry(item.round, cause, batch_id=batch_id)
    rounds = _records.rounds_of(item.history, last) if item.history else None
    usage = _records.usage_of(item.history) if item.history else None
    return _records.failure(item, cause, attempts=len(item.history), usage=usage,
                            last_output=item.history[-1].get("output") if item.history else None, rounds=rounds, batch_id=batch_id)


# -- cancel --------------------------------------------------------------------------------------------
def cancel(state: State, api: BatchAPI, *, log: Callable[[str], None] | None = None) -> list[str]:
    """Record that the folder is cancelled (no further round is submitted), then ask the service to cancel
    every batch still running. Returns the ids of the batches a cancel was sent for; safe to repeat."""
    state.mark_cancelled()
    sent: list[str] = []
    for shard in state.shards("collected = 0"):
        number = shard["shard"]
        batch_id = shard["batch_id"]
        if batch_id is None:  # a submit stopped before recording its batch: it may exist all the same
            found = api.find(_TOKEN_KEY, shard["token"]) if shard["file_id"] else None
            if found is None:
                state.update_shard(number, status="cancelled", cancel_requested=1)
                continue
            _record_batch(state, number, found)
            batch_id = found["id"]
        elif shard["status"] in TERMINAL:
            continue
        batch = api.retrieve(batch_id)
        if batch.get("status") in ("validating", "in_progress"):
            try:
                batch = api.cancel(batch_id)
                sent.append(batch_id)
            except ProviderError:
                batch = api.retrieve(batch_id)  # it finished meanwhile: fine; anything else is a real error
                if batch.get("status") not in TERMINAL and batch.get("status") != "cancelling":
                    raise
        _record_batch(state, number, batch)
        if batch.get("status") in ("cancelling", "cancelled"):
            state.update_shard(number, cancel_requested=1)
        if log:
            log(f"batch {batch_id} (round {shard['round']}): {batch.get('status')}")
    return sent


def settle_cancelled(state: State) -> int:
    """After a cancel: the items that will never be sent (a next round, or a batch never created) become
    ``BatchCancelled`` failures. Returns how many."""
    unsent = [(shard["shard"], shard["round"]) for shard in state.shards("batch_id IS NULL AND collected = 0")]
    outcomes: list[tuple[int, str, str]] = []
    settled = 0
    where = "(status = 'pending' OR (status = 'submitted' AND shard IN (SELECT shard FROM shards WHERE batch_id IS NULL)))"
    for item in state.items(where):
        cause = {"type": "BatchCancelled",
                 "message": f"not sent: the batches were cancelled before round {item.round} of this item was submitted"}
        outcomes.append((item.seq, "failed", _never_answered(item, cause, None)))
        settled += 1
        if len(outcomes) >= 1000:
            state.finish(outcomes)
            outcomes = []
    state.finish(outcomes)
    for number, _ in unsent:
        state.update_shard(number, collected=1, status="cancelled")
    state.sync_outputs()
    return settled
