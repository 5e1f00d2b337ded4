"""An OpenAI-compatible HTTP server that enforces the submitted grammar with llguidance.

``Server`` routes ``POST /v1/responses``, ``POST /v1/chat/completions`` and ``GET /v1/models``, parses
each request's grammar (Lark, regex or GBNF) into a ``Grammar``, and streams its ``Backend``'s pieces back
in the wire format asked for; ``/v1/files`` and ``/v1/batches`` go to ``BatchEndpoints``.
``ServerThread`` runs one in a background thread; ``main`` is ``python -m constrain.server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Sequence

import llguidance
from llguidance.gbnf_to_lark import gbnf_to_lark

from ..engines.llg_engine import hang_of
from ..errors import GrammarError, TruncatedError
from ..grammar import Grammar
from ..providers.base import Message
from ._backends import Backend, GenerationRequest, RandomWalkBackend
from ._batch import MAX_UPLOAD_BYTES, BatchEndpoints
from ._http import HEADER_LIMIT, MAX_BODY_BYTES, Handler, HTTPError, Request, Responder, json_body, read_request

__all__ = ["Server", "ServerThread", "main"]


def _body_limit(path: str) -> int:
    """Uploads to ``/v1/files`` may be as large as a Batch API input file; other bodies are smaller."""
    return MAX_UPLOAD_BYTES if path == "/v1/files" else MAX_BODY_BYTES


# -- the server ----------------------------------------------------------------------------------------
@dataclass
class _Job:
    """One parsed generation request, independent of the wire format it came in."""

    messages: tuple[Message, ...]
    grammar: Grammar | None
    tool_name: str | None
    max_tokens: int | None
    model: str
    stream: bool = False
    truncated: bool = False
    include_usage: bool = False  # Chat Completions streaming: a usage chunk before [DONE]


def _with_tool_description(messages: tuple[Message, ...], name: str, description: Any) -> tuple[Message, ...]:
    """The conversation as the backend's model reads it: a hosted model sees the tool's definition in its
    prompt, so the called tool's description joins the system message (what to write, for a local model)."""
    if not isinstance(description, str) or not description.strip():
        return messages
    note = f"Your answer is the input of the tool {name}. {description.strip()}"
    if messages and messages[0].role == "system":
        return (Message("system", f"{messages[0].content}\n\n{note}"),) + messages[1:]
    return (Message("system", note),) + messages


