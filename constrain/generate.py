"""The generate → validate → re-ask loop: a prompt and a grammar go in, a checked, typed value comes out.

Every attempt is kept (raw text, error, usage, timing) for audit. When an output fails local
validation, the next attempt shows the model its output and the error with its location. Attempts
and tokens are bounded; when every attempt fails, ``GenerationError`` carries them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Generic, Sequence, TypeVar

from .errors import ConstrainError, GenerationError, InputError, TruncatedError, ValidationError
from .grammar import Grammar, load_grammar
from .providers.base import DEFAULT_TEMPERATURE, Completion, Constraint, DeltaCallback, Message, Provider, Sampling, Usage

__all__ = ["Attempt", "Result", "generate", "agenerate", "DEFAULT_SYSTEM"]

T = TypeVar("T")

DEFAULT_SYSTEM = (
    "Answer by calling the tool. Its input must match the tool's grammar exactly; "
    "write only that input, with no commentary."
)


@dataclass(frozen=True)
class Attempt:
    """One request and its local verdict: ``error`` is None for the attempt that succeeded."""

    number: int
    raw: str
    error: ConstrainError | None
    usage: Usage
    elapsed: float
    validation_time: float = 0.0
    request_id: str | None = None
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] | None = None
        if self.error is not None:
            to_dict = getattr(self.error, "to_dict", None)
            error = to_dict() if callable(to_dict) else {}
            error.update(type=type(self.error).__name__, message=str(self.error).splitlines()[0])
        return {
            "number": self.number,
            "raw": self.raw,
            "ok": self.ok,
            "error": error,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
                      "reasoning_tokens": self.usage.reasoning_tokens},
            "elapsed": self.elapsed,
            "validation_time": self.validation_time,
            "request_id": self.request_id,
            "finish_reason": self.finish_reason,
        }


@dataclass(frozen=True)
class Result(Generic[T]):
    """A validated output: ``value`` is typed (Lark tree, the grammar's typed value, a validator's result,
    or a pydantic instance); ``raw`` is the text the model produced; ``attempts`` keeps every try."""

    value: T
    raw: str
    attempts: tuple[Attempt, ...]
    grammar: Grammar = field(repr=False)
    provider: str = ""
    model: str | None = None
    elapsed: float = 0.0

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def request_id(self) -> str | None:
        return self.attempts[-1].request_id if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "raw": self.raw,
            "grammar": self.grammar.name,
            "provider": self.provider,
            "model": self.model,
            "elapsed": self.elapsed,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                      "reasoning_tokens": usage.reasoning_tokens, "total_tokens": usage.total_tokens},
            "attempts": [a.to_dict() for a in self.attempts],
        }


class _Loop:
    """The loop's state and decisions, shared by ``generate`` and ``agenerate`` (only the send differs)."""

    def __init__(
        self,
        prompt: str | Sequence[Message],
        grammar: Grammar | str | None,
        provider: Provider | str | None,
        output_type: Any,
        validator: Callable[[str], Any] | None,
        system: str | None,
        max_attempts: int,
        max_tokens: int | None,
        max_total_tokens: int | None,
        syntax: str,
        tool_name: str,
    ) -> None:
        if max_attempts < 1:
            raise InputError("max_attempts must be at least 1")
        self.provider = _resolve_provider(provider)
        self.output_type = output_type
        self.validator = validator
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.max_total_tokens = max_total_tokens
        if syntax == "regex":
            if not isinstance(grammar, str):
                raise InputError("syntax='regex' needs the regex as a string in grammar=")
            self.constraint = Constraint.regex(grammar, name=tool_name)
        else:
            self.constraint = Constraint(_resolve_grammar(grammar, output_type), name=tool_name)
        self.grammar = self.constraint.grammar
        self.messages: list[Message] = _initial_messages(prompt, system)
        self.attempts: list[Attempt] = []
        self.sampling = False
        self.started = time.perf_counter()

    def budget_left(self) -> int | None:
        if self.max_total_tokens is None:
            return None
        used = sum(a.usage.total_tokens for a in self.attempts)
        return self.max_total_tokens - used

    def request_limit(self) -> int | None:
        left = self.budget_left()
        if left is None:
            return self.max_tokens
        return left if self.max_tokens is None else min(self.max_tokens, left)

    def run(self) -> Generator[dict[str, Any], tuple[Completion | None, ConstrainError | None], Result[Any]]:
        """The loop, written once for ``generate`` and ``agenerate``: yields each request's options,
        receives its completion (or the error it raised), and returns the first result that validates."""
        while self.should_continue():
            started = time.perf_counter()
            completion, error = yield self.send_options()
            result = self.judge(completion, error, time.perf_counter() - started)
            if result is not None:
                return result
        raise self.failure()

    def should_continue(self) -> bool:
        if len(self.attempts) >= self.max_attempts:
            return False
        left = self.budget_left()
        return left is None or left > 0

    def judge(self, completion: Completion | None, error: ConstrainError | None, elapsed: float) -> Result[Any] | None:
        """Record an attempt; return the Result when it validated, else queue the feedback message."""
        raw = completion.text if completion is not None else getattr(error, "text", "") or getattr(error, "partial", "")
        usage = completion.usage if completion is not None else Usage()
        value: Any = None
        validation_time = 0.0
        if error is None and completion is not None:
            if completion.finish_reason == "length":
                error = TruncatedError(
                    f"the output stopped at the token limit ({self.request_limit() or 'provider default'}) before the grammar was complete",
                    partial=completion.text,
                    limit=self.request_limit(),
                )
            else:
                started = time.perf_counter()
                try:
                    value = self.validate(completion.text)
                except ValidationError as exc:
                    error = exc
                validation_time = time.perf_counter() - started
        attempt = Attempt(
            number=len(self.attempts) + 1,
            raw=raw,
            error=error,
            usage=usage,
            elapsed=elapsed,
            validation_time=validation_time,
            request_id=completion.request_id if completion is not None else getattr(error, "request_id", None),
            finish_reason=completion.finish_reason if completion is not None else None,
        )
        repeated = error is not None and any(a.error is not None and a.raw == raw for a in self.attempts)
        self.attempts.append(attempt)
        if error is None:
            return Result(
                value=value,
                raw=completion.text if completion is not None else "",
                attempts=tuple(self.attempts),
                grammar=self.grammar,
                provider=getattr(self.provider, "name", type(self.provider).__name__),
                model=(completion.model if completion is not None else None) or self.provider.model,
                elapsed=time.perf_counter() - self.started,
            )
        if repeated:
            # the model wrote a refused answer again: feeding it back again adds nothing, so from here
            # on each request draws a seeded sample (the validator still judges every one)
            self.sampling = True
        else:
            self.messages += _feedback(raw, error)
        return None

    def send_options(self) -> dict[str, Any]:
        """The next request's options: its token limit, and a sampling once greedy answers repeat."""
        options: dict[str, Any] = {"max_tokens": self.request_limit()}
        if self.sampling and self.provider.supports_sampling:
            options["sampling"] = Sampling(DEFAULT_TEMPERATURE, len(self.attempts) + 1)
        return options

    def validate(self, text: str) -> Any:
        if self.validator is not None:
            self.grammar.validate(text)
            return self.validator(text)
        if self.output_type is not None:
            return self.grammar.parse_json(text, self.output_type)
        return self.grammar.parse_typed(text)

    def failure(self) -> GenerationError:
        last = self.attempts[-1].error if self.attempts else None
        why = "token budget spent" if self.budget_left() is not None and self.budget_left() <= 0 else f"{len(self.attempts)} attempt(s) failed"  # type: ignore[operator]
        return GenerationError(
            f"no valid output for grammar {self.grammar.name}: {why}; last error: {str(last).splitlines()[0] if last else 'none'}",
            attempts=self.attempts,
        )


