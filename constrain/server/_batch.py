"""The Files and Batches endpoints of ``constrain serve``, after OpenAI's Batch API.

``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
``GET /v1/batches`` (newest first, ``limit`` / ``after``), ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``. A batch goes ``validating`` → ``in_progress`` → ``finalizing`` →
``completed`` (or ``failed`` when the input file is invalid, ``expired``, ``cancelled``), each step held
for ``step_seconds``; every line runs through the server's own ``/v1/responses`` handling, and the output
and error files list their lines in shuffled order, as the real service does not keep input order.
A cancel moves a running batch to ``cancelling``, then ``cancelled``: the lines that ran are in its output
file (partial results), the others in its error file as ``batch_cancelled``; asking again while it is
``cancelling`` answers the same, and a finished batch cannot be cancelled (400).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from ._http import HTTPError, Request, Responder, json_body

__all__ = ["BatchEndpoints", "LineResponder", "StoredFile"]

MAX_UPLOAD_BYTES = 200 * 1000 * 1000 + (1 << 20)
_WINDOWS = {"24h": 24 * 3600}
_ENDPOINTS = ("/v1/responses",)
# one Batch API line's request body -> (status code, response body, request id), as ``/v1/responses`` answers it
LineResponder = Callable[[Any], Awaitable[tuple[int, dict[str, Any], str]]]
_EXPIRED = {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed"}


class BatchEndpoints:
    """The batch service: files in memory, batches run as tasks on the server's event loop."""

    def __init__(self, respond_line: LineResponder, *, step_seconds: float = 0.0, seed: int = 0) -> None:
        self.respond_line = respond_line
        self.step_seconds = step_seconds
        self.rng = random.Random(seed)
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[str]] = {}  # batch id -> statuses in order (for tests)
        self.tasks: set[asyncio.Task[None]] = set()
        self.line_seconds = 0.0  # how long each line takes to run (a test makes a batch slow enough to cancel)
        self._ids = itertools.count(1)
        # hooks a test server overrides: how many lines run before the window closes, forced validation errors
        self.expire_after: Callable[[dict[str, Any]], int | None] = lambda batch: None
        self.fail_with: Callable[[dict[str, Any]], list[dict[str, Any]] | None] = lambda batch: None

    def routes(self) -> list[tuple[str, re.Pattern[str], Callable[[Request, Responder, re.Match[str]], Awaitable[None]]]]:
        return [
            ("POST", re.compile(r"/v1/files"), self.upload),
            ("GET", re.compile(r"/v1/files/([\w-]+)"), self.file_info),
            ("GET", re.compile(r"/v1/files/([\w-]+)/content"), self.file_content),
            ("POST", re.compile(r"/v1/batches"), self.create),
            ("GET", re.compile(r"/v1/batches"), self.list),
            ("GET", re.compile(r"/v1/batches/([\w-]+)"), self.retrieve),
            ("POST", re.compile(r"/v1/batches/([\w-]+)/cancel"), self.cancel),
        ]

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):012x}"

    # -- files -------------------------------------------------------------------------------------
    async def upload(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        fields = _multipart(request)
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if "file" not in fields:
            raise HTTPError(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in ("batch", "assistants", "fine-tune", "user_data", "evals"):
            raise HTTPError(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        filename, data = fields["file"]
        stored = StoredFile(self._id("file-"), filename or "upload", purpose, data)
        self.files[stored.id] = stored
        await responder.send_json(200, stored.to_dict())

    def _file(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None:
            raise HTTPError(404, f"No such File object: {file_id}", param="id", code="not_found")
        return stored

    async def file_info(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        await responder.send_json(200, self._file(match.group(1)).to_dict())

    async def file_content(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        await responder.send_bytes(200, self._file(match.group(1)).data, "application/octet-stream")

    # -- batches -----------------------------------------------------------------------------------
    async def create(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        body = json_body(request)
        if not isinstance(body, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise HTTPError(400, f"Missing required parameter: '{name}'.", param=name)
        if body["endpoint"] not in _ENDPOINTS:
            raise HTTPError(400, f"Invalid value for 'endpoint': {body['endpoint']!r}; supported: {', '.join(_ENDPOINTS)}.", param="endpoint")
        if body["completion_window"] not in _WINDOWS:
            raise HTTPError(400, "Invalid value for 'completion_window': only '24h' is supported.", param="completion_window")
        stored = self._file(body["input_file_id"])
        if stored.purpose != "batch":
            raise HTTPError(400, f"File {stored.id} has purpose {stored.purpose!r}; a batch needs purpose 'batch'.", param="input_file_id")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": self._id("batch_"), "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": stored.id, "completion_window": body["completion_window"], "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + _WINDOWS[body["completion_window"]], "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata") or None,
        }
        self.batches[batch["id"]] = batch
        self.history[batch["id"]] = ["validating"]
        task = asyncio.create_task(self._run(batch, stored))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await responder.send_json(200, batch)

    def _batch(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise HTTPError(404, f"No batch found with id '{batch_id}'.", param="batch_id", code="not_found")
        return batch

    async def retrieve(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        await responder.send_json(200, self._batch(match.group(1)))

    async def list(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        query = parse_qs(request.query)
        limit = max(1, min(100, int((query.get("limit") or ["20"])[0])))
        after = (query.get("after") or [None])[0]
        ordered = list(reversed(list(self.batches.values())))
        if after is not None:
            ids = [b["id"] for b in ordered]
            ordered = ordered[ids.index(after) + 1:] if after in ids else []
        page = ordered[:limit]
        await responder.send_json(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                        "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit})

    async def cancel(self, request: Request, responder: Responder, match: re.Match[str]) -> None:
        batch = self._batch(match.group(1))
        if batch["status"] == "cancelling":  # asked again: the same answer
            await responder.send_json(200, batch)
            return
        if batch["status"] not in ("validating", "in_progress"):
            raise HTTPError(400, f"Cannot cancel a batch with status {batch['status']!r}.", param="batch_id")
        self._set(batch, "cancelling")
        await responder.send_json(200, batch)

    # -- running a batch ---------------------------------------------------------------------------
    def _set(self, batch: dict[str, Any], status: str) -> None:
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())
        self.history[batch["id"]].append(status)

    async def _run(self, batch: dict[str, Any], stored: StoredFile) -> None:
        await asyncio.sleep(self.step_seconds)
        lines, errors = _parse_input(stored.data, batch["endpoint"])
        errors = self.fail_with(batch) or errors
        if errors:
            batch["errors"] = {"object": "list", "data": errors}
            self._set(batch, "failed")
            return
        batch["request_counts"]["total"] = len(lines)
        if batch["status"] == "cancelling":
            return await self._end(batch, [], [], lines, "cancelled")
        self._set(batch, "in_progress")
        limit = self.expire_after(batch)
        outputs: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for index, line in enumerate(lines):
            if batch["status"] == "cancelling":
                return await self._end(batch, outputs, failures, lines[index:], "cancelled")
            if limit is not None and index >= limit:
                return await self._end(batch, outputs, failures, lines[index:], "expired")
            if self.line_seconds:
                await asyncio.sleep(self.line_seconds)
                if batch["status"] == "cancelling":
                    return await self._end(batch, outputs, failures, lines[index:], "cancelled")
            status, body, request_id = await self.respond_line(line["body"])
            entry = {"id": self._id("batch_req_"), "custom_id": line["custom_id"],
                     "response": {"status_code": status, "request_id": request_id, "body": body}, "error": None}
            (outputs if status == 200 else failures).append(entry)
            batch["request_counts"]["completed" if status == 200 else "failed"] += 1
            if index % 200 == 199:
                await asyncio.sleep(0)  # let status requests in
        await asyncio.sleep(self.step_seconds)
        self._set(batch, "finalizing")
        await asyncio.sleep(self.step_seconds)
        await self._end(batch, outputs, failures, [], "completed")

    async def _end(self, batch: dict[str, Any], outputs: list[dict[str, Any]], failures: list[dict[str, Any]],
                   unrun: list[dict[str, Any]], status: str) -> None:
        for line in unrun:
            error = _EXPIRED if status == "expired" else {"code": "batch_cancelled", "message": "This request was cancelled."}
            failures.append({"id": self._id("batch_req_"), "custom_id": line["custom_id"], "response": None, "error": error})
            batch["request_counts"]["failed"] += 1
        for entries, key in ((outputs, "output_file_id"), (failures, "error_file_id")):
            if entries:
                self.rng.shuffle(entries)
                data = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
                stored = StoredFile(self._id("file-"), f"{batch['id']}_{key.split('_')[0]}.jsonl", "batch_output", data)
                self.files[stored.id] = stored
                batch[key] = stored.id
        self._set(batch, status)


def _parse_input(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lines of a batch input file, or the errors that fail the batch at validation (with line numbers)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            errors.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.", "param": None, "line": number})
            continue
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(custom_id, str):
            errors.append({"code": "missing_required_parameter", "message": "Missing required parameter: 'custom_id'.", "param": "custom_id", "line": number})
        elif custom_id in seen:
            errors.append({"code": "duplicate_custom_id", "message": f"The custom_id for this request is a duplicate of another request: {custom_id}.",
                           "param": "custom_id", "line": number})
        elif line.get("method") != "POST" or line.get("url") != endpoint or not isinstance(line.get("body"), dict):
            errors.append({"code": "invalid_request", "message": f"Each line needs method 'POST', url {endpoint!r} and a body object.",
                           "param": "url", "line": number})
        else:
            seen.add(custom_id)
            lines.append(line)
    if not lines and not errors:
        errors.append({"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None})
    return lines, errors


def _multipart(request: Request) -> dict[str, tuple[str | None, bytes]]:
    """``name -> (filename, data)`` for a ``multipart/form-data`` body."""
    content_type = request.headers.get("content-type", "")
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or found is None:
        raise HTTPError(400, "Uploads must be multipart/form-data.")
    boundary = b"--" + found.group(1).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in request.body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = head.decode("latin-1")
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (filename.group(1) if filename else None, data[:-2] if data.endswith(b"\r\n") else data)
    return fields
