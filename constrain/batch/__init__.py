"""Thousands of constrained requests, every output validated, every input id accounted for exactly once.

Two modes share one input format, one state folder and one output format:

- ``run_batch``: online, against any provider (OpenAI, or a fleet of vLLM / SGLang / ``constrain serve``
  behind one URL), N requests in flight, each through the same generate-validate loop as ``generate``
  and ``sql.ask``;
- ``submit_batch`` / ``batch_status`` / ``collect_batch`` / ``cancel_batch``: OpenAI's Batch API
  (Responses-API lines, the Files API, 24 h window), each output validated locally when collected; an
  output the validator refuses goes into a follow-up batch with the validator's feedback (rounds, up to
  ``max_attempts``).

Online mode adapts its concurrency to rate limits (AIMD: halved on a 429, +1 per window of successes,
never above ``concurrency``); see ``_online``.

Input: JSONL, one object per line with ``"prompt"`` (required), ``"id"`` (optional, else the line
number) and any other keys (kept as metadata). Output folder: ``results.jsonl``, ``failures.jsonl``
and ``state.sqlite``. Any command can be killed at any moment and run again: finished items are never
sent again, and each id ends up exactly once in exactly one of the two files (checked at the end).

May import: ``constrain.sql``, ``constrain.generate``, ``constrain.providers``, ``constrain.json_schema``,
``constrain.grammar``, ``constrain.errors``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InputError
from ..providers.base import Provider
from . import _openai
from ._openai import MAX_BYTES, MAX_LINES, BatchAPI
from ._pipeline import Pipeline, grammar_pipeline, schema_pipeline, sql_pipeline
from ._progress import Progress
from ._state import FAILURES, RESULTS, STATE, BatchError, Counts, State
from ._summary import BatchSummary

__all__ = [
    "BatchError",
    "BatchSummary",
    "Counts",
    "Pipeline",
    "batch_status",
    "cancel_batch",
    "collect_batch",
    "pipeline",
    "run_batch",
    "submit_batch",
    "FAILURES",
    "RESULTS",
    "STATE",
]

PathLike = str | os.PathLike[str]


def pipeline(*, grammar: str | None = None, schema: str | None = None, sql_db: str | None = None,
             sql_schemas: Sequence[str] = (), sql_schema_budget: int | None = None) -> Pipeline:
    """The constraint for every item: exactly one of a grammar (name or ``.lark``), a JSON Schema file, a
    database (anything ``constrain.sql.connect`` takes; ``sql_schemas`` names its schemas to read beside the
    current one; ``sql_schema_budget`` bounds the schema in each prompt as ``sql.ask``'s ``schema_budget``)."""
    given = [(k, v) for k, v in (("grammar", grammar), ("schema", schema), ("sql_db", sql_db)) if v]
    if len(given) != 1:
        raise InputError("give exactly one constraint: grammar=, schema= or sql_db=")
    kind, spec = given[0]
    if (sql_schemas or sql_schema_budget is not None) and kind != "sql_db":
        raise InputError("sql_schemas= and sql_schema_budget= (CLI --sql-schema, --schema-budget) are about a "
                         "database: give sql_db= too")
    if kind == "sql_db":
        return sql_pipeline(str(spec), tuple(sql_schemas), sql_schema_budget)
    return {"grammar": grammar_pipeline, "schema": schema_pipeline}[kind](str(spec))


def _resolve(constraint: Pipeline | None, grammar: str | None, schema: str | None, sql_db: str | None,
             sql_schemas: Sequence[str], sql_schema_budget: int | None) -> Pipeline:
    return constraint if constraint is not None else pipeline(grammar=grammar, schema=schema, sql_db=sql_db,
                                                              sql_schemas=sql_schemas, sql_schema_budget=sql_schema_budget)


def _provider(provider: Provider | str | None, **options: Any) -> Provider:
    if isinstance(provider, Provider):
        return provider
    from .. import providers

    return providers.from_env(provider, **{k: v for k, v in options.items() if v is not None})


def _finish(state: State, started: float, mode: str, batches: list[dict[str, Any]] | None = None,
            concurrency: dict[str, Any] | None = None) -> BatchSummary:
    counts = state.counts()
    exactly_once = False
    if counts.finished:
        state.verify()  # raises BatchError when an id is missing, duplicated or misplaced
        exactly_once = True
    return _summary(state, started, mode, batches, exactly_once=exactly_once, concurrency=concurrency)


def _summary(state: State, started: float, mode: str, batches: list[dict[str, Any]] | None = None, *,
             exactly_once: bool = False, concurrency: dict[str, Any] | None = None) -> BatchSummary:
    batch_mode = mode == "batch"
    return BatchSummary(state.folder, state.counts(), time.perf_counter() - started, exactly_once, batches or [], mode,
                        rounds=state.rounds() if batch_mode else [], concurrency=concurrency,
                        cancelled=batch_mode and state.cancelled)


def _online_provider(provider: Provider | str | None, limiter: Any, **options: Any) -> tuple[Provider, bool]:
    """The online mode's provider and whether its HTTP transport takes the limiter's slots per request
    (only for a provider built here, over HTTP, and not behind an environment proxy)."""
    if isinstance(provider, Provider):
        return provider, False
    from .. import providers
    from ._online import LimitedTransport, proxied

    name = providers.choose(provider, base_url=options.get("base_url"))
    module, _, class_name = (providers.PROVIDERS.get(name, ":") if isinstance(name, str) else ":").partition(":")
    try:
        cls = getattr(importlib.import_module(module), class_name) if module else None
    except ImportError:
        cls = None  # from_env names the missing dependency
    http = isinstance(cls, type) and issubclass(cls, providers.HTTPProvider)
    if http:
        options["async_transport"] = LimitedTransport(limiter)
    client = providers.from_env(name, **{k: v for k, v in options.items() if v is not None})
    return client, http and not proxied(getattr(client, "base_url", ""))


def run_batch(
    input: PathLike,
    out: PathLike,
    *,
    constraint: Pipeline | None = None,
    grammar: str | None = None,
    schema: str | None = None,
    sql_db: str | None = None,
    sql_schemas: Sequence[str] = (),
    sql_schema_budget: int | None = None,
    provider: Provider | str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    concurrency: int = 16,
    adaptive: bool = True,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    timeout: float | None = None,
    retry_failed: bool = False,
    progress: bool | None = None,
) -> BatchSummary:
    """Online mode: every item not yet finished through the generate-validate loop, at most ``concurrency``
    requests in flight.

    ``adaptive`` (default): on HTTP 429 the limit is halved (floor 1) and it grows back by one per window of
    successes, never above ``concurrency``; the other requests go on, only the refused one waits its
    ``retry-after``. ``adaptive=False``: ``concurrency`` fixed, and a rate limit that outlives the provider's
    retries pauses every worker. ``timeout``: seconds per HTTP request (for a provider built here).
    ``progress=None`` draws a bar on stderr when it is a terminal. Safe to kill and run again.
    """
    from ._online import Limiter

    if concurrency < 1:
        raise InputError("concurrency must be at least 1")
    started = time.perf_counter()
    chosen = _resolve(constraint, grammar, schema, sql_db, sql_schemas, sql_schema_budget)
    limiter = Limiter(concurrency, adaptive=adaptive)
    with State(out) as state:
        state.open_input(input, "run", chosen.describe())
        if retry_failed:
            state.retry_failed()
        state.sync_outputs()
        counts = state.counts()
        if counts.pending:
            client, per_request = _online_provider(provider, limiter, base_url=base_url, model=model, timeout=timeout)
            bar = Progress(counts.total, counts.total - counts.pending, enabled=progress)
            try:
                asyncio.run(_run(state, chosen, client, limiter, per_request, max_attempts, max_tokens, bar))
            finally:
                bar.close()
        return _finish(state, started, "online", concurrency=limiter.stats())


async def _run(state: State, chosen: Pipeline, client: Provider, limiter: Any, per_request: bool, max_attempts: int,
               max_tokens: int | None, bar: Progress) -> None:
    from ._online import run_online

    try:
        await run_online(state, chosen, client, max_attempts=max_attempts, max_tokens=max_tokens, progress=bar,
                         limiter=limiter, limited_transport=per_request)
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
    sql_schemas: Sequence[str] = (),
    sql_schema_budget: int | None = None,
    provider: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
    max_attempts: int = 3,
    retry_failed: bool = False,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Batch API mode: upload the unfinished items and create their batches (idempotent; safe to repeat).

    ``max_attempts``: rounds per item; ``collect`` puts an output the validator refuses into a follow-up
    batch with the validator's feedback while rounds are left. ``retry_failed`` first makes the failed
    items pending again (from round 1), so they go out in a new batch; it also lifts an earlier ``cancel``.
    """
    if max_attempts < 1:
        raise InputError("max_attempts must be at least 1")
    started = time.perf_counter()
    chosen = _resolve(constraint, grammar, schema, sql_db, sql_schemas, sql_schema_budget)
    with State(out) as state:
        state.open_input(input, "submit", chosen.describe())
        if state.cancelled and not retry_failed:
            raise BatchError(f"the batches of {out} were cancelled; run `constrain batch collect {out}` to take what ran, "
                             "then `submit ... --retry-failed` to send the failures again")
        _store_connection(state, provider, base_url, model)
        for key, value in (("max_tokens", max_tokens), ("max_attempts", max_attempts), ("max_lines", max_lines), ("max_bytes", max_bytes)):
            state.set(key, "" if value is None else value)
        if retry_failed:
            state.retry_failed()
            state.clear_cancelled()
        state.sync_outputs()
        api = _batch_api(provider, base_url, model, api_key)
        try:
            _openai.submit(state, chosen, api, max_tokens=max_tokens, max_lines=max_lines, max_bytes=max_bytes, log=log)
        finally:
            api.close()
        return _summary(state, started, "batch", _openai.describe(state))


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
    chosen = pipeline(**{kind: source}, sql_schemas=described.get("schemas", ()),
                      **({"sql_schema_budget": described["schema_budget"]} if "schema_budget" in described else {}))
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
        return _summary(state, started, "batch", shards)


def _stored_int(state: State, key: str, default: int | None) -> int | None:
    value = state.get(key)
    return int(value) if value else default


def _next_round(state: State, chosen: Pipeline, api: BatchAPI, log: Callable[[str], None] | None) -> None:
    """Submit the items waiting for a next round (refused ones, with the feedback), or, after a cancel,
    record the ones that will never be sent."""
    if state.cancelled:
        _openai.settle_cancelled(state)
        return
    if state.counts().pending:  # refused items waiting for their round, or a round whose batch a kill left uncreated
        _openai.submit(state, chosen, api, max_tokens=_stored_int(state, "max_tokens", None),
                       max_lines=_stored_int(state, "max_lines", MAX_LINES) or MAX_LINES,
                       max_bytes=_stored_int(state, "max_bytes", MAX_BYTES) or MAX_BYTES, log=log)


def collect_batch(
    out: PathLike,
    *,
    provider: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    log: Callable[[str], None] | None = None,
    sql_db: str | None = None,
    max_attempts: int | None = None,
    wait: bool = False,
    poll_interval: float = 10.0,
    max_interval: float = 120.0,
    timeout: float | None = None,
    on_poll: Callable[[list[dict[str, Any]]], None] | None = None,
) -> BatchSummary:
    """Download and validate the outputs of every finished batch; the summary checks exactly-once when all are in.

    An item whose output the validator refuses (or cut at the token limit, or malformed) goes into a
    follow-up batch whose requests carry the refused output and the validator's message, while it has
    rounds left (``max_attempts``, as given to ``submit_batch`` unless given here). ``wait=True`` polls and
    collects round after round until every item is finished (``timeout``: give up after that many seconds;
    run it again to go on). ``sql_db`` gives the database of a SQL batch again (its URL's password is never
    stored in the folder)."""
    if max_attempts is not None and max_attempts < 1:
        raise InputError("max_attempts must be at least 1")
    started = time.perf_counter()
    with _open_submitted(out) as state:
        chosen = _stored_pipeline(state, sql_db)
        if max_attempts is not None:
            state.set("max_attempts", max_attempts)
        attempts = _stored_int(state, "max_attempts", 1) or 1  # a folder from before rounds: one attempt
        api = _batch_api(provider or state.get("provider"), base_url or state.get("base_url"), state.get("model"), api_key)
        try:
            while True:
                _openai.refresh(state, api)
                _openai.collect(state, chosen, api, max_attempts=attempts, log=log)
                _next_round(state, chosen, api, log)
                if not wait or state.counts().finished:
                    break
                left = None if timeout is None else timeout - (time.perf_counter() - started)
                if left is not None and left <= 0:
                    raise BatchError(f"items still in batches after {timeout:g} s; run `constrain batch collect {out} --wait` again")
                _openai.wait(state, api, interval=poll_interval, max_interval=max_interval, timeout=left, on_poll=on_poll)
        finally:
            api.close()
        return _finish(state, started, "batch", _openai.describe(state))


def cancel_batch(
    out: PathLike,
    *,
    provider: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Cancel the folder's batches: ``POST /v1/batches/{id}/cancel`` for every batch still running, and no
    further round is submitted (recorded in the state, so it holds for every later command).

    A cancelled batch keeps what it ran: a later ``collect_batch`` takes the completed items of its partial
    output file (validated like any other), and every item that never ran ends in ``failures.jsonl`` as
    ``BatchCancelled``; ``submit_batch(..., retry_failed=True)`` sends those again. Safe to repeat.
    The summary's ``batches`` say which cancels were sent (``cancel_requested``) and each batch's status."""
    started = time.perf_counter()
    with _open_submitted(out) as state:
        api = _batch_api(provider or state.get("provider"), base_url or state.get("base_url"), state.get("model"), api_key)
        try:
            _openai.cancel(state, api, log=log)
        finally:
            api.close()
        return _summary(state, started, "batch", _openai.describe(state))
