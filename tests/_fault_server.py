"""Test-only fault injection on top of the real ``constrain.server.Server``.

``FaultServer`` records every request it receives and answers the next requests with queued faults
(HTTP errors with headers, delays, dropped connections, truncated or malformed bodies, a scripted
output that leaves the grammar); with no fault queued it answers like the real server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from constrain.server import GenerationRequest, RandomWalkBackend, Request, Responder, Server, ServerThread


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "delay" | "drop" | "truncate" | "malformed" | "output"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected failure"
    seconds: float = 0.0
    text: str = ""


def status(code: int, message: str = "injected failure", **headers: str) -> Fault:
    return Fault("status", status=code, message=message, headers={k.replace("_", "-"): v for k, v in headers.items()})


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds=seconds)


def drop() -> Fault:
    return Fault("drop")


def truncate() -> Fault:
    return Fault("truncate")


def malformed() -> Fault:
    return Fault("malformed")


def output(text: str) -> Fault:
    """The next generation answers ``text`` verbatim, grammar or not (a misbehaving engine)."""
    return Fault("output", text=text)


INVALID_OUTPUT = "\u00a7 not in any grammar \u00a7"
FEEDBACK_MARK = "rejected by the local validator"  # in the re-ask message of `generate` (and of Batch API rounds)


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]
    body: Any


class ScriptedBackend(RandomWalkBackend):
    """The random walk, except when a scripted text is queued for the next generation."""

    def __init__(self) -> None:
        super().__init__(seed=1234)
        self.scripted: deque[str] = deque()
        self.invalid_marker: str | None = None  # a conversation that mentions it always gets INVALID_OUTPUT
        # a conversation that mentions it gets INVALID_OUTPUT until it carries the validator's feedback (a re-ask)
        self.fixed_by_feedback: str | None = None

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        if self.invalid_marker is not None and any(self.invalid_marker in m.content for m in request.messages):
            yield INVALID_OUTPUT
            return
        if (self.fixed_by_feedback is not None and any(self.fixed_by_feedback in m.content for m in request.messages)
                and not any(FEEDBACK_MARK in m.content for m in request.messages if m.role == "user")):
            yield INVALID_OUTPUT
            return
        if self.scripted:
            text = self.scripted.popleft()
            for i in range(0, len(text), 3):
                yield text[i : i + 3]
            return
        yield from super().generate(request)


class FaultServer(Server):
    def __init__(self) -> None:
        self.scripted_backend = ScriptedBackend()
        super().__init__(self.scripted_backend, model="fault-test")
        self.faults: deque[Fault] = deque()
        self.seen: list[Seen] = []
        self.latency = 0.0  # seconds added to every /v1/responses request
        # Batch API faults for the next batches created: run only N lines then expire, or fail validation
        self.batch_expiries: deque[int] = deque()
        self.batch_failures: deque[list[dict[str, Any]]] = deque()
        self.batch.expire_after = lambda batch: self.batch_expiries.popleft() if self.batch_expiries else None
        self.batch.fail_with = lambda batch: self.batch_failures.popleft() if self.batch_failures else None

    def reset(self) -> None:
        self.faults.clear()
        self.seen.clear()
        self.scripted_backend.scripted.clear()
        self.scripted_backend.invalid_marker = None
        self.latency = 0.0
        self.batch_expiries.clear()
        self.batch_failures.clear()
        self.batch.step_seconds = 0.0

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def handle(self, request: Request, responder: Responder) -> None:
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        self.seen.append(Seen(request.path, request.query, dict(request.headers), body))
        if self.latency and request.path.endswith("/responses"):
            await asyncio.sleep(self.latency)
        fault = self.faults.popleft() if self.faults else None
        if fault is None:
            await super().handle(request, responder)
        elif fault.kind == "status":
            error = {"error": {"message": fault.message, "type": "injected", "param": None, "code": None}}
            await responder.send_json(fault.status, error, headers=fault.headers)
        elif fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await super().handle(request, responder)
        elif fault.kind == "drop":
            responder.abort()
        elif fault.kind == "truncate":
            payload = b'{"id": "resp_cut", "object": "response", "output": [{"type": "custom_tool_call"'
            await responder.send_bytes(200, payload, length=len(payload) * 2)
            responder.abort()
        elif fault.kind == "malformed":
            await responder.send_bytes(200, b'{"id": "resp_bad", "output": [}')
        elif fault.kind == "output":
            self.scripted_backend.scripted.append(fault.text)
            await super().handle(request, responder)

    def requests_to(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix)]


@pytest.fixture(scope="module")
def fault_server() -> Iterator[tuple[FaultServer, str]]:
    server = FaultServer()
    thread = ServerThread(server).start()
    try:
        yield server, thread.base_url
    finally:
        thread.stop()


@pytest.fixture
def served(fault_server: tuple[FaultServer, str]) -> Iterator[tuple[FaultServer, str]]:
    """The module's fault server, with no faults queued and an empty request log."""
    server, url = fault_server
    server.reset()
    yield server, url
    server.reset()