def _resolve_grammar(grammar: Grammar | str | None, output_type: Any) -> Grammar:
    if isinstance(grammar, Grammar):
        return grammar
    if isinstance(grammar, str):
        return load_grammar(grammar)
    if output_type is not None:
        try:
            from . import json_schema  # type: ignore[attr-defined]
        except ImportError:
            raise InputError("output_type= needs constrain.json_schema, which is not available; pass grammar=") from None
        return _schema_grammar(json_schema, output_type)
    raise InputError("generate needs grammar= (a Grammar, a packaged grammar name or a .lark path) or output_type=")


def _schema_grammar(json_schema: Any, output_type: Any) -> Grammar:
    """``output_type``'s grammar: exact (strict) when the schema compiles so, else widened.

    Measured on MaskBench (README, "JSON Schema -> grammar"): strict compiles 85.3% of the schemas
    with a grammar whose language is exactly the conforming values; widen compiles 98.6%, leaving
    what it drops (listed by ``json_schema.widenings``) to the validator, which every output passes
    before it is returned. Strict first keeps the exact grammar where there is one (no re-asks for
    values the grammar could have ruled out); the fallback keeps usable 133 of the 147 schemas strict
    refuses, instead of raising before any request. Pass ``grammar=json_schema.grammar(T, widen=...)``
    to choose.
    """
    from .errors import JSONSchemaError

    try:
        return json_schema.grammar(output_type)  # type: ignore[no-any-return]
    except JSONSchemaError:
        return json_schema.grammar(output_type, widen=True)  # type: ignore[no-any-return]


