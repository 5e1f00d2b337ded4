"""Thousands of constrained requests, every output validated, every input id accounted for exactly once.

Two modes share one input format, one state folder and one output format:

- ``run_batch``: online, against any provider (OpenAI, or a fleet of vLLM / SGLang / ``constrain serve``
  behind one URL), N requests in flight, each through the same generate-validate loop as ``generate``
  and ``sql.ask``;
- ``submit_batch`` / ``batch_status`` / ``collect_batch``: OpenAI's Batch API (Responses-API lines,
  the Files API, 24 h window), each output validated locally when collected.

Input: JSONL, one object per line with ``"prompt"`` (required), ``"id"`` (optional, else the line
number) and any other keys (kept as metadata). Output folder: ``results.jsonl``, ``failures.jsonl``
and ``state.sqlite``. Any command can be killed at any moment and run again: finished items are never
sent again, and each id ends up exactly once in exactly one of the two files (checked at the end).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..providers.base import Provider
from . import _openai
from ._openai import MAX_BYTES, MAX_LINES, BatchAPI
from ._pipeline import Pipeline, grammar_pipeline, jsonable, schema_pipeline, sql_pipeline
from ._progress import Progress
from ._state import FAILURES, RESULTS, STATE, BatchError, Counts, State
from ._summary import BatchSummary

__all__ = [
    "BatchError",
    "BatchSummary",
    "Counts",
    "Pipeline",
    "batch_status",
    "collect_batch",
    "pipeline",
    "run_batch",
    "submit_batch",
    "FAILURES",
    "RESULTS",
    "STATE",
]

PathLike = str | os.PathLike[str]


def pipeline(*, grammar: str | None = None, schema: str | None = None, sql_db: str | None = None) -> Pipeline:
    """The constraint for every item: exactly one of a grammar (name or ``.lark``), a JSON Schema file, a SQLite file."""
    given = [(k, v) for k, v in (("grammar", grammar), ("schema", schema), ("sql_db", sql_db)) if v]
    if len(given) != 1:
        raise InputError("give exactly one constraint: grammar=, schema= or sql_db=")
    kind, spec = given[0]
    return {"grammar": grammar_pipeline, "schema": schema_pipeline, "sql_db": sql_pipeline}[kind](str(spec))


def _resolve(constraint: Pipeline | None, grammar: str | None, schema: str | None, sql_db: str | None) -> Pipeline:
    return constraint if constraint is not None else pipeline(grammar=grammar, schema=schema, sql_db=sql_db)


def _provider(provider: Provider | str | None, **options: Any) -> Provider:
    if isinstance(provider, Provider):
        return provider
    from .. import providers

    return providers.from_env(provider, **{k: v for k, v in options.items() if v is not None})


def _finish(state: State, started: float, mode: str, batches: list[dict[str, Any]] | None = None) -> BatchSummary:
    counts = state.counts()
    exactly_once = False
    if counts.finished:
        state.verify()  # raises BatchError when an id is missing, duplicated or misplaced
        exactly_once = True
    return BatchSummary(state.folder, counts, time.perf_counter() - started, exactly_once, batches or [], mode)


def run_batch(
    input: PathLike,
    out: PathLike,
    *,
    constraint: Pipeline | None = None,
    grammar: str | None = None,
    schema: str | None = None,
    sql_db: str | None = None,
    provider: Provider | str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    concurrency: int = 16,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    retry_failed: bool = False,
    progress: bool | None = None,
) -> BatchSummary:
    """Online mode: every item not yet finished through the generate-validate loop, ``concurrency`` at a time.

    ``progress=None`` draws a bar on stderr when it is a terminal. Safe to kill and run again.
    """
    if concurrency < 1:
        raise InputError("concurrency must be at least 1")
    started = time.perf_counter()
    chosen = _resolve(constraint, grammar, schema, sql_db)
    with State(out) as state:
        state.open_input(input, "run", chosen.describe())
        if retry_failed:
            state.retry_failed()
        state.sync_outputs()
        counts = state.counts()
        if counts.pending:
            client = _provider(provider, base_url=base_url, model=model)
            bar = Progress(counts.total, counts.total - counts.pending, enabled=progress)
            try:
                asyncio.run(_run(state, chosen, client, concurrency, max_attempts, max_tokens, bar))
            finally:
                bar.close()
        return _finish(state, started, "online")


async def _run(state: State, chosen: Pipeline, client: Provider, concurrency: int, max_attempts: int,
               max_tokens: int | None, bar: Progress) -> None:
    from ._online import run_online

    try:
        await run_online(state, chosen, client, concurrency=concurrency, max_attempts=max_attempts, max_tokens=max_tokens, progress=bar)
    finally:
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()


def _batch_api(provider: Provider | str | None, base_url: str | None, model: str | None, api_key: str | None) -> BatchAPI:
    from ..providers.openai import OpenAI

    client = _provider(provider or "openai", base_url=base_url, model=model, api_key=api_key)
    if not isinstance(client, OpenAI):
        raise InputError(f"the Batch API mode needs an OpenAI Responses provider (openai, azure), not {client.name!r}; "
                         "use `constrain batch run` for other servers")
    return BatchAPI(client)


def submit_batch(
    input: PathLike,
    out: PathLike,
    *,
    constraint: Pipeline | None = None,
    grammar: str | None = None,
    schema: str | None = None,
    sql_db: str | None = None,
    provider: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
    retry_failed: bool = False,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Batch API mode: upload the unfinished items and create their batches (idempotent; safe to repeat).

    ``retry_failed`` first makes the failed items pending again, so they go out in a new batch.
    """
    started = time.perf_counter()
    chosen = _resolve(constraint, grammar, schema, sql_db)
    with State(out) as state:
        state.open_input(input, "submit", chosen.describe())
        _store_connection(state, provider, base_url, model)
        if retry_failed:
            state.retry_failed()
        state.sync_outputs()
        api = _batch_api(provider, base_url, model, api_key)
        try:
            _openai.submit(state, chosen, api, max_tokens=max_tokens, max_lines=max_lines, max_bytes=max_bytes, log=log)
        finally:
            api.close()
        return BatchSummary(state.folder, state.counts(), time.perf_counter() - started, False, _openai.describe(state), "batch")


