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

    @property
    def definition(self) -> str:
        return self.grammar.text


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
    """Sends messages plus a constraint; returns a ``Completion``. Sync and async share one core."""

    name: str = "provider"

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
