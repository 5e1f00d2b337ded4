"""The HTTP core every remote provider shares: one request/response model, thin sync and async senders.

A provider subclass only says how to build a request body and how to read a response (and, for
streaming, how to read server-sent events). Everything else lives here once: timeouts, bounded
retries with exponential backoff and jitter (honouring ``retry-after`` / ``retry-after-ms``), and the
mapping of HTTP failures to typed ``ProviderError`` subclasses. The API key is sent in a header and
never appears in an error, a repr or a log line.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import functools
import itertools
import json
import logging
import os
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import httpx

from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConstrainError,
    GrammarRejectedError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    ValidationError,
)
from .base import Completion, Constraint, DeltaCallback, Message, Provider, Sampling

__all__ = ["CheckedStream", "HTTPProvider", "RetryPolicy", "StreamReader", "error_from_response"]

logger = logging.getLogger("constrain.providers")

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id")
_GRAMMAR_WORDS = ("grammar", "lark", "regex", "definition", "ebnf", "gbnf")
_STATUS_ERRORS: Mapping[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: ProviderTimeoutError,
    409: ServerError,  # "conflict": a transient lock on the server side; retried like a 5xx
    422: BadRequestError,
    429: RateLimitError,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: exponential backoff from ``backoff`` seconds, capped, with +/- ``jitter`` spread.

    A server's ``retry-after`` / ``retry-after-ms`` wins over the computed delay (capped at ``max_wait``).
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.25
    max_wait: float = 60.0

    def delay(self, retry_number: int, error: ProviderError, rng: random.Random) -> float | None:
        """Seconds to wait before retry ``retry_number`` (0-based), or None when ``error`` is final."""
        if not error.retryable or retry_number >= self.max_retries:
            return None
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_wait)
        base = min(self.max_backoff, self.backoff * (2**retry_number))
        return base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))


@dataclass(frozen=True)
class HTTPRequest:
    """One provider call as data: the same value is sent by the sync and the async sender."""

    path: str
    body: dict[str, Any]
    stream: bool = False


def parse_retry_after(headers: httpx.Headers) -> float | None:
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        when = email.utils.parsedate_to_datetime(raw) if raw else None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())


def request_id_of(headers: httpx.Headers) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if headers.get(name):
            return headers[name]
    return None


def _server_error_fields(body: bytes) -> tuple[str, str]:
    """(message, param+code) from an OpenAI-style error body, or a text excerpt when it is not JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:500].decode("utf-8", errors="replace").strip(), ""
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("detail") or json.dumps(error)[:500])
        extra = " ".join(str(error.get(k) or "") for k in ("param", "code", "type"))
        return message, extra
    return str(error)[:500], ""


def error_from_response(
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    provider: str,
    grammar_name: str | None = None,
    secret: str | None = None,
) -> ProviderError:
    """The typed error for a non-2xx response; a 400 that is about the grammar says to run ``constrain check``."""
    message, extra = _server_error_fields(body)
    if secret:
        message = message.replace(secret, "***")
    cls: type[ProviderError] = _STATUS_ERRORS.get(status, ServerError if status >= 500 else BadRequestError)
    summary = f"{provider} refused the request"
    if cls is BadRequestError and any(w in f"{message} {extra}".lower() for w in _GRAMMAR_WORDS):
        cls = GrammarRejectedError
        target = f" {grammar_name}" if grammar_name and not grammar_name.startswith("<") else " GRAMMAR"
        summary = (
            f"{provider} rejected the grammar; run `constrain check{target} --target openai` "
            "to see what the provider's engine objects to"
        )
    elif cls is AuthenticationError:
        summary = f"{provider} refused the credentials (check the API key and its permissions)"
    elif cls is NotFoundError:
        summary = f"{provider}: unknown model or endpoint"
    elif cls is RateLimitError:
        summary = f"{provider} rate limit hit"
    elif cls is ServerError:
        summary = f"{provider} server error"
    elif cls is ProviderTimeoutError:
        summary = f"{provider} timed out on the server side"
    error = cls(summary, status=status, server_message=message or None, request_id=request_id_of(headers), provider=provider)
    error.retry_after = parse_retry_after(headers)
    return error