def _store_connection(state: State, provider: str | None, base_url: str | None, model: str | None) -> None:
    """Remember where the batches live (never the key) so ``status`` and ``collect`` need only the folder."""
    for key, value in (("provider", provider), ("base_url", base_url), ("model", model)):
        if value:
            state.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))


def _open_submitted(out: PathLike) -> State:
    if not (Path(out) / STATE).is_file():
        raise InputError(f"no {STATE} here; run `constrain batch submit ... -o {out}` first", source=str(out))
    state = State(out)
    if state.get("mode") != "submit":
        state.close()
        raise BatchError(f"{out} holds a `batch {state.get('mode')}` run, not Batch API batches")
    return state


def _stored_pipeline(state: State, sql_db: str | None = None) -> Pipeline:
    import json

    described = json.loads(state.get("constraint") or "{}")
    kind = {"grammar": "grammar", "schema": "schema", "sql": "sql_db"}[described["kind"]]
    source = described["source"]
    if kind == "sql_db" and sql_db:
        source = sql_db  # the state never holds a password: the caller gives the database again
    elif kind == "sql_db" and "***@" in source:
        raise BatchError(f"the batches were submitted against {source}, whose password is not stored; "
                         "give the database again (sql_db=, CLI --sql-db)")
    chosen = pipeline(**{kind: source})
    if chosen.fingerprint != described["fingerprint"]:
        raise BatchError(f"the constraint {described['source']} changed since the batches were submitted; "
                         "outputs would be validated against a different grammar")
    return chosen


def batch_status(
    out: PathLike,
    *,
    wait: bool = False,
    poll_interval: float = 10.0,
    max_interval: float = 120.0,
    timeout: float | None = None,
    provider: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    on_poll: Callable[[list[dict[str, Any]]], None] | None = None,
) -> BatchSummary:
    """Retrieve every batch of the folder (``wait=True``: poll with backoff until all are finished)."""
    started = time.perf_counter()
    with _open_submitted(out) as state:
        api = _batch_api(provider or state.get("provider"), base_url or state.get("base_url"), state.get("model"), api_key)
        try:
            if wait:
                shards = _openai.wait(state, api, interval=poll_interval, max_interval=max_interval, timeout=timeout, on_poll=on_poll)
            else:
                shards = _openai.refresh(state, api)
                if on_poll:
                    on_poll(shards)
        finally:
            api.close()
        return BatchSummary(state.folder, state.counts(), time.perf_counter() - started, False, shards, "batch")


def collect_batch(
    out: PathLike,
    *,
    provider: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    log: Callable[[str], None] | None = None,
    sql_db: str | None = None,
) -> BatchSummary:
    """Download and validate the outputs of every finished batch; the summary checks exactly-once when all are in.
    ``sql_db`` gives the database of a SQL batch again (its URL's password is never stored in the folder)."""
    started = time.perf_counter()
    with _open_submitted(out) as state:
        chosen = _stored_pipeline(state, sql_db)
        api = _batch_api(provider or state.get("provider"), base_url or state.get("base_url"), state.get("model"), api_key)
        try:
            _openai.refresh(state, api)
            _openai.collect(state, chosen, api, log=log)
        finally:
            api.close()
        return _finish(state, started, "batch", _openai.describe(state))
