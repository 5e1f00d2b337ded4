"""Test-only fault injection on top of the real ``constrain.server.Server``.

``FaultServer`` records every request it receives and answers the next requests with queued faults
(HTTP errors with headers, delays, dropped connections, truncated or malformed bodies, a scripted
output that leaves the grammar); with no fault queued it answers like the real server.
"""

from __future__ import annotations

import asyncio
import json
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

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        if self.invalid_marker is not None and any(self.invalid_marker in m.content for m in request.messages):
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
