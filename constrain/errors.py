"""The exception hierarchy. Every error the library raises is a ``ConstrainError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "ConstrainError",
    "InputError",
    "GrammarError",
    "ValidationError",
    "SchemaError",
    "PolicyError",
    "JSONSchemaError",
    "DatabaseError",
    "ProviderError",
    "AuthenticationError",
    "BadRequestError",
    "GrammarRejectedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "ProviderTimeoutError",
    "ProviderConnectionError",
    "ResponseFormatError",
    "TruncatedError",
    "GenerationError",
    "ModelError",
    "Diagnostic",
]


class ConstrainError(Exception):
    """Base class of every error raised by constrain."""


class InputError(ConstrainError):
    """An input could not be read: missing file, invalid UTF-8, empty, or too large."""

    def __init__(self, message: str, *, source: str | None = None, offset: int | None = None) -> None:
        self.source = source
        self.offset = offset
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a grammar, located at a line and column of the grammar text."""

    severity: str  # "error" | "warning"
    code: str
    message: str
    line: int
    column: int
    text: str = ""
    engine: str = "lint"  # "lark" | "llguidance" | "lint" | a target name

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}"
        snippet = f" [{self.text}]" if self.text else ""
        return f"{where}: {self.severity}: {self.message} ({self.code}, {self.engine}){snippet}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "text": self.text,
            "engine": self.engine,
        }


class GrammarError(ConstrainError):
    """A grammar cannot be built or used; ``diagnostics`` says where and why."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = (), *, grammar: str | None = None) -> None:
        self.diagnostics = list(diagnostics)
        self.grammar = grammar
        lines = [message] + [f"  {d}" for d in self.diagnostics[:20]]
        if len(self.diagnostics) > 20:
            lines.append(f"  ... and {len(self.diagnostics) - 20} more")
        super().__init__("\n".join(lines))


class ValidationError(ConstrainError):
    """A text is not in the grammar's language (or fails a later check).

    Carries the byte ``offset`` (into the UTF-8 encoding), 1-based ``line`` and ``column``,
    the ``expected`` terminals or bytes at that point, the ``engine`` that refused it, and a
    one-line ``excerpt`` with a caret under the failing position.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        offset: int | None = None,
        line: int | None = None,
        column: int | None = None,
        expected: Sequence[str] = (),
        engine: str | None = None,
        grammar: str | None = None,
    ) -> None:
        self.reason = message
        self.text = text
        self.offset = offset
        self.line = line
        self.column = column
        self.expected = sorted(set(expected))
        self.engine = engine
        self.grammar = grammar
        self.excerpt = _excerpt(text, line, column) if line is not None and column is not None else ""
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.line}:{self.column}: ")
        parts.append(self.reason)
        if self.engine:
            parts.append(f" [{self.engine}]")
        if self.expected:
            shown = ", ".join(self.expected[:12])
            more = f", ... ({len(self.expected) - 12} more)" if len(self.expected) > 12 else ""
            parts.append(f"; expected one of: {shown}{more}")
        if self.excerpt:
            parts.append("\n" + self.excerpt)
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.reason,
            "offset": self.offset,
            "line": self.line,
            "column": self.column,
            "expected": list(self.expected),
            "engine": self.engine,
            "excerpt": self.excerpt,
            "type": type(self).__name__,
        }


