"""The generate → validate → re-ask loop: a prompt and a grammar go in, a checked, typed value comes out.

The model is told what to write: the grammar's ``description`` and ``examples`` (a JSON Schema's
fields; a DSL's syntax and sample outputs) go into the system message, or into the custom tool's
description for providers that send the grammar as a tool (``Provider.tool_descriptions``).
Every attempt is kept (raw text, error, usage, timing) for audit. When an output fails local
validation, the next attempt shows the model its output and the error with its location. Attempts
and tokens are bounded: each attempt by the grammar's ``max_tokens`` (its longest right answer)
unless ``max_tokens`` is given, and an attempt that loops is cut early (``TruncatedError.repeated``).
When every attempt fails, ``GenerationError`` carries them all. With ``candidates=K`` each round
draws K outputs and returns the typed value most of the valid ones agree on.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable, Generator, Sequence, TypeVar

from .errors import ConstrainError, GenerationError, InputError, TruncatedError, ValidationError
from .grammar import Grammar
from .providers import OpenAIClient, from_env
from .providers._guide import constraint_for, guide, request_constraint, with_named_values
from .providers._result import Attempt, Result, typed_value
from .providers.base import (
    DEFAULT_TEMPERATURE, Candidate, Completion, DeltaCallback, Message, Provider, Sampling, Usage,
)

__all__ = ["Attempt", "Result", "generate", "agenerate", "guide", "messages_for", "constraint_for", "DEFAULT_SYSTEM"]

T = TypeVar("T")

DEFAULT_SYSTEM = (
    "Answer by calling the tool. Its input must match the tool's grammar exactly; "
    "write only that input, with no commentary."
)
ANSWER_SYSTEM = "Write only the answer, in the format described below: no commentary, no markdown, no code fences."


def messages_for(
    prompt: str | Sequence[Message], grammar: Grammar | None, *, system: str | None = None,
    describe: bool = True, in_tool: bool = False,
) -> list[Message]:
    """The first request's messages: the system message (``system``, else the default) and the prompt.

    With ``describe`` the grammar's guide is added to the system message and its worked examples
    (those with a request) become turns before the prompt, a request and its answer each, unless
    ``in_tool`` (the provider puts the whole guide in the tool's description instead).
    """
    shown = describe and grammar is not None and not in_tool
    text = guide(grammar, worked=False) if shown and grammar is not None else ""
    if describe and grammar is not None:
        prompt = with_named_values(prompt, grammar)
    turns = [
        message
        for output, request in (grammar.examples if shown and grammar is not None else ())
        if request is not None
        for message in (Message("user", request), Message("assistant", output))
    ]
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("the prompt is empty")
        head = system or (ANSWER_SYSTEM if text else DEFAULT_SYSTEM)
        return [Message("system", f"{head}\n\n{text}" if text else head), *turns, Message("user", prompt)]
    messages = list(prompt)
    if not messages:
        raise InputError("no messages given")
    if system is not None or text:
        content = "\n\n".join(part for part in (system, text) if part)
        if messages[0].role == "system":  # one system message: the caller's first, the guide after it
            messages[0] = Message("system", f"{messages[0].content}\n\n{content}")
        else:
            messages.insert(0, Message("system", content))
    first = 1 if messages[0].role == "system" else 0
    return messages[:first] + turns + messages[first:]


class _Loop:
    """The loop's state and decisions, shared by ``generate`` and ``agenerate`` (only the send differs)."""

    def __init__(
        self,
        prompt: str | Sequence[Message],
        grammar: Grammar | str | None,
        provider: Provider | str | OpenAIClient | None,
        output_type: Any,
        validator: Callable[[str], Any] | None,
        system: str | None,
        max_attempts: int,
        max_tokens: int | None,
        max_total_tokens: int | None,
        syntax: str,
        tool_name: str,
        candidates: int = 1,
        describe: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise InputError("max_attempts must be at least 1")
        if candidates < 1:
            raise InputError("candidates must be at least 1")
        self.provider = _resolve_provider(provider)
        self.output_type = output_type
        self.validator = validator
        self.max_attempts = max_attempts
        self.max_total_tokens = max_total_tokens
        self.candidates = candidates
        in_tool = describe and self.provider.tool_descriptions
        self.constraint = request_constraint(grammar, output_type, syntax, tool_name, in_tool=in_tool)
        self.grammar = self.constraint.grammar
        # a grammar with a written form (``Grammar.written_as``) is asked for in that form, with its guide
        self.written = self.grammar.written_as if describe and output_type is None and validator is None and syntax != "regex" else None
        if self.written is not None:
            self.constraint = constraint_for(self.written, in_tool=in_tool, name=tool_name)
        asked = self.constraint.grammar
        # an explicit max_tokens wins; else the grammar's bound (its longest right answer), else the provider's
        self.max_tokens = max_tokens if max_tokens is not None else asked.max_tokens
        self.messages: list[Message] = messages_for(
            prompt, asked, system=system, describe=describe and syntax != "regex",
            in_tool=self.provider.tool_descriptions,
        )
        self.attempts: list[Attempt] = []
        self.sampling = False
        self.round_start = 0  # attempts recorded before the current round
        self.rounds = 0  # requests sent (a round of candidates is one)
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

    def run(self) -> Generator[dict[str, Any], list[tuple[Completion | None, ConstrainError | None]], Result[Any]]:
        """The loop, written once for ``generate`` and ``agenerate``: yields each round's request options
        (``samplings`` set when the round draws several candidates), receives one (completion, error)
        pair per output, and returns the first result that validates (with candidates, the value most
        valid outputs of the round agree on)."""
        while self.should_continue():
            started = time.perf_counter()
            outputs = yield self.send_options()
            elapsed = time.perf_counter() - started
            judged = [self.judge(completion, error, elapsed / len(outputs)) for completion, error in outputs]
            valid = [result for result in judged if result is not None]
            if valid:
                return self.vote(valid)
        raise self.failure()

    def should_continue(self) -> bool:
        if self.rounds >= self.max_attempts:
            return False
        left = self.budget_left()
        return left is None or left > 0

    def judge(self, completion: Completion | None, error: ConstrainError | None, elapsed: float) -> Result[Any] | None:
        """Record an attempt; return its Result when it validated, else queue the feedback message
        (for a round of candidates, only the first refused output is fed back)."""
        raw = completion.text if completion is not None else getattr(error, "text", "") or getattr(error, "partial", "")
        usage = completion.usage if completion is not None else getattr(error, "usage", None) or Usage()
        value: Any = None
        text = completion.text if completion is not None else ""
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
                    text, value = self.validate(completion.text)
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
        first_of_round = self.round_start == len(self.attempts)
        self.attempts.append(attempt)
        if error is None:
            return Result(
                value=value,
                raw=text,
                written=raw if self.written is not None else None,
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
        elif first_of_round:
            self.messages += _feedback(raw, error)
        return None

    def vote(self, valid: list[Result[Any]]) -> Result[Any]:
        """The result whose typed value most valid outputs share (ties: the earliest, the greedy one)."""
        groups: dict[str, list[Result[Any]]] = {}
        for result in valid:
            groups.setdefault(_vote_key(result.value), []).append(result)
        best = max(groups.values(), key=len)  # max keeps the first of equal sizes
        return dataclasses.replace(best[0], attempts=tuple(self.attempts), elapsed=time.perf_counter() - self.started,
                                   agreement=len(best))

    def send_options(self) -> dict[str, Any]:
        """The next round's options: its token limit; the candidates' samplings (the first greedy unless
        greedy answers repeat); a single sampling once greedy answers repeat."""
        self.round_start = len(self.attempts)
        self.rounds += 1
        options: dict[str, Any] = {"max_tokens": self.request_limit()}
        if self.candidates > 1 and self.provider.supports_sampling:
            first = len(self.attempts) + 1
            options["samplings"] = [
                Sampling(DEFAULT_TEMPERATURE, first + i) if i or self.sampling else Sampling()
                for i in range(self.candidates)
            ]
        elif self.sampling and self.provider.supports_sampling:
            options["sampling"] = Sampling(DEFAULT_TEMPERATURE, len(self.attempts) + 1)
        return options

    def validate(self, text: str) -> tuple[str, Any]:
        """The output's text in the grammar (converted from its written form, if asked in one) and value."""
        if self.written is not None:
            text = self.grammar.from_written(text)
        return text, typed_value(self.grammar, text, self.output_type, self.validator)

    def failure(self) -> GenerationError:
        last = self.attempts[-1].error if self.attempts else None
        why = "token budget spent" if self.budget_left() is not None and self.budget_left() <= 0 else f"{len(self.attempts)} attempt(s) failed"  # type: ignore[operator]
        return GenerationError(
            f"no valid output for grammar {self.grammar.name}: {why}; last error: {str(last).splitlines()[0] if last else 'none'}",
            attempts=self.attempts,
        )


def _vote_key(value: Any) -> str:
    """Equal typed values, equal keys: JSON for pydantic models and plain data, else the value's repr."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _resolve_provider(provider: Provider | str | OpenAIClient | None) -> Provider:
    if isinstance(provider, Provider):
        return provider
    return from_env(provider)


def _feedback(raw: str, error: ConstrainError) -> list[Message]:
    """What the model sees after a failed attempt: its own output, then what was wrong and where."""
    if isinstance(error, TruncatedError) and error.repeated:
        note = (
            f"Your previous answer kept repeating {error.repeated[:80]!r} and was stopped. "
            "Write the answer once, as short as it can be, in the required format."
        )
    elif isinstance(error, TruncatedError):
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
    provider: Provider | str | OpenAIClient | None = None,
    output_type: type[T] | None = None,
    validator: Callable[[str], T] | None = None,
    system: str | None = None,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    max_total_tokens: int | None = None,
    on_delta: DeltaCallback | None = None,
    syntax: str = "lark",
    tool_name: str = "emit",
    candidates: int = 1,
    describe: bool = True,
) -> Result[Any]:
    """Generate until an output validates, at most ``max_attempts`` rounds and ``max_total_tokens`` tokens.

    ``grammar`` is a ``Grammar``, a packaged grammar name or a ``.lark`` path (or a regex with
    ``syntax="regex"``). The value is, in order of precedence: ``validator(raw)`` (after the grammar
    check), a pydantic instance of ``output_type``, or ``grammar.parse_typed(raw)``. ``provider`` is a
    ``Provider``, a registry name or an ``openai.OpenAI`` / ``AsyncOpenAI`` client (the requests go
    through it); None picks one from the environment. ``on_delta`` streams.
    ``describe``: tell the model the grammar's description and examples (see ``guide``).
    ``max_tokens``: each attempt's limit (default: the grammar's ``max_tokens``, else the provider's).
    ``candidates``: draw K outputs a round (providers that sample) and return the value most agree on.
    Transport failures (after the provider's own retries) propagate as ``ProviderError``.
    """
    loop = _Loop(prompt, grammar, provider, output_type, validator, system, max_attempts, max_tokens,
                 max_total_tokens, syntax, tool_name, candidates, describe)
    flow = loop.run()
    options = next(flow)
    while True:
        samplings = options.pop("samplings", None)
        if samplings is not None:
            sent = [_outcome(c) for c in loop.provider.complete_candidates(loop.messages, loop.constraint, samplings, **options)]
        else:
            try:
                sent = [(loop.provider.complete(loop.messages, loop.constraint, on_delta=on_delta, **options), None)]
            except _RETRY_ON_ERROR as exc:
                sent = [(None, exc)]
        try:
            options = flow.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def agenerate(
    prompt: str | Sequence[Message],
    *,
    grammar: Grammar | str | None = None,
    provider: Provider | str | OpenAIClient | None = None,
    output_type: type[T] | None = None,
    validator: Callable[[str], T] | None = None,
    system: str | None = None,
    max_attempts: int = 3,
    max_tokens: int | None = None,
    max_total_tokens: int | None = None,
    on_delta: DeltaCallback | None = None,
    syntax: str = "lark",
    tool_name: str = "emit",
    candidates: int = 1,
    describe: bool = True,
) -> Result[Any]:
    """The async twin of ``generate`` (same arguments, same result)."""
    loop = _Loop(prompt, grammar, provider, output_type, validator, system, max_attempts, max_tokens,
                 max_total_tokens, syntax, tool_name, candidates, describe)
    flow = loop.run()
    options = next(flow)
    while True:
        samplings = options.pop("samplings", None)
        if samplings is not None:
            drawn = await loop.provider.acomplete_candidates(loop.messages, loop.constraint, samplings, **options)
            sent = [_outcome(c) for c in drawn]
        else:
            try:
                sent = [(await loop.provider.acomplete(loop.messages, loop.constraint, on_delta=on_delta, **options), None)]
            except _RETRY_ON_ERROR as exc:
                sent = [(None, exc)]
        try:
            options = flow.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _outcome(candidate: Candidate) -> tuple[Completion | None, ConstrainError | None]:
    """A candidate as the loop takes it; errors other than a refused or cut output propagate."""
    if isinstance(candidate, _RETRY_ON_ERROR):
        return None, candidate
    if isinstance(candidate, ConstrainError):
        raise candidate
    return candidate, None
