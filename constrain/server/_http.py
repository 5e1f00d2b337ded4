"""The server's HTTP/1.1 plumbing: a request read from a connection, OpenAI-shaped errors, and the
``Responder`` that writes a JSON, raw or server-sent-events response. It knows no endpoint."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

__all__ = ["HTTPError", "Handler", "Request", "Responder", "json_body", "read_request"]

MAX_BODY_BYTES = 16 << 20
HEADER_LIMIT = 64 << 10


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPError(Exception):
    """An OpenAI-shaped error response: status plus ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> None:
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        super().__init__(message)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


class Responder:
    """Writes one HTTP/1.1 response (JSON, raw bytes, or SSE with chunked encoding) to a connection."""

    def __init__(self, writer: asyncio.StreamWriter, request_id: str) -> None:
        self.writer = writer
        self.request_id = request_id
        self.keep_alive = True
        self.started = False

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        self.started = True
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"x-request-id: {self.request_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if not self.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send_bytes(self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None, *, length: int | None = None) -> None:
        head = {"content-type": content_type, "content-length": str(len(body) if length is None else length), **(headers or {})}
        self.writer.write(self._head(status, head) + body)
        await self.writer.drain()

    async def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        await self.send_bytes(status, json.dumps(obj).encode(), headers=headers)

    async def start_sse(self, headers: dict[str, str] | None = None) -> None:
        head = {"content-type": "text/event-stream", "cache-control": "no-cache", "transfer-encoding": "chunked", **(headers or {})}
        self.writer.write(self._head(200, head))
        await self.writer.drain()

    async def send_raw_chunk(self, data: bytes) -> None:
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def send_event(self, event: str | None, data: Any) -> None:
        """One server-sent event; without ``event`` a bare ``data:`` line (Chat Completions chunks)."""
        payload = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {event}\n" if event is not None else ""
        await self.send_raw_chunk(f"{head}data: {payload}\n\n".encode())

    async def end_sse(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def abort(self) -> None:
        """Drop the connection without (finishing) a response."""
        self.keep_alive = False
        transport = self.writer.transport
        transport.abort()


Handler = Callable[[Request, Responder], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader, body_limit: Callable[[str], int]) -> Request | None:
    """The next request on the connection (None at its end); ``body_limit(path)`` bounds the body's bytes."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    parts = urlsplit(target)
    limit = body_limit(parts.path)
    if length > limit or "chunked" in headers.get("transfer-encoding", ""):
        raise HTTPError(413, f"request bodies must carry a content-length of at most {limit} bytes")
    body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), parts.path, parts.query, headers, body)


def json_body(request: Request) -> Any:
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "We could not parse the JSON body of your request.") from None

