"""The provider contract shared by remote (HTTP) and local providers."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from ..grammar import Grammar


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Constraint:
    """What the model's output must match: a Lark grammar, or a one-line regex (``syntax="regex"``)."""

    grammar: Grammar
    syntax: Literal["lark", "regex"] = "lark"
    name: str = "emit"
    description: str = "Write the answer. The input must match the grammar exactly."
    pattern: str | None = None  # the regex as sent, when ``syntax == "regex"``

    @property
    def definition(self) -> str:
        """The text sent to the provider: the Lark grammar, or the bare regex for a regex constraint."""
        return self.pattern if self.syntax == "regex" and self.pattern is not None else self.grammar.text

    @classmethod
    def regex(cls, pattern: str, *, name: str = "emit", description: str | None = None) -> Constraint:
        """A one-line regex constraint; validated locally through an equivalent one-rule Lark grammar."""
        import llguidance

        grammar = Grammar(f"start: /{llguidance.regex_to_lark(pattern)}/", name=f"regex:{pattern}")
        return cls(grammar, "regex", name, description or cls.description, pattern)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """The raw output of one request, before any local validation."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: Literal["stop", "length"] = "stop"
    request_id: str | None = None
    model: str | None = None
    elapsed: float = 0.0
    raw: Any = field(default=None, repr=False, compare=False)


DeltaCallback = Callable[[str], None]


class Provider(abc.ABC):
    """Sends messages plus a constraint; returns a ``Completion``. Sync and async share one core.

    A provider never validates the finished output (the generate loop does); a streaming provider may
    cut a stream that has already left the grammar. Output stopped by the token limit comes back with
    ``finish_reason == "length"`` (or as ``TruncatedError``).
    """

    name: str = "provider"
    model: str | None = None

    @abc.abstractmethod
    def complete(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> Completion: ...

    @abc.abstractmethod
    async def acomplete(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> Completion: ...
