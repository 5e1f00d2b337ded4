"""The provider contract shared by remote (HTTP) and local providers."""

from __future__ import annotations

import abc
import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence

from ..errors import ConstrainError
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
    logprob: float | None = None  # the model's log-probability of ``text``, when the provider knows it


DEFAULT_TEMPERATURE = 0.7  # samples drawn after a greedy answer (sql.ask's candidates, re-asks that repeat)


@dataclass(frozen=True)
class Sampling:
    """How one candidate is drawn: ``temperature`` 0 is greedy; ``seed`` makes a sample reproducible."""

    temperature: float = 0.0
    seed: int | None = None


Candidate = Completion | ConstrainError  # one candidate of ``Provider.complete_candidates``: its completion or its failure


DeltaCallback = Callable[[str], None]


class Provider(abc.ABC):
    """Sends messages plus a constraint; returns a ``Completion``. Sync and async share one core.

    A provider never validates the finished output (the generate loop does); a streaming provider may
    cut a stream that has already left the grammar. Output stopped by the token limit comes back with
    ``finish_reason == "length"`` (or as ``TruncatedError``).
    """

    name: str = "provider"
    model: str | None = None
    supports_sampling: ClassVar[bool] = False  # ``complete(..., sampling=)`` draws with a temperature and seed
    default_candidates: ClassVar[int] = 1  # what ``constrain.sql.ask`` draws when ``candidates`` is not given
    # the grammar goes to the model as a custom tool, whose description tells the model what to write
    # (the generate loop puts the grammar's guide there instead of in the system message)
    tool_descriptions: ClassVar[bool] = False

    @property
    def context_tokens(self) -> int | None:
        """The model's context window in tokens when the provider knows it (the embedded model), else None."""
        return None

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

    # -- several candidates for one prompt --------------------------------------------------------------
    def complete_candidates(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        samplings: Sequence[Sampling],
        *,
        max_tokens: int | None = None,
    ) -> list[Candidate]:
        """One candidate per ``samplings`` entry, in that order; a failed request is its exception.

        The default sends the requests concurrently (one thread each) with ``complete(..., sampling=)``;
        a provider that cannot sample (``supports_sampling`` False) answers only the first one.
        """
        wanted = self._samplings(samplings)

        def one(sampling: Sampling) -> Candidate:
            try:
                if not self.supports_sampling:
                    return self.complete(messages, constraint, max_tokens=max_tokens)
                return self.complete(messages, constraint, max_tokens=max_tokens, sampling=sampling)  # type: ignore[call-arg]
            except ConstrainError as exc:  # kept as this candidate's verdict
                return exc

        if len(wanted) == 1:
            return [one(wanted[0])]
        with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="candidate") as pool:
            return list(pool.map(one, wanted))

    async def acomplete_candidates(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        samplings: Sequence[Sampling],
        *,
        max_tokens: int | None = None,
    ) -> list[Candidate]:
        """The async twin of ``complete_candidates`` (requests in flight together)."""
        wanted = self._samplings(samplings)

        async def one(sampling: Sampling) -> Candidate:
            try:
                if not self.supports_sampling:
                    return await self.acomplete(messages, constraint, max_tokens=max_tokens)
                return await self.acomplete(messages, constraint, max_tokens=max_tokens, sampling=sampling)  # type: ignore[call-arg]
            except ConstrainError as exc:
                return exc

        return list(await asyncio.gather(*(one(s) for s in wanted)))

    def _samplings(self, samplings: Sequence[Sampling]) -> list[Sampling]:
        if not samplings:
            raise ValueError("complete_candidates needs at least one Sampling")
        return list(samplings) if self.supports_sampling else [samplings[0]]
