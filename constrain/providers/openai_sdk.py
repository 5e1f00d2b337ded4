"""Bring your own openai client: the project's requests sent through an ``openai.OpenAI`` /
``AsyncOpenAI`` / ``AzureOpenAI`` object, and two helpers for people who call the SDK themselves.

``OpenAISDK`` (Responses API) and ``OpenAISDKChat`` (Chat Completions) build exactly the request bodies
of ``OpenAI`` and ``OpenAIChat`` and read the answers with the same code; only the transport differs:
each request goes through the client's generic ``post`` (its auth, base URL, proxies, timeouts, default
headers and retries apply; these providers add no retries of their own). The client stays the caller's:
closing the provider never closes it. ``generate``, ``sql.ask`` and ``run_batch`` take the client as
``provider=`` directly (``from_openai_client`` wraps it: Responses API, the default model).

A sync ``openai.OpenAI`` client serves the sync calls, and the async ones from a worker thread; an
``AsyncOpenAI`` client serves the async calls (``agenerate``, ``sql.aask``, ``run_batch``).

``openai_tools`` gives the ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` request fields for a
grammar (Responses or Chat shape, the grammar's guide as the tool's description, as the providers send
it); ``parse_openai`` takes the SDK's ``Response`` or ``ChatCompletion`` and returns the validated,
typed ``Result`` (or raises the located ``ValidationError``).

The ``openai`` package is imported only when a client is given (it is not a dependency of constrain).
The client's API key is never kept by these objects, and never shown in a repr, an error or a log line.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Mapping, TypeAlias

import httpx

from ..errors import (
    InputError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    TruncatedError,
)
from ..grammar import Grammar
from .base import Completion, Constraint, Provider
from ._guide import request_constraint
from ._http import HTTPProvider, HTTPRequest, RetryPolicy, StreamReader, error_from_response, logger, request_id_of
from .chat import OpenAIChat, custom_tool_fields
from .openai import Effort, OpenAI, tool_fields
from ._result import Attempt, Result, typed_value

if TYPE_CHECKING:
    import openai

    OpenAIClient: TypeAlias = openai.OpenAI | openai.AsyncOpenAI
else:
    OpenAIClient: TypeAlias = Any  # openai.OpenAI | openai.AsyncOpenAI (and subclasses: AzureOpenAI, ...)

__all__ = [
    "OpenAIClient",
    "OpenAISDK",
    "OpenAISDKChat",
    "from_openai_client",
    "is_openai_client",
    "openai_tools",
    "parse_openai",
]

API = Literal["responses", "chat"]

# AsyncOpenAI client -> the event loop it last sent on (its pooled connections belong to that loop)
_LOOPS: weakref.WeakKeyDictionary[Any, weakref.ReferenceType[asyncio.AbstractEventLoop]] = weakref.WeakKeyDictionary()
_LOOP_ADVICE = (
    "this AsyncOpenAI client holds connections of an event loop that has ended (an earlier run_batch or "
    "asyncio.run: each runs its own loop), and connections cannot move to another loop; give each run a new "
    "AsyncOpenAI client, or pass an openai.OpenAI client, which any number of runs can share"
)
_APIS: tuple[str, ...] = ("responses", "chat")


def _openai() -> ModuleType:
    try:
        import openai
    except ImportError:
        raise InputError("an openai client needs the openai package, which is not installed: pip install openai") from None
    return openai


def is_openai_client(value: object) -> bool:
    """Whether ``value`` is an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` (or a subclass, e.g. ``AzureOpenAI``).

    Never imports ``openai``: when it is not imported, nothing can be one of its clients."""
    module = sys.modules.get("openai")
    sync, async_ = getattr(module, "OpenAI", None), getattr(module, "AsyncOpenAI", None)
    return isinstance(sync, type) and isinstance(async_, type) and isinstance(value, (sync, async_))


def _http_errors() -> tuple[type[BaseException], ...]:
    """What reading a streamed body can raise: httpx's errors (and httpx2's, the transport of openai >= 3)."""
    errors: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError)
    httpx2 = sys.modules.get("httpx2")
    found = getattr(httpx2, "HTTPError", None)
    return errors + (found,) if isinstance(found, type) and issubclass(found, BaseException) else errors


class _ThroughClient(HTTPProvider):
    """The transport half: ``HTTPProvider``'s request/response model, sent with an openai client's ``post``."""

    api_key_env: ClassVar[str | None] = None  # the key lives in the client, never here
    key_required_for_default_url: ClassVar[bool] = False
    _own_options: ClassVar[tuple[str, ...]] = ()  # the options a subclass takes besides the client and model

    def __init__(self, client: OpenAIClient, model: str | None = None, **options: Any) -> None:
        module = _openai()
        if not isinstance(client, (module.OpenAI, module.AsyncOpenAI)):
            raise InputError(f"expected an openai.OpenAI or openai.AsyncOpenAI client, not {type(client).__name__}")
        self._openai = module
        self.sdk_client = client
        self.is_async = isinstance(client, module.AsyncOpenAI)
        azure = (getattr(module, "AzureOpenAI", None), getattr(module, "AsyncAzureOpenAI", None))
        if any(isinstance(c, type) and isinstance(client, c) for c in azure) and not (model or os.environ.get("CONSTRAIN_MODEL")):
            raise InputError(f"{type(client).__name__}: pass model= (the deployment name) or set CONSTRAIN_MODEL")
        super().__init__(model, base_url=str(client.base_url), retry=RetryPolicy(max_retries=0), **options)
        self._check_loop(None)

    def _check_loop(self, running: asyncio.AbstractEventLoop | None) -> None:
        """Refuse, before anything is sent, an AsyncOpenAI client whose connections belong to an ended loop
        (httpx would write the request on such a connection, then fail reading the answer); remember
        ``running`` as the client's loop."""
        if not self.is_async:
            return
        last = _LOOPS.get(self.sdk_client)
        loop = last() if last is not None else None
        if loop is not None and loop is not running and loop.is_closed():
            raise InputError(_LOOP_ADVICE)
        if running is not None:
            _LOOPS[self.sdk_client] = weakref.ref(running)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={type(self.sdk_client).__name__}, model={self.model!r}, base_url={self.base_url!r})"

    # -- the transport ----------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        # the client sends its own headers; code that would send requests around it (the Batch API
        # mode's file uploads) stops here instead of quietly bypassing the client's auth and proxies
        raise InputError(f"{type(self).__name__} sends Responses / Chat requests only, through its openai client; "
                         "the Batch API mode needs provider='openai' (or 'azure') with an API key")

    def _secret(self) -> str | None:
        key = getattr(self.sdk_client, "api_key", None)
        return key if isinstance(key, str) and key else None

    def _redact(self, text: str) -> str:
        key = self._secret()
        return text.replace(key, "***") if key else text

    def _sdk_error(self, exc: Exception, constraint: Constraint) -> ProviderError:
        """The project's error for what the client raised (after its own retries)."""
        module = self._openai
        if isinstance(exc, module.APIStatusError):
            response = exc.response
            try:
                body = response.content
            except Exception:  # a streamed error body the client did not read
                body = json.dumps(exc.body).encode() if exc.body is not None else b""
            headers = httpx.Headers(list(response.headers.multi_items()))
            return error_from_response(response.status_code, headers, body, provider=self.name,
                                       grammar_name=constraint.grammar.name, secret=self._secret())
        if isinstance(exc, module.APITimeoutError):
            return ProviderTimeoutError(f"{self.name}: no answer within the openai client's timeout", provider=self.name)
        cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ is not None else ""
        if isinstance(exc, module.APIConnectionError):
            return ProviderConnectionError(f"{self.name}: connection failed: {self._redact(str(exc))}{cause}", provider=self.name)
        return ProviderError(f"{self.name}: the openai client failed: {type(exc).__name__}: {self._redact(str(exc))}{cause}",
                             provider=self.name)

    def _read_error(self, exc: BaseException) -> ProviderError:
        return ProviderConnectionError(f"{self.name}: the answer broke off: {type(exc).__name__}: {self._redact(str(exc))}",
                                       provider=self.name)

    def _completion(self, response: Any, body: bytes, constraint: Constraint, started: float) -> Completion:
        request_id = request_id_of(httpx.Headers(list(response.headers.multi_items())))
        elapsed = time.perf_counter() - started
        logger.debug("%s (openai client) -> %s in %.3fs (request id %s)", self.name, response.status_code, elapsed, request_id)
        return self.read(self._decode(body, request_id), constraint, request_id=request_id, elapsed=elapsed)

    def _send_once(self, request: HTTPRequest, constraint: Constraint, reader: StreamReader | None) -> Completion:
        if self.is_async:
            raise InputError(f"{type(self.sdk_client).__name__} answers the async calls (agenerate, sql.aask, run_batch); "
                             "pass an openai.OpenAI client to the sync ones (generate, sql.ask)")
        started = time.perf_counter()
        try:
            response = self.sdk_client.post(request.path, cast_to=httpx.Response, body=request.body, stream=request.stream)
        except self._openai.OpenAIError as exc:
            raise self._sdk_error(exc, constraint) from None
        try:
            if reader is None:
                return self._completion(response, response.read(), constraint, started)
            for line in response.iter_lines():
                reader.feed_line(line)
            reader.feed_line("")
            return reader.finish(request_id=request_id_of(httpx.Headers(list(response.headers.multi_items()))),
                                 elapsed=time.perf_counter() - started)
        except _http_errors() as exc:
            raise self._read_error(exc) from None
        finally:
            response.close()

    async def _asend_once(self, request: HTTPRequest, constraint: Constraint, reader: StreamReader | None) -> Completion:
        if not self.is_async:  # a sync client blocks: it answers from a worker thread
            return await asyncio.to_thread(self._send_once, request, constraint, reader)
        self._check_loop(asyncio.get_running_loop())
        started = time.perf_counter()
        try:
            response = await self.sdk_client.post(request.path, cast_to=httpx.Response, body=request.body, stream=request.stream)
        except self._openai.OpenAIError as exc:
            raise self._sdk_error(exc, constraint) from None
        except RuntimeError as exc:  # a connection of a loop this provider never saw (the caller's own asyncio.run)
            if "loop is closed" not in str(exc):
                raise
            raise ProviderConnectionError(f"{self.name}: {_LOOP_ADVICE}", provider=self.name) from None
        try:
            if reader is None:
                return self._completion(response, await response.aread(), constraint, started)
            async for line in response.aiter_lines():
                reader.feed_line(line)
            reader.feed_line("")
            return reader.finish(request_id=request_id_of(httpx.Headers(list(response.headers.multi_items()))),
                                 elapsed=time.perf_counter() - started)
        except _http_errors() as exc:
            raise self._read_error(exc) from None
        finally:
            await response.aclose()


class OpenAISDK(_ThroughClient, OpenAI):
    """OpenAI's Responses API through your own ``openai.OpenAI`` / ``AsyncOpenAI`` / ``AzureOpenAI`` client.

    The request body is ``OpenAI``'s (a forced grammar custom tool); the client's configuration sends it.
    ``model`` defaults to ``CONSTRAIN_MODEL``, else ``gpt-5-mini`` (an Azure client needs its deployment
    name). ``on_delta`` streams, each delta checked against the grammar as it arrives.
    """

    _own_options: ClassVar[tuple[str, ...]] = ("reasoning_effort", "store")

    def __init__(self, client: OpenAIClient, model: str | None = None, *, reasoning_effort: Effort | None = None,
                 store: bool = False) -> None:
        super().__init__(client, model, reasoning_effort=reasoning_effort, store=store)


class OpenAISDKChat(_ThroughClient, OpenAIChat):
    """OpenAI Chat Completions (the nested custom-tool shape) through your own openai client."""

    def __init__(self, client: OpenAIClient, model: str | None = None) -> None:
        super().__init__(client, model)


def from_openai_client(client: OpenAIClient, *, api: API = "responses", model: str | None = None, **options: Any) -> Provider:
    """A provider that sends through ``client``: ``api="responses"`` (``OpenAISDK``; ``reasoning_effort=``,
    ``store=``) or ``"chat"`` (``OpenAISDKChat``). What ``provider=client`` means in ``generate``,
    ``sql.ask`` and ``run_batch``."""
    if api not in _APIS:
        raise InputError(f"api must be one of {', '.join(_APIS)}, not {api!r}")
    cls: type[OpenAISDK] | type[OpenAISDKChat] = OpenAISDKChat if api == "chat" else OpenAISDK
    foreign = sorted(set(options) - set(cls._own_options))
    if foreign:
        raise InputError(f"{', '.join(foreign)}: set on the openai client instead (its base URL, key, timeout, "
                         "retries and headers apply to every request sent through it)")
    return cls(client, model, **options)


# -- for callers of the SDK ---------------------------------------------------------------------------
def _checked_constraint(grammar: Grammar | str | None, output_type: Any, syntax: str, tool_name: str, describe: bool) -> Constraint:
    if syntax not in ("lark", "regex"):
        raise InputError(f"syntax must be 'lark' or 'regex', not {syntax!r}")
    return request_constraint(grammar, output_type, syntax, tool_name, in_tool=describe)


def openai_tools(
    grammar: Grammar | str | None = None,
    *,
    api: API = "responses",
    output_type: Any = None,
    syntax: Literal["lark", "regex"] = "lark",
    tool_name: str = "emit",
    describe: bool = True,
) -> dict[str, Any]:
    """The request fields that constrain an SDK call to ``grammar``: ``tools``, ``tool_choice`` and
    ``parallel_tool_calls``, in the shape of ``api`` ("responses" for ``client.responses.create``, "chat"
    for ``client.chat.completions.create``), exactly as the providers send them: the grammar as a forced
    custom tool named ``tool_name`` whose description is the grammar's guide (its description and
    examples, ``describe``). ``grammar``: a ``Grammar``, a packaged name, a ``.lark`` path, or a regex
    with ``syntax="regex"``; or ``output_type`` (a pydantic model: its JSON Schema grammar).
    Pass them on: ``client.responses.create(model=..., input=..., **openai_tools(grammar))``."""
    if api not in _APIS:
        raise InputError(f"api must be one of {', '.join(_APIS)}, not {api!r}")
    constraint = _checked_constraint(grammar, output_type, syntax, tool_name, describe)
    return tool_fields(constraint) if api == "responses" else custom_tool_fields(constraint)


@functools.lru_cache(maxsize=None)
def _reader(api: str) -> HTTPProvider:
    """The provider whose ``read`` parses ``api``'s answers (it never sends anything)."""
    reader: HTTPProvider = OpenAIChat(base_url="http://parse.invalid/v1") if api == "chat" else OpenAI(base_url="http://parse.invalid/v1")
    reader.model = None  # a Result's model is the answer's, never a default
    return reader


def _as_data(response: Any) -> dict[str, Any]:
    if isinstance(response, Mapping):
        return dict(response)
    for method, kwargs in (("to_dict", {}), ("model_dump", {"by_alias": True})):
        dump: Callable[..., Any] | None = getattr(response, method, None)
        if callable(dump):
            data = dump(**kwargs)
            if isinstance(data, dict):
                return data
    raise InputError(f"parse_openai takes an openai Response or ChatCompletion (or its JSON as a dict), "
                     f"not {type(response).__name__}")


def parse_openai(
    response: Any,
    grammar: Grammar | str | None = None,
    *,
    output_type: Any = None,
    validator: Callable[[str], Any] | None = None,
    syntax: Literal["lark", "regex"] = "lark",
    tool_name: str = "emit",
) -> Result[Any]:
    """The validated, typed ``Result`` of an SDK answer to a request made with ``openai_tools``.

    ``response``: what ``client.responses.create`` or ``client.chat.completions.create`` returned (or its
    JSON as a dict); the custom tool call named ``tool_name`` is found by type and name. The value is,
    as in ``generate``: ``validator(raw)`` after the grammar check, a pydantic instance of ``output_type``,
    or ``grammar.parse_typed(raw)``. Raises ``ValidationError`` (with line:column) when the output is not
    in the grammar, ``TruncatedError`` when it stopped at the token limit, ``ResponseFormatError`` when
    the answer holds no such tool call."""
    constraint = _checked_constraint(grammar, output_type, syntax, tool_name, describe=False)
    data = _as_data(response)
    reader = _reader("chat" if "choices" in data and "output" not in data else "responses")
    request_id = getattr(response, "_request_id", None)
    completion = reader.read(data, constraint, request_id=request_id if isinstance(request_id, str) else None, elapsed=0.0)
    if completion.finish_reason == "length":
        raise TruncatedError("the output stopped at the token limit before the grammar was complete",
                             partial=completion.text, usage=completion.usage)
    started = time.perf_counter()
    value = typed_value(constraint.grammar, completion.text, output_type, validator)
    attempt = Attempt(number=1, raw=completion.text, error=None, usage=completion.usage, elapsed=0.0,
                      validation_time=time.perf_counter() - started, request_id=completion.request_id,
                      finish_reason=completion.finish_reason)
    return Result(value=value, raw=completion.text, attempts=(attempt,), grammar=constraint.grammar,
                  provider=reader.name, model=completion.model)