def _excerpt(text: str, line: int, column: int, width: int = 72) -> str:
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].replace("\t", " ").replace("\r", " ")
    col = max(column - 1, 0)
    start = max(0, min(col - width // 2, len(src) - width))
    shown = src[start : start + width]
    lead = "..." if start > 0 else ""
    tail = "..." if start + width < len(src) else ""
    caret = " " * (len(lead) + col - start) + "^"
    return f"{lead}{shown}{tail}\n{caret}"


class SchemaError(ValidationError):
    """A query names a table or column the schema lacks; ``name`` and ``suggestions`` say which.
    ``fix`` is the whole query with the one change the message proposes, when it proposes exactly one
    (a join along a foreign key, or the qualifier of the table in the query that has the column)."""

    def __init__(self, message: str, *, name: str = "", suggestions: Sequence[str] = (), fix: str | None = None,
                 **kwargs: Any) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        self.fix = fix
        if suggestions:
            message = f"{message}; did you mean: {', '.join(suggestions)}?"
        super().__init__(message, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "name": self.name, "suggestions": list(self.suggestions), "fix": self.fix}


class PolicyError(ValidationError):
    """A well-formed output breaks a policy (e.g. the read-only SQL policy); ``rule`` names which."""

    def __init__(self, message: str, *, rule: str = "", **kwargs: Any) -> None:
        self.rule = rule
        super().__init__(message, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "rule": self.rule}


class DatabaseError(ConstrainError):
    """A database could not be used: its driver is missing (``reason="driver"``), the server refused the
    credentials (``"authentication"``), it could not be reached (``"connection"``), or reading its catalog
    failed (``"catalog"``). The message carries the engine's own words, never a password; ``database``
    is where it is, password hidden."""

    def __init__(self, message: str, *, reason: str = "", database: str = "") -> None:
        self.reason = reason
        self.database = database
        super().__init__(f"{database}: {message}" if database else message)


class JSONSchemaError(ConstrainError):
    """A JSON Schema keyword cannot be compiled exactly; names the keyword and its JSON pointer."""

    def __init__(self, message: str, *, keyword: str = "", pointer: str = "") -> None:
        self.keyword = keyword
        self.pointer = pointer
        where = f" at {pointer or '#'}" if (pointer or keyword) else ""
        kw = f" ({keyword})" if keyword else ""
        super().__init__(f"{message}{kw}{where}")


class ProviderError(ConstrainError):
    """A model provider failed. Carries the HTTP ``status``, the server's ``server_message`` and ``request_id``.

    The API key is never part of the message or the attributes.
    """

    retryable: bool = False
    retry_after: float | None = None  # seconds the server asked us to wait (retry-after headers)

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
        request_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.status = status
        self.server_message = server_message
        self.request_id = request_id
        self.provider = provider
        bits = [message]
        if status is not None:
            bits.append(f"HTTP {status}")
        if server_message:
            bits.append(f"server said: {server_message}")
        if request_id:
            bits.append(f"request id {request_id}")
        super().__init__("; ".join(bits))


class BadRequestError(ProviderError):
    """HTTP 400: the request was refused as malformed."""


class GrammarRejectedError(BadRequestError):
    """HTTP 400 about the grammar itself; run ``constrain check`` on it."""


class AuthenticationError(ProviderError):
    """HTTP 401/403: the key is missing, wrong, or lacks permission."""


class NotFoundError(ProviderError):
    """HTTP 404: unknown model or endpoint."""


class RateLimitError(ProviderError):
    """HTTP 429; retried with backoff, raised once retries are spent."""

    retryable = True


class ServerError(ProviderError):
    """HTTP 5xx; retried with backoff, raised once retries are spent."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The server did not answer within the timeout."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection failed or dropped."""

    retryable = True


class ResponseFormatError(ProviderError):
    """The server answered with a body that does not follow the documented wire format."""


class TruncatedError(ConstrainError):
    """Generation stopped before the grammar was complete: at the token ``limit`` (the bound of the
    attempt), or early because the output looped, writing ``repeated`` over and over."""

    def __init__(
        self, message: str, *, partial: str = "", limit: int | None = None, repeated: str | None = None, usage: Any = None,
    ) -> None:
        self.partial = partial
        self.limit = limit
        self.repeated = repeated
        self.usage = usage  # the tokens the cut attempt spent (a ``Usage``), when the provider knows them
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        return {"partial": self.partial, "limit": self.limit, "repeated": self.repeated}


class GenerationError(ConstrainError):
    """Every attempt of the generate–validate loop failed; ``attempts`` keeps each one for audit. From
    ``sql.ask``, ``prompt_tables`` lists the tables its prompts held and why (as ``Answer.prompt_tables``),
    so a failure too can be traced to retrieval or to the model."""

    def __init__(self, message: str, *, attempts: Sequence[Any] = (), prompt_tables: Sequence[Any] = ()) -> None:
        self.attempts = list(attempts)
        self.prompt_tables = tuple(prompt_tables)
        super().__init__(message)


class ModelError(ConstrainError):
    """The embedded local model cannot be found, assembled, verified or loaded; the message says which step."""
