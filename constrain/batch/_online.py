"""Online mode: every pending item through ``agenerate`` against one provider URL, at most N at a time.

The concurrency adapts to rate limits as TCP's congestion window does (additive increase, multiplicative
decrease): every HTTP request holds a slot of a ``Limiter`` until its body is read; an HTTP 429 halves the
limit (floor 1), and each run of ``limit`` successes raises it by one, never above the configured
maximum. A decrease happens once per window: the 429s of requests sent before the last decrease do not
count again, so one burst of refusals halves the limit once. Nothing pauses globally: the provider retries
the refused request itself after the server's ``retry-after`` while the other workers go on, and an item
whose retries run out goes back on the queue after its own delay, up to ``transient_rounds`` times.

``adaptive=False`` keeps the fixed behaviour: N requests in flight, and a rate limit or transient failure
that outlives the provider's retries pauses every worker (the server's ``retry-after``, else backoff).

Outcomes are committed to the state in small groups and the output files follow the commits (see
``_state``), so the process can be killed at any moment.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import urllib.request
from collections import deque
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

from ..errors import ConstrainError, GenerationError, ProviderError, RateLimitError
from ..generate import agenerate
from ..providers._http import _ssl_context
from ..providers.base import Provider
from . import _records
from ._pipeline import Pipeline
from ._progress import Progress
from ._state import Item, State

__all__ = ["Limiter", "LimitedTransport", "run_online", "proxied"]


class Limiter:
    """An AIMD concurrency limit shared by the requests of one run (one event loop).

    ``acquire`` waits for a slot (first come, first served) and returns the window it was taken in;
    ``rate_limited(window)`` halves the limit unless it was already lowered since that window began;
    ``succeeded`` counts towards the next +1. With ``adaptive=False`` the limit stays at ``maximum`` and
    only the counts move.
    """

    def __init__(self, maximum: int, *, adaptive: bool = True, decrease: float = 0.5) -> None:
        if maximum < 1:
            raise ValueError("the concurrency limit must be at least 1")
        self.maximum = maximum
        self.adaptive = adaptive
        self.decrease = decrease
        self.limit = maximum
        self.lowest = maximum
        self.in_flight = 0
        self.window = 0
        self.successes = 0
        self.rate_limits = self.lowered = self.raised = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"Limiter(limit={self.limit}, maximum={self.maximum}, in_flight={self.in_flight})"

    async def acquire(self) -> int:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self.window
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just before the cancel
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        return self.window

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def rate_limited(self, window: int) -> None:
        self.rate_limits += 1
        if not self.adaptive or window != self.window:
            return
        self.limit = max(1, int(self.limit * self.decrease))
        self.lowest = min(self.lowest, self.limit)
        self.window += 1
        self.successes = 0
        self.lowered += 1

    def succeeded(self) -> None:
        self.successes += 1
        if self.adaptive and self.limit < self.maximum and self.successes >= self.limit:
            self.limit += 1
            self.successes = 0
            self.raised += 1
            self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def stats(self) -> dict[str, Any]:
        return {"adaptive": self.adaptive, "maximum": self.maximum, "limit": self.limit, "lowest": self.lowest,
                "rate_limited": self.rate_limits, "lowered": self.lowered, "raised": self.raised}


class _Releasing(httpx.AsyncByteStream):
    """A response body that gives its slot back when it is closed (read to the end, or dropped)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> Any:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class LimitedTransport(httpx.AsyncBaseTransport):
    """The HTTP transport of the online mode's provider: each request (the provider's own retries
    included) takes a slot of ``limiter`` until its body is closed; a 429 lowers the limit, a success
    counts towards raising it. Requests wait here, never in a connection pool's queue."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        # several small pools, as the providers keep (one pool scans every connection for every request:
        # measured at concurrency 32, one pool ran the online mode at about half the rate of eight)
        pools = 8
        size = limiter.maximum + 2
        self._pools = [httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))
                       for _ in range(pools)]
        self._turn = itertools.count()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        window = await self.limiter.acquire()
        try:
            response = await self._pools[next(self._turn) % len(self._pools)].handle_async_request(request)
        except BaseException:
            self.limiter.release()
            raise
        if response.status_code == 429:
            self.limiter.rate_limited(window)
        elif response.status_code < 400:
            self.limiter.succeeded()
        response.stream = _Releasing(response.stream, self.limiter.release)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        if not self._closed:  # the provider's clients share this transport: each closes it
            self._closed = True
            for pool in self._pools:
                await pool.aclose()


def proxied(url: str) -> bool:
    """Whether an HTTP proxy from the environment takes requests to ``url`` (httpx then bypasses a client's
    transport, so the limiter must work at the item level instead)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Gate:
    """The fixed mode's shared pause: after a rate limit every worker waits until ``until``."""

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


def _backoff(round_: int, error: ProviderError) -> float:
    if error.retry_after is not None:
        return max(0.0, min(error.retry_after, 60.0))
    return min(30.0, 0.5 * 2 ** min(round_, 6)) * random.uniform(0.75, 1.25)


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
    limiter: Limiter | None = None,
    limited_transport: bool = False,
) -> None:
    """Run every pending item. ``limiter`` bounds the requests in flight; ``limited_transport`` says the
    provider's HTTP transport takes its slots per request (else each item takes one here, and only the
    rate limits that outlive the provider's retries lower it)."""
    limiter = limiter or Limiter(concurrency)
    workers = limiter.maximum
    at_item = not limited_transport
    queue: asyncio.Queue[tuple[Item, int] | None] = asyncio.Queue()
    outcomes: list[tuple[int, str, str]] = []
    gate = _Gate()
    constraint_grammar = pipeline.grammar
    busy = 0
    delayed = 0
    idle = asyncio.Event()

    async def produce() -> None:
        for item in state.items():
            while queue.qsize() >= workers * 4:  # stream the input: never more than a few pages queued
                await asyncio.sleep(0.005)
            queue.put_nowait((item, 0))
        while busy or delayed or not queue.empty():  # a retried item goes back on the queue before its worker is free
            idle.clear()
            await idle.wait()
        for _ in range(workers):
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

    def later(job: tuple[Item, int], delay: float) -> None:
        """Put an item back after its own delay; the other workers go on meanwhile."""
        nonlocal delayed
        delayed += 1

        def put() -> None:
            nonlocal delayed
            delayed -= 1
            queue.put_nowait(job)
            idle.set()

        asyncio.get_running_loop().call_later(delay, put)

    async def handle(item: Item, round_: int) -> None:
        if not limiter.adaptive:
            await gate.wait()
        window = await limiter.acquire() if at_item else 0
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
            if at_item and isinstance(exc, RateLimitError):
                limiter.rate_limited(window)
            if exc.retryable and round_ < transient_rounds:
                if limiter.adaptive:
                    later((item, round_ + 1), _backoff(round_, exc))
                else:
                    gate.pause(exc)
                    queue.put_nowait((item, round_ + 1))
                return
            record(item.seq, "failed", _records.failure(item, exc))
            return
        except ConstrainError as exc:
            record(item.seq, "failed", _records.failure(item, exc))
            return
        finally:
            if at_item:
                limiter.release()
        if at_item:
            limiter.succeeded()
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
        await asyncio.gather(*(work() for _ in range(workers)))
        await producer
    finally:
        ticker.cancel()
        producer.cancel()
        flush()