def _resolve_provider(provider: Provider | str | None) -> Provider:
    if isinstance(provider, Provider):
        return provider
    from . import providers

    return providers.from_env(provider)


def _initial_messages(prompt: str | Sequence[Message], system: str | None) -> list[Message]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("the prompt is empty")
        return [Message("system", system or DEFAULT_SYSTEM), Message("user", prompt)]
    messages = list(prompt)
    if not messages:
        raise InputError("no messages given")
    if system is not None:
        messages.insert(0, Message("system", system))
    return messages


def _feedback(raw: str, error: ConstrainError) -> list[Message]:
    """What the model sees after a failed attempt: its own output, then what was wrong and where."""
    if isinstance(error, TruncatedError):
        note = "Your previous answer was cut off at the token limit. Write a shorter answer that still matches the grammar."
    else:
        note = (
            "Your previous answer was rejected by the local validator:\n"
            f"{error}\n"
            "Write a corrected answer. It must match the grammar exactly."
        )
    shown = raw if raw else "(empty)"
    return [Message("assistant", shown), Message("user", note)]


_RETRY_ON_ERROR = (ValidationError, TruncatedError)


def generate(
    prompt: str | Sequence[Message],
    *,
    grammar: Grammar | str | None = None,
    provider: Provider | str | None = None,
    output_type: type[T] | None = None,
    validator: Callable[[str], T] | None = None,
    system: str | None = None,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    max_total_tokens: int | None = None,
    on_delta: DeltaCallback | None = None,
    syntax: str = "lark",
    tool_name: str = "emit",
) -> Result[Any]:
    """Generate until an output validates, at most ``max_attempts`` times and ``max_total_tokens`` tokens.

    ``grammar`` is a ``Grammar``, a packaged grammar name or a ``.lark`` path (or a regex with
    ``syntax="regex"``). The value is, in order of precedence: ``validator(raw)`` (after the grammar
    check), a pydantic instance of ``output_type``, or ``grammar.parse_typed(raw)``. ``provider`` is a
    ``Provider`` or a registry name; None picks one from the environment. ``on_delta`` streams.
    Transport failures (after the provider's own retries) propagate as ``ProviderError``.
    """
    loop = _Loop(prompt, grammar, provider, output_type, validator, system, max_attempts, max_tokens, max_total_tokens, syntax, tool_name)
    flow = loop.run()
    options = next(flow)
    while True:
        try:
            sent: tuple[Completion | None, ConstrainError | None] = (
                loop.provider.complete(loop.messages, loop.constraint, on_delta=on_delta, **options), None)
        except _RETRY_ON_ERROR as exc:
            sent = (None, exc)
        try:
            options = flow.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def agenerate(
    prompt: str | Sequence[Message],
    *,
    grammar: Grammar | str | None = None,
    provider: Provider | str | None = None,
    output_type: type[T] | None = None,
    validator: Callable[[str], T] | None = None,
    system: str | None = None,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    max_total_tokens: int | None = None,
    on_delta: DeltaCallback | None = None,
    syntax: str = "lark",
    tool_name: str = "emit",
) -> Result[Any]:
    """The async twin of ``generate`` (same arguments, same result)."""
    loop = _Loop(prompt, grammar, provider, output_type, validator, system, max_attempts, max_tokens, max_total_tokens, syntax, tool_name)
    flow = loop.run()
    options = next(flow)
    while True:
        try:
            sent: tuple[Completion | None, ConstrainError | None] = (
                await loop.provider.acomplete(loop.messages, loop.constraint, on_delta=on_delta, **options), None)
        except _RETRY_ON_ERROR as exc:
            sent = (None, exc)
        try:
            options = flow.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