class Server:
    """The grammar-enforcing OpenAI-compatible server. ``await start()``, or use ``ServerThread``."""

    def __init__(self, backend: Backend | None = None, *, host: str = "127.0.0.1", port: int = 0, model: str | None = None, api_key: str | None = None,
                 hang_seconds: float = 5.0, batch_step_seconds: float = 0.0) -> None:
        self.backend: Backend = backend or RandomWalkBackend()
        self.hang_seconds = hang_seconds  # how long one token mask may take in the termination probe
        self.host = host
        self.port = port
        self.model = model or self.backend.name
        self._api_key = api_key
        self._grammars: OrderedDict[tuple[str, str], Grammar] = OrderedDict()
        self._ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/responses"): self.responses,
            ("POST", "/v1/chat/completions"): self.chat_completions,
            ("GET", "/v1/models"): self.models,
        }
        self.batch = BatchEndpoints(self.respond_line, step_seconds=batch_step_seconds)
        self.pattern_routes = self.batch.routes()  # /v1/files..., /v1/batches...: paths with ids

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend.name!r}, url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, limit=HEADER_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- connections ---------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_request(reader, _body_limit)
                except HTTPError as exc:  # answered, then the connection is closed: its framing is unknown
                    responder = Responder(writer, f"req_{next(self._ids):08x}")
                    responder.keep_alive = False
                    await responder.send_json(exc.status, exc.body)
                    break
                if request is None:
                    break
                responder = Responder(writer, f"req_{next(self._ids):08x}")
                if request.headers.get("connection", "").lower() == "close":
                    responder.keep_alive = False
                await self.handle(request, responder)
                if not responder.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:  # server shutdown: close the connection quietly
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, request: Request, responder: Responder) -> None:
        """Route one request. Subclasses may intercept here (the tests' fault injection does)."""
        try:
            if self._api_key is not None and not self._authorized(request):
                raise HTTPError(401, "Incorrect API key provided.", code="invalid_api_key")
            handler = self.routes.get((request.method, request.path))
            if handler is None:
                for method, pattern, with_match in self.pattern_routes:
                    match = pattern.fullmatch(request.path)
                    if match is not None and method == request.method:
                        await with_match(request, responder, match)
                        return
                known = any(path == request.path for _, path in self.routes) or any(
                    p.fullmatch(request.path) for _, p, _ in self.pattern_routes)
                raise HTTPError(405 if known else 404, f"no route for {request.method} {request.path}", code="not_found")
            await handler(request, responder)
        except HTTPError as exc:
            if responder.started:
                responder.abort()
            else:
                await responder.send_json(exc.status, exc.body)
        except Exception as exc:  # a backend failure must still answer in the wire format
            if responder.started:
                responder.abort()
            else:
                await responder.send_json(500, HTTPError(500, f"server error: {type(exc).__name__}: {exc}", type="server_error").body)

    def _authorized(self, request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        return bearer == f"Bearer {self._api_key}" or request.headers.get("api-key") == self._api_key

    # -- grammar handling --------------------------------------------------------------------------
    def compile(self, syntax: str, definition: Any, param: str) -> Grammar:
        """The grammar for a submitted definition (cached), or a 400 naming what llguidance refused."""
        if not isinstance(definition, str) or not definition.strip():
            raise HTTPError(400, "Invalid grammar: the definition is empty.", param=param, code="invalid_grammar")
        key = (syntax, definition)
        grammar = self._grammars.get(key)
        if grammar is not None:
            self._grammars.move_to_end(key)
            return grammar
        try:
            if syntax == "lark":
                text = definition
            elif syntax == "regex":
                text = f"start: /{llguidance.regex_to_lark(definition)}/"
            elif syntax == "gbnf":
                text = gbnf_to_lark(_free_start(definition))
            else:
                raise HTTPError(400, f"Invalid grammar syntax {syntax!r}; expected 'lark' or 'regex'.", param=param, code="invalid_grammar")
            grammar = Grammar(text, name=f"<{syntax} grammar>")
            grammar._llg()
        except HTTPError:
            raise
        except Exception as exc:  # GrammarError from llguidance, or a converter's own error
            detail = str(exc).split(": ", 1)[-1] if isinstance(exc, GrammarError) else str(exc)
            raise HTTPError(400, f"Invalid grammar: {detail or type(exc).__name__}", param=param, code="invalid_grammar") from None
        self._grammars[key] = grammar
        if len(self._grammars) > 128:
            self._grammars.popitem(last=False)
        return grammar

    async def check_terminates(self, job: _Job) -> None:
        """A 400 for a grammar llguidance would loop on (once per grammar, off the event loop): decoding
        under it would never return, and would hold a worker thread forever."""
        if job.grammar is None:
            return
        hang = await asyncio.to_thread(hang_of, job.grammar.text, self.hang_seconds)
        if hang is not None:
            where = f"after {hang.decode('utf-8', 'replace')!r}" if hang else "at the start"
            raise HTTPError(400, f"Invalid grammar: llguidance does not finish computing the token mask {where} "
                            f"(probed for {self.hang_seconds:g} s); run `constrain check` on it.", code="invalid_grammar")

    async def run_backend(self, job: _Job) -> AsyncIterator[str]:
        """The backend's pieces, at most ``max_tokens`` of them; blocking backends run in a thread.

        ``job.truncated`` is set when the backend raised ``TruncatedError`` or had more to say at the limit.
        """
        request = GenerationRequest(job.messages, job.grammar, job.max_tokens, job.model)
        limit = job.max_tokens
        if not self.backend.blocking:
            pieces = self.backend.generate(request)
            try:
                for count, piece in enumerate(pieces, start=1):
                    yield piece
                    if limit is not None and count >= limit:
                        job.truncated = next(pieces, None) is not None
                        return
            except TruncatedError:
                job.truncated = True
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for count, piece in enumerate(self.backend.generate(request), start=1):
                    if stop.is_set():
                        break
                    if limit is not None and count > limit:
                        loop.call_soon_threadsafe(queue.put_nowait, ("truncated", None))
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
            except TruncatedError:
                loop.call_soon_threadsafe(queue.put_nowait, ("truncated", None))
            except BaseException as exc:  # handed to the event loop and re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        worker = threading.Thread(target=produce, name="constrain-backend", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "piece":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    job.truncated = kind == "truncated"
                    return
        finally:
            stop.set()

    @staticmethod
    def _input_tokens(messages: Sequence[Message]) -> int:
        return max(1, sum(len(m.content.encode("utf-8")) for m in messages) // 4)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):012x}"

    # -- /v1/models --------------------------------------------------------------------------------
    async def models(self, request: Request, responder: Responder) -> None:
        await responder.send_json(200, {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "constrain"}]})

    # -- /v1/responses ---------------------------------------------------------------------------
    def parse_responses(self, body: Any) -> _Job:
        if not isinstance(body, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        messages = _messages_from_input(body.get("input"), body.get("instructions"))
        tools = body.get("tools") or []
        if not isinstance(tools, list):
            raise HTTPError(400, "`tools` must be a list.", param="tools")
        choice = body.get("tool_choice")
        forced = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "custom" else None
        grammar, tool_name = None, None
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "custom":
                continue
            if forced is not None and tool.get("name") != forced:
                continue
            fmt = tool.get("format") or {"type": "text"}
            tool_name = str(tool.get("name") or "")
            messages = _with_tool_description(messages, tool_name, tool.get("description"))
            if fmt.get("type") == "grammar":
                syntax = fmt.get("syntax")
                if syntax not in ("lark", "regex"):
                    raise HTTPError(400, f"Invalid value for 'syntax': {syntax!r}.", param=f"tools[{index}].format.syntax")
                grammar = self.compile(syntax, fmt.get("definition"), f"tools[{index}].format.definition")
            break
        if forced is not None and tool_name is None:
            raise HTTPError(400, f"Tool choice '{forced}' not found in 'tools' parameter.", param="tool_choice")
        max_tokens = _positive_int(body.get("max_output_tokens"), "max_output_tokens")
        return _Job(messages, grammar, tool_name, max_tokens, str(body.get("model") or self.model), bool(body.get("stream")))

    async def responses(self, request: Request, responder: Responder) -> None:
        job = self.parse_responses(json_body(request))
        await self.check_terminates(job)
        response_id = self._new_id("resp")
        reasoning = {"id": self._new_id("rs"), "type": "reasoning", "summary": []}
        call_id = self._new_id("ctc") if job.tool_name is not None else self._new_id("msg")
        if job.stream:
            await self._responses_stream(job, responder, response_id, reasoning, call_id)
            return
        pieces = [piece async for piece in self.run_backend(job)]
        text = "".join(pieces)
        truncated = job.truncated
        response = self._response_object(job, response_id, reasoning, self._output_item(job, call_id, text, truncated), len(pieces), truncated)
        await responder.send_json(200, response)

    async def respond_line(self, body: Any) -> tuple[int, dict[str, Any], str]:
        """One Batch API line's request body through ``/v1/responses``: (status code, response body, request id)."""
        request_id = f"req_{next(self._ids):08x}"
        try:
            job = self.parse_responses(body)
            job.stream = False
            await self.check_terminates(job)
            pieces = [piece async for piece in self.run_backend(job)]
        except HTTPError as exc:
            return exc.status, exc.body, request_id
        except Exception as exc:  # a backend failure is that line's 500, not the batch's
            return 500, HTTPError(500, f"server error: {type(exc).__name__}: {exc}", type="server_error").body, request_id
        reasoning = {"id": self._new_id("rs"), "type": "reasoning", "summary": []}
        item_id = self._new_id("ctc") if job.tool_name is not None else self._new_id("msg")
        text = "".join(pieces)
        item = self._output_item(job, item_id, text, job.truncated)
        return 200, self._response_object(job, self._new_id("resp"), reasoning, item, len(pieces), job.truncated), request_id

    def _output_item(self, job: _Job, item_id: str, text: str, truncated: bool) -> dict[str, Any]:
        status = "incomplete" if truncated else "completed"
        if job.tool_name is None:
            return {"id": item_id, "type": "message", "role": "assistant", "status": status,
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}
        return {"id": item_id, "type": "custom_tool_call", "status": status, "call_id": f"call_{item_id[4:]}",
                "name": job.tool_name, "input": text}

    def _response_object(self, job: _Job, response_id: str, reasoning: dict[str, Any], item: dict[str, Any] | None, pieces: int, truncated: bool) -> dict[str, Any]:
        input_tokens = self._input_tokens(job.messages)
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if truncated else ("completed" if item is not None else "in_progress"),
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "model": job.model,
            "output": [reasoning] + ([item] if item is not None else []),
            "parallel_tool_calls": False,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": pieces,
                "total_tokens": input_tokens + pieces,
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }

    async def _responses_stream(self, job: _Job, responder: Responder, response_id: str, reasoning: dict[str, Any], item_id: str) -> None:
        seq = itertools.count()
        await responder.start_sse()

        async def event(kind: str, **payload: Any) -> None:
            await responder.send_event(kind, {"type": kind, "sequence_number": next(seq), **payload})

        await event("response.created", response=self._response_object(job, response_id, reasoning, None, 0, False) | {"output": []})
        await event("response.output_item.added", output_index=0, item=reasoning)
        await event("response.output_item.done", output_index=0, item=reasoning)
        await event("response.output_item.added", output_index=1, item=self._output_item(job, item_id, "", False) | {"status": "in_progress"})
        delta_kind = "response.custom_tool_call_input.delta" if job.tool_name is not None else "response.output_text.delta"
        pieces: list[str] = []
        async for piece in self.run_backend(job):
            pieces.append(piece)
            await event(delta_kind, item_id=item_id, output_index=1, delta=piece)
        text = "".join(pieces)
        truncated = job.truncated
        if job.tool_name is not None:
            await event("response.custom_tool_call_input.done", item_id=item_id, output_index=1, input=text)
        item = self._output_item(job, item_id, text, truncated)
        await event("response.output_item.done", output_index=1, item=item)
        final = self._response_object(job, response_id, reasoning, item, len(pieces), truncated)
        await event("response.incomplete" if truncated else "response.completed", response=final)
        await responder.end_sse()

    # -- /v1/chat/completions ---------------------------------------------------------------------
    def parse_chat(self, body: Any) -> _Job:
        if not isinstance(body, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        messages = _messages_from_input(body.get("messages"), None)
        grammar, tool_name = None, None
        choice = body.get("tool_choice")
        forced = (choice.get("custom") or {}).get("name") if isinstance(choice, dict) and choice.get("type") == "custom" else None
        for index, tool in enumerate(body.get("tools") or []):
            custom = tool.get("custom") if isinstance(tool, dict) and tool.get("type") == "custom" else None
            if not isinstance(custom, dict) or (forced is not None and custom.get("name") != forced):
                continue
            tool_name = str(custom.get("name") or "")
            messages = _with_tool_description(messages, tool_name, custom.get("description"))
            fmt = custom.get("format") or {"type": "text"}
            if fmt.get("type") == "grammar":
                spec = fmt.get("grammar") or {}
                syntax = spec.get("syntax")
                if syntax not in ("lark", "regex"):
                    raise HTTPError(400, f"Invalid value for 'syntax': {syntax!r}.", param=f"tools[{index}].custom.format.grammar.syntax")
                grammar = self.compile(syntax, spec.get("definition"), f"tools[{index}].custom.format.grammar.definition")
            break
        if forced is not None and tool_name is None:
            raise HTTPError(400, f"Tool choice '{forced}' not found in 'tools' parameter.", param="tool_choice")
        structured = body.get("structured_outputs")
        if tool_name is None and isinstance(structured, dict):
            if "grammar" in structured:
                text = structured["grammar"]
                syntax = "gbnf" if isinstance(text, str) and "::=" in text else "lark"
                grammar = self.compile(syntax, text, "structured_outputs.grammar")
            elif "regex" in structured:
                grammar = self.compile("regex", structured["regex"], "structured_outputs.regex")
        elif tool_name is None:
            for field_name, syntax in (("grammar", "gbnf"), ("ebnf", "gbnf"), ("regex", "regex")):
                if field_name in body:
                    grammar = self.compile(syntax, body[field_name], field_name)
                    break
        if "grammar" in body and body.get("tools"):
            raise HTTPError(400, "Cannot use custom grammar constraints with tools.", param="grammar")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        max_tokens = _positive_int(limit, "max_tokens")
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return _Job(messages, grammar, tool_name, max_tokens, str(body.get("model") or self.model), bool(body.get("stream")),
                    include_usage=include_usage)

    async def chat_completions(self, request: Request, responder: Responder) -> None:
        job = self.parse_chat(json_body(request))
        await self.check_terminates(job)
        if job.stream:
            if job.tool_name is not None:
                raise HTTPError(400, "Streaming custom tool calls is not supported on /v1/chat/completions; "
                                "use /v1/responses.", param="stream")
            await self._chat_stream(job, responder)
            return
        pieces = [piece async for piece in self.run_backend(job)]
        text = "".join(pieces)
        truncated = job.truncated
        message: dict[str, Any] = {"role": "assistant", "content": None if job.tool_name is not None else text}
        if job.tool_name is not None:
            message["tool_calls"] = [{"id": self._new_id("call"), "type": "custom", "custom": {"name": job.tool_name, "input": text}}]
        finish = "length" if truncated else ("tool_calls" if job.tool_name is not None else "stop")
        input_tokens = self._input_tokens(job.messages)
        await responder.send_json(200, {
            "id": self._new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": job.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": len(pieces), "total_tokens": input_tokens + len(pieces)},
        })


    async def _chat_stream(self, job: _Job, responder: Responder) -> None:
        head = {"id": self._new_id("chatcmpl"), "object": "chat.completion.chunk", "created": int(time.time()), "model": job.model}

        async def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            await responder.send_event(None, head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        await responder.start_sse()
        await chunk({"role": "assistant", "content": ""})
        pieces = 0
        async for piece in self.run_backend(job):
            pieces += 1
            await chunk({"content": piece})
        await chunk({}, "length" if job.truncated else "stop")
        if job.include_usage:
            input_tokens = self._input_tokens(job.messages)
            usage = {"prompt_tokens": input_tokens, "completion_tokens": pieces, "total_tokens": input_tokens + pieces}
            await responder.send_event(None, head | {"choices": [], "usage": usage})
        await responder.send_event(None, "[DONE]")
        await responder.end_sse()


_GBNF_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|#[^\n]*|[A-Za-z][A-Za-z0-9_-]*|.', re.S)


def _free_start(gbnf: str) -> str:
    """Rename a GBNF rule called ``start``: llguidance's converter renames ``root`` to ``start``."""
    return "".join("start_" if token == "start" else token for token in _GBNF_TOKEN.findall(gbnf))


def _positive_int(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HTTPError(400, f"Invalid '{param}': expected a positive integer.", param=param)
    return value


def _messages_from_input(value: Any, instructions: Any) -> tuple[Message, ...]:
    messages: list[Message] = []
    if isinstance(instructions, str) and instructions:
        messages.append(Message("system", instructions))
    if isinstance(value, str):
        return (*messages, Message("user", value))
    if not isinstance(value, list) or not value:
        raise HTTPError(400, "Missing required parameter: 'input' (a string or a list of messages).", param="input")
    for entry in value:
        if not isinstance(entry, dict):
            raise HTTPError(400, "Each input item must be an object.", param="input")
        role = entry.get("role", "user")
        content = entry.get("content", entry.get("output", ""))
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            role = "user"
        messages.append(Message(role, str(content or "")))
    return tuple(messages)


class ServerThread:
    """Runs a ``Server`` on its own event loop in a daemon thread; ``with ServerThread() as url: ...``."""

    def __init__(self, server: Server | None = None) -> None:
        self.server = server or Server()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="constrain-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.close())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> str:
        return self.start().base_url

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m constrain.server [--port N] [--seed S]``: the random-walk backend on 127.0.0.1."""
    parser = argparse.ArgumentParser(prog="python -m constrain.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = a free one)")
    parser.add_argument("--seed", type=int, default=0, help="random-walk seed")
    args = parser.parse_args(argv)

    async def run() -> None:
        server = Server(RandomWalkBackend(args.seed), port=args.port)
        await server.start()
        print(f"listening on {server.base_url}", flush=True)
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