class _Secret:
    """Holds the API key; its repr never shows it (so neither do ``vars(provider)`` nor tracebacks' locals)."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value or None

    def __repr__(self) -> str:
        return "<secret>" if self.value else "<no key>"

    __str__ = __repr__


class StreamReader(abc.ABC):
    """Consumes one response's server-sent events; ``finish()`` returns the completion."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self.delivered = False  # whether any text reached the caller (then a retry would repeat it)

    def feed_line(self, line: str) -> None:
        if line == "":
            if self._data:
                payload = "\n".join(self._data)
                event, self._event, self._data = self._event, None, []
                if payload.strip() == "[DONE]":
                    return
                try:
                    data = json.loads(payload)
                except ValueError:
                    raise ResponseFormatError(f"malformed JSON in a server-sent event: {payload[:200]!r}") from None
                self.on_event(event or (data.get("type") if isinstance(data, dict) else None), data)
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)

    @abc.abstractmethod
    def on_event(self, event: str | None, data: Any) -> None: ...

    @abc.abstractmethod
    def finish(self, *, request_id: str | None, elapsed: float) -> Completion: ...


class CheckedStream(StreamReader):
    """A stream of output text whose every delta is checked with llguidance as it arrives.

    The first byte that leaves the grammar stops the stream: the caller has seen only the valid prefix
    (whole characters), and a ``ValidationError`` carries the offset of that byte.
    """

    def __init__(self, provider: HTTPProvider, constraint: Constraint, on_delta: DeltaCallback | None) -> None:
        super().__init__()
        self.provider = provider
        self.constraint = constraint
        self.on_delta = on_delta
        self.grammar = constraint.grammar
        self.matcher = self.grammar._llg().fresh()
        self.parts: list[str] = []

    def text_delta(self, delta: str) -> None:
        data = delta.encode("utf-8")
        accepted = self.matcher.validate_tokens(list(data))
        if accepted < len(data):
            received = "".join(self.parts) + delta
            good = data[:accepted].decode("utf-8", errors="ignore")
            if good:
                self._emit(good)
            found = self.grammar.llg_error(received)
            offset = found.offset if found is not None else len("".join(self.parts).encode("utf-8")) + accepted
            raise ValidationError(
                f"streamed output left the grammar; cut at byte {offset}"
                + (f": {found.reason}" if found is not None else ""),
                text=received,
                offset=offset,
                line=found.line if found is not None else None,
                column=found.column if found is not None else None,
                expected=found.expected if found is not None else (),
                engine="llguidance",
                grammar=self.grammar.name,
            )
        self.matcher.consume_tokens(list(data))
        self._emit(delta)

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        if self.on_delta is not None and text:
            self.delivered = True
            self.on_delta(text)

    def stream_error(self, code: Any, message: str) -> ProviderError:
        """The error a server reported inside the stream (a rate limit, or a server error)."""
        cls: type[ProviderError] = RateLimitError if code in ("rate_limit_exceeded", 429) else ServerError
        name = self.provider.name
        return cls(f"{name}: the stream reported an error", server_message=f"{message} ({code})", provider=name)