class TracingServer(FaultServer):
    """The fault server, plus: a cap on concurrent ``/v1/responses`` requests (a request that arrives while
    ``limit`` are in flight gets HTTP 429 with ``retry-after-ms``), a trace of every such arrival, and
    faults aimed at one path (``inject_at``)."""

    def __init__(self) -> None:
        super().__init__()
        self.limit: int | None = None
        self.retry_after_ms = 100
        self.in_flight = 0
        self.arrivals: list[Arrival] = []
        self.aimed: list[tuple[str, str, Fault]] = []

    def reset(self) -> None:
        super().reset()
        self.limit = None
        self.retry_after_ms = 100
        self.arrivals.clear()
        self.aimed.clear()
        self.batch.line_seconds = 0.0
        self.scripted_backend.fixed_by_feedback = None

    def inject_at(self, method: str, path_suffix: str, fault: Fault) -> None:
        """The next ``method`` request whose path ends with ``path_suffix`` gets ``fault``."""
        self.aimed.append((method, path_suffix, fault))

    async def handle(self, request: Request, responder: Responder) -> None:
        for index, (method, suffix, fault) in enumerate(self.aimed):
            if request.method == method and request.path.endswith(suffix):
                del self.aimed[index]
                self.faults.appendleft(fault)
                break
        if not request.path.endswith("/responses"):
            await super().handle(request, responder)
            return
        self.in_flight += 1
        try:
            refused = self.limit is not None and self.in_flight > self.limit
            try:
                body = json.loads(request.body)
                prompt = next(m["content"] for m in body["input"] if m.get("role") == "user")
            except (ValueError, KeyError, TypeError, StopIteration):
                prompt = None
            self.arrivals.append(Arrival(time.monotonic(), self.in_flight, refused, prompt))
            if refused:
                error = {"error": {"message": "Rate limit reached: too many concurrent requests", "type": "requests",
                                   "param": None, "code": "rate_limit_exceeded"}}
                await responder.send_json(429, error, headers={"retry-after-ms": str(self.retry_after_ms)})
                return
            await super().handle(request, responder)
        finally:
            self.in_flight -= 1


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic()
    in_flight: int  # requests in flight at the server, this one included
    refused: bool  # answered 429
    prompt: str | None  # the first user message


@pytest.fixture(scope="module")
def tracing_server() -> Iterator[tuple[TracingServer, str]]:
    server = TracingServer()
    thread = ServerThread(server).start()
    try:
        yield server, thread.base_url
    finally:
        thread.stop()


@pytest.fixture
def traced(tracing_server: tuple[TracingServer, str]) -> Iterator[tuple[TracingServer, str]]:
    """The module's tracing server, reset: no cap, no faults, empty logs."""
    server, url = tracing_server
    server.reset()
    yield server, url
    server.reset()
