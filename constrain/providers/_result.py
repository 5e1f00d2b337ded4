"""What a model's answer came to once validated: each ``Attempt`` and the typed ``Result``, and
``typed_value``, the one way an output text becomes its value (a validator's, a pydantic instance or the
grammar's typed value).

The generate loop builds these (and re-exports ``Attempt`` and ``Result``); so does ``parse_openai`` for an
answer the caller got from the openai SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from ..errors import ConstrainError
from ..grammar import Grammar
from .base import Usage

__all__ = ["Attempt", "Result", "typed_value"]

T = TypeVar("T")


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
    or a pydantic instance); ``raw`` is the validated text (what the model produced, or for a grammar asked
    in its written form the text that form stands for, with the model's own words in ``written``);
    ``attempts`` keeps every try."""

    value: T
    raw: str
    attempts: tuple[Attempt, ...]
    grammar: Grammar = field(repr=False)
    written: str | None = None  # what the model wrote, when the grammar was asked in its written form
    provider: str = ""
    model: str | None = None
    elapsed: float = 0.0
    agreement: int = 1  # with candidates: how many valid candidates of the last round gave this value

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
            **({"written": self.written} if self.written is not None else {}),
            "grammar": self.grammar.name,
            "provider": self.provider,
            "model": self.model,
            "elapsed": self.elapsed,
            "agreement": self.agreement,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                      "reasoning_tokens": usage.reasoning_tokens, "total_tokens": usage.total_tokens},
            "attempts": [a.to_dict() for a in self.attempts],
        }


def typed_value(grammar: Grammar, text: str, output_type: Any, validator: Callable[[str], Any] | None) -> Any:
    """``text``'s value: ``validator(text)`` after the grammar check, else a pydantic instance of
    ``output_type``, else ``grammar.parse_typed(text)``; ``ValidationError`` (located) when it fails."""
    if validator is not None:
        grammar.validate(text)
        return validator(text)
    if output_type is not None:
        return grammar.parse_json(text, output_type)
    return grammar.parse_typed(text)