class HTTPProvider(Provider):
    """A provider over HTTP. Subclasses set the class data and implement ``build`` and ``read``."""

    name: ClassVar[str] = "http"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "http://127.0.0.1:8000/v1"
    base_url_env: ClassVar[str | None] = "CONSTRAIN_BASE_URL"
    api_key_env: ClassVar[str | None] = None
    key_required_for_default_url: ClassVar[bool] = False
    auth_header: ClassVar[str] = "Authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    default_query: ClassVar[Mapping[str, str]] = {}
    default_model: ClassVar[str | None] = None
    supports_streaming: ClassVar[bool] = False
    supports_sampling: ClassVar[bool] = True
    seed_field: ClassVar[str | None] = "seed"  # the body field of a sampling seed (None: the API has none)

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
        async_shards: int = 8,
    ) -> None:
        env_url = os.environ.get(self.base_url_env) if self.base_url_env else None
        self.base_url = (base_url or env_url or self.default_base_url).rstrip("/")
        self.model = model or os.environ.get("CONSTRAIN_MODEL") or self.default_model
        self._key = _Secret(api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None))
        if (
            self.key_required_for_default_url
            and not self._key.value
            and self.base_url == self.default_base_url.rstrip("/")
        ):
            raise AuthenticationError(
                f"{self.name}: no API key; set {self.api_key_env} or pass api_key=", provider=self.name
            )
        self.retry = retry or RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._extra_headers = dict(headers or {})
        self._transport = transport
        self._async_transport = async_transport or (
            transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        )
        self._rng = random.Random(seed)
        self._client: httpx.Client | None = None
        self.async_shards = max(1, async_shards)
        self._async_clients: dict[int, tuple[asyncio.AbstractEventLoop, list[httpx.AsyncClient], Iterator[int]]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # -- what subclasses provide ------------------------------------------------------------------
    @abc.abstractmethod
    def build(
        self, messages: Sequence[Message], constraint: Constraint, *, max_tokens: int | None, stream: bool
    ) -> HTTPRequest: ...

    @abc.abstractmethod
    def read(self, data: Any, constraint: Constraint, *, request_id: str | None, elapsed: float) -> Completion:
        """A ``Completion`` from a decoded JSON body; ``ResponseFormatError`` when the shape is wrong."""

    def stream_reader(self, constraint: Constraint, on_delta: DeltaCallback | None) -> StreamReader:
        raise NotImplementedError(f"{self.name} does not stream")

    # -- shared core ----------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self._extra_headers}
        if self._key.value:
            headers[self.auth_header] = f"{self.auth_prefix}{self._key.value}"
        return headers

    def sampling_fields(self, sampling: Sampling) -> dict[str, Any]:
        """The body fields that draw one candidate: its temperature, and its seed where the API takes one."""
        fields: dict[str, Any] = {"temperature": sampling.temperature}
        if sampling.seed is not None and self.seed_field is not None:
            fields[self.seed_field] = sampling.seed
        return fields

    def _request(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        max_tokens: int | None,
        on_delta: DeltaCallback | None,
        sampling: Sampling | None = None,
    ) -> HTTPRequest:
        if not messages:
            raise ConstrainError("no messages to send")
        request = self.build(messages, constraint, max_tokens=max_tokens, stream=bool(on_delta) and self.supports_streaming)
        if sampling is not None and isinstance(request.body, dict):
            request.body.update(self.sampling_fields(sampling))
        return request

    def _url(self, request: HTTPRequest) -> str:
        return f"{self.base_url}{request.path}"

    def _error(self, response_status: int, headers: httpx.Headers, body: bytes, constraint: Constraint) -> ProviderError:
        return error_from_response(
            response_status, headers, body, provider=self.name, grammar_name=constraint.grammar.name, secret=self._key.value
        )

    def _transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        text = str(exc)
        if self._key.value:
            text = text.replace(self._key.value, "***")
        if isinstance(exc, httpx.TimeoutException):
            seconds = self.timeout.read
            return ProviderTimeoutError(f"{self.name}: no answer within the timeout ({seconds:g}s): {type(exc).__name__}", provider=self.name)
        return ProviderConnectionError(f"{self.name}: connection failed: {type(exc).__name__}: {text}", provider=self.name)

    def _decode(self, body: bytes, request_id: str | None) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            excerpt = body[:120].decode("utf-8", errors="replace")
            raise ResponseFormatError(
                f"{self.name} answered with a body that is not valid JSON ({len(body)} bytes): {excerpt!r}",
                request_id=request_id,
                provider=self.name,
            ) from None

    def _finish(self, response: httpx.Response, body: bytes, constraint: Constraint, started: float) -> Completion:
        request_id = request_id_of(response.headers)
        if response.status_code >= 300:
            raise self._error(response.status_code, response.headers, body, constraint)
        elapsed = time.perf_counter() - started
        logger.debug("%s %s -> %s in %.3fs (request id %s)", self.name, response.request.url.path, response.status_code, elapsed, request_id)
        completion = self.read(self._decode(body, request_id), constraint, request_id=request_id, elapsed=elapsed)
        return completion

    @staticmethod
    def _deliver(completion: Completion, reader: StreamReader | None, on_delta: DeltaCallback | None) -> Completion:
        """A provider that cannot stream still hands the whole text to ``on_delta``, once."""
        if reader is None and on_delta is not None and completion.text:
            on_delta(completion.text)
        return completion

    def _should_retry(self, error: ProviderError, retry_number: int, delivered: bool) -> float | None:
        if delivered:
            return None
        delay = self.retry.delay(retry_number, error, self._rng)
        if delay is not None:
            logger.warning("%s: retry %d/%d in %.2fs after: %s", self.name, retry_number + 1, self.retry.max_retries, delay, error)
        return delay

    # -- sync -----------------------------------------------------------------------------------------
    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout, transport=self._transport, params=dict(self.default_query), verify=_ssl_context()
            )
        return self._client

    def complete(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        sampling: Sampling | None = None,
    ) -> Completion:
        """Send one request (``sampling``: its temperature and seed; None: the server's defaults)."""
        request = self._request(messages, constraint, max_tokens, on_delta, sampling)
        retry_number = 0
        while True:
            reader = self.stream_reader(constraint, on_delta) if request.stream else None
            try:
                return self._deliver(self._send_once(request, constraint, reader), reader, on_delta)
            except ProviderError as error:
                delay = self._should_retry(error, retry_number, reader is not None and reader.delivered)
                if delay is None:
                    raise
            retry_number += 1
            time.sleep(delay)

    def _send_once(self, request: HTTPRequest, constraint: Constraint, reader: StreamReader | None) -> Completion:
        client = self._sync_client()
        started = time.perf_counter()
        try:
            with client.stream("POST", self._url(request), json=request.body, headers=self._headers()) as response:
                if reader is None or response.status_code >= 300:
                    return self._finish(response, response.read(), constraint, started)
                for line in response.iter_lines():
                    reader.feed_line(line)
                reader.feed_line("")
                return reader.finish(request_id=request_id_of(response.headers), elapsed=time.perf_counter() - started)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> HTTPProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async ----------------------------------------------------------------------------------------
    def _async_client(self) -> httpx.AsyncClient:
        # Several small pools instead of one big one: httpcore scans every pooled connection for every
        # queued request, which grows with the square of the concurrency; shards keep each scan short.
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            clients = [
                httpx.AsyncClient(
                    timeout=self.timeout, transport=self._async_transport, params=dict(self.default_query), verify=_ssl_context()
                )
                for _ in range(self.async_shards)
            ]
            self._async_clients[id(loop)] = entry = (loop, clients, itertools.count())
        return entry[1][next(entry[2]) % len(entry[1])]

    async def acomplete(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        sampling: Sampling | None = None,
    ) -> Completion:
        """Send one request (``sampling``: its temperature and seed; None: the server's defaults)."""
        request = self._request(messages, constraint, max_tokens, on_delta, sampling)
        retry_number = 0
        while True:
            reader = self.stream_reader(constraint, on_delta) if request.stream else None
            try:
                return self._deliver(await self._asend_once(request, constraint, reader), reader, on_delta)
            except ProviderError as error:
                delay = self._should_retry(error, retry_number, reader is not None and reader.delivered)
                if delay is None:
                    raise
            retry_number += 1
            await asyncio.sleep(delay)

    async def _asend_once(self, request: HTTPRequest, constraint: Constraint, reader: StreamReader | None) -> Completion:
        client = self._async_client()
        started = time.perf_counter()
        try:
            async with client.stream("POST", self._url(request), json=request.body, headers=self._headers()) as response:
                if reader is None or response.status_code >= 300:
                    return self._finish(response, await response.aread(), constraint, started)
                async for line in response.aiter_lines():
                    reader.feed_line(line)
                reader.feed_line("")
                return reader.finish(request_id=request_id_of(response.headers), elapsed=time.perf_counter() - started)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    async def aclose(self) -> None:
        entries, self._async_clients = self._async_clients, {}
        for loop, clients, _ in entries.values():
            if loop is asyncio.get_running_loop():
                for client in clients:
                    await client.aclose()

    async def __aenter__(self) -> HTTPProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one (loading the CA bundle) costs far more than a request."""
    return httpx.create_ssl_context()


def messages_as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def items(data: Any, key: str) -> Iterator[dict[str, Any]]:
    """The dict entries of ``data[key]`` (a list), for reading wire formats by type, never by index."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return iter(())
    return (v for v in value if isinstance(v, dict))

