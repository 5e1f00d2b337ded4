"""Online mode: every pending item through ``agenerate`` against one provider URL, N at a time.

The provider retries each request itself (``retry-after`` honoured); a rate limit or a transient failure
that outlives those retries pauses every worker (the server's ``retry-after``, else backoff) and puts the
item back, up to ``transient_rounds`` times. Outcomes are committed to the state in small groups and the
output files follow the commits (see ``_state``), so the process can be killed at any moment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..errors import ConstrainError, GenerationError, ProviderError
from ..generate import agenerate
from ..providers.base import Provider
from . import _records
from ._pipeline import Pipeline
from ._progress import Progress
from ._state import Item, State

__all__ = ["run_online"]


class _Gate:
    """A shared pause: after a rate limit every worker waits until ``until``."""

    def __init__(self) -> None:
        self.until = 0.0
        self.strikes = 0

    def pause(self, error: ProviderError) -> None:
        self.strikes += 1
        delay = error.retry_after if error.retry_after is not None else min(30.0, 0.5 * 2 ** min(self.strikes, 6))
        self.until = max(self.until, time.monotonic() + delay)

    def calm(self) -> None:
        self.strikes = 0

    async def wait(self) -> None:
        while (left := self.until - time.monotonic()) > 0:
            await asyncio.sleep(left)


async def run_online(
    state: State,
    pipeline: Pipeline,
    provider: Provider,
    *,
    concurrency: int = 16,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    transient_rounds: int = 5,
    progress: Progress | None = None,
    flush_every: float = 0.25,
) -> None:
    queue: asyncio.Queue[tuple[Item, int] | None] = asyncio.Queue()
    outcomes: list[tuple[int, str, str]] = []
    gate = _Gate()
    constraint_grammar = pipeline.grammar
    busy = 0
    idle = asyncio.Event()

    async def produce() -> None:
        for item in state.items():
            while queue.qsize() >= concurrency * 4:  # stream the input: never more than a few pages queued
                await asyncio.sleep(0.005)
            queue.put_nowait((item, 0))
        while busy or not queue.empty():  # a retried item goes back on the queue before its worker is free
            idle.clear()
            await idle.wait()
        for _ in range(concurrency):
            queue.put_nowait(None)

    async def work() -> None:
        nonlocal busy
        while True:
            job = await queue.get()
            if job is None:
                return
            busy += 1
            try:
                await handle(*job)
            finally:
                busy -= 1
                idle.set()

    async def handle(item: Item, round_: int) -> None:
        await gate.wait()
        try:
            result = await agenerate(
                pipeline.messages(item.prompt),
                grammar=constraint_grammar,
                provider=provider,
                validator=pipeline.validator,
                max_attempts=max_attempts,
                max_tokens=max_tokens,
                tool_name=pipeline.tool_name,
                describe=pipeline.guided,
            )
        except GenerationError as exc:
            record(item.seq, "failed", _records.failure(item, exc))
            return
        except ProviderError as exc:
            if exc.retryable and round_ < transient_rounds:
                gate.pause(exc)
                queue.put_nowait((item, round_ + 1))
                return
            record(item.seq, "failed", _records.failure(item, exc))
            return
        except ConstrainError as exc:
            record(item.seq, "failed", _records.failure(item, exc))
            return
        gate.calm()
        record(item.seq, "done", _records.from_result(item, pipeline, result))

    def record(seq: int, status: str, line: str) -> None:
        outcomes.append((seq, status, line))
        if progress is not None:
            progress.update(done=status == "done", failed=status == "failed")

    def flush() -> None:
        batch, outcomes[:] = list(outcomes), []
        state.finish(batch)
        state.sync_outputs()

    async def flusher() -> None:
        while True:
            await asyncio.sleep(flush_every)
            flush()

    state.sync_outputs()  # cut back anything a killed run appended but never committed
    producer = asyncio.create_task(produce())
    ticker = asyncio.create_task(flusher())
    try:
        await asyncio.gather(*(work() for _ in range(concurrency)))
        await producer
    finally:
        ticker.cancel()
        producer.cancel()
        flush()
