"""One continuation being decoded: the token it picks under the grammar's mask, and what it wrote.

``DecodingSequence.pick`` chooses the next token from the model's logits. With a grammar, only tokens the
llguidance matcher allows can be picked: greedy decoding first tries the unmasked argmax (when the matcher
accepts it, it is also the argmax of the masked logits) and computes the full mask only when it does not;
sampling draws from the whole distribution first and computes the mask only when the matcher refuses the
draw (the result is exactly a draw from the masked distribution). EOS is in the mask only once the grammar
is complete, so a sequence can stop only on a finished answer. ``accept`` records the token's text, the
finish reason and the statistics that become a ``DecodeResult``.

The model is seen through ``Vocabulary``, so this module does not depend on ``LocalModel``.
numpy is imported where it is used: it comes with llama-cpp-python, the optional ``[local]`` extra.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import llguidance

from ..errors import ModelError
from ._repetition import RepetitionGuard

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DecodeResult", "DecodeStats", "DecodingSequence", "Vocabulary", "log_probability", "pick_token"]


class Vocabulary(Protocol):
    """What a sequence needs of its model: the vocabulary's size, end tokens and token texts."""

    n_vocab: int
    eos_tokens: tuple[int, ...]

    def piece(self, token: int) -> bytes: ...

    def is_end_of_generation(self, token: int) -> bool: ...


@dataclass(frozen=True)
class DecodeResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length", "repetition"]
    prompt_seconds: float  # evaluating the prompt (after reusing the cached common prefix)
    decode_seconds: float  # generating the completion, masks included
    mask_seconds: float  # time spent in llguidance (full masks and token checks)
    masks_computed: int
    reused_prompt_tokens: int
    decode_cpu_seconds: float = 0.0  # process CPU time while generating: robust to a busy machine
    logprob: float = 0.0  # log-probability of the tokens under the model (temperature 1, unmasked)
    repeated: str | None = None  # finish_reason "repetition": the span the output ended writing over and over

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


@dataclass
class DecodeStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length", "repetition"] = "length"
    repeated: str | None = None
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    mask_seconds: float = 0.0
    masks_computed: int = 0
    reused_prompt_tokens: int = 0
    decode_cpu_seconds: float = 0.0
    logprob: float = 0.0

    def result(self, text: str) -> DecodeResult:
        return DecodeResult(
            text=text,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            prompt_seconds=self.prompt_seconds,
            decode_seconds=self.decode_seconds,
            mask_seconds=self.mask_seconds,
            masks_computed=self.masks_computed,
            reused_prompt_tokens=self.reused_prompt_tokens,
            decode_cpu_seconds=self.decode_cpu_seconds,
            logprob=self.logprob,
            repeated=self.repeated,
        )


class DecodingSequence:
    """One continuation being decoded: its matcher, sampler state, text and statistics."""

    def __init__(
        self,
        model: Vocabulary,
        matcher: llguidance.LLMatcher | None,
        temperature: float,
        seed: int | None,
        limit: int,
        stats: DecodeStats | None,
        mask_every_token: bool,
    ) -> None:
        import numpy as np

        self.model, self.matcher, self.temperature, self.limit = model, matcher, temperature, limit
        self.rng = np.random.default_rng(seed)
        self.bitmask = np.zeros((model.n_vocab + 31) // 32, dtype=np.int32)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.stats = stats if stats is not None else DecodeStats()
        self.stats.finish_reason = "length"
        self.shortcut = temperature == 0.0 and not (mask_every_token and matcher is not None)
        self.parts: list[str] = []
        self.guard = RepetitionGuard()
        self.done = False
        self._clock = (0.0, 0.0)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def begin(self, started: float) -> None:
        now = time.perf_counter()
        self.stats.prompt_seconds = now - started
        self._clock = (now, time.process_time())

    def end(self) -> None:
        self.stats.decode_seconds = time.perf_counter() - self._clock[0]
        self.stats.decode_cpu_seconds = time.process_time() - self._clock[1]

    def pick(self, logits: np.ndarray) -> int:
        """The next token (consumed by the matcher): the unmasked choice when the grammar takes it, else a
        choice among the tokens the full mask allows."""
        matcher, stats = self.matcher, self.stats
        token = -1
        if self.shortcut or (self.temperature > 0 and matcher is not None):
            token = pick_token(logits, None, self.temperature, self.rng)
            if matcher is not None:
                t0 = time.perf_counter()
                if matcher.try_consume_tokens([token]) != 1:
                    token = -1
                stats.mask_seconds += time.perf_counter() - t0
        if token < 0:
            allowed = None
            if matcher is not None:
                import numpy as np

                t0 = time.perf_counter()
                matcher.unsafe_compute_mask_ptr(self.bitmask.ctypes.data, self.bitmask.nbytes)
                bits = np.unpackbits(self.bitmask.view(np.uint8), bitorder="little")[: self.model.n_vocab]
                allowed = np.flatnonzero(bits)
                stats.mask_seconds += time.perf_counter() - t0
                stats.masks_computed += 1
                if matcher.is_error() or allowed.size == 0:
                    raise ModelError(f"the grammar allows no next token: {matcher.get_error() or 'dead end'}")
            token = pick_token(logits, allowed, self.temperature, self.rng)
            if matcher is not None and not matcher.consume_token(token):
                raise ModelError(f"llguidance refused token {token} from its own mask: {matcher.get_error()}")
        stats.logprob += log_probability(logits, token)
        return token

    def accept(self, token: int) -> str:
        """Record ``token`` (already consumed by the matcher); return its text. Sets ``done`` when the
        sequence ends: an end token, a grammar that admits nothing more, or the token limit."""
        model, stats = self.model, self.stats
        if token in model.eos_tokens or (self.matcher is None and model.is_end_of_generation(token)):
            stats.finish_reason, self.done = "stop", True
            return self._flush()
        stats.completion_tokens += 1
        piece = self.decoder.decode(model.piece(token))
        if self.matcher is not None and self.matcher.is_stopped():
            stats.finish_reason, self.done = "stop", True  # the grammar admits nothing more: the answer is complete
            piece += self.decoder.decode(b"", final=True)
        elif stats.completion_tokens >= self.limit:
            self.done = True
            piece += self.decoder.decode(b"", final=True)
        if piece:
            self.parts.append(piece)
            if self.matcher is not None and not self.done and self.guard.feed(piece):
                stats.finish_reason, stats.repeated, self.done = "repetition", self.guard.repeated, True
        return piece

    def _flush(self) -> str:
        tail = self.decoder.decode(b"", final=True)
        if tail:
            self.parts.append(tail)
        return tail



def log_probability(logits: np.ndarray, token: int) -> float:
    """log p(token) under the model's own distribution (temperature 1, no mask)."""
    import numpy as np

    top = float(logits.max())
    return float(logits[token]) - top - float(np.log(np.exp(logits.astype(np.float64) - top).sum()))


def pick_token(logits: np.ndarray, allowed: np.ndarray | None, temperature: float, rng: np.random.Generator) -> int:
    import numpy as np

    candidates = logits if allowed is None else logits[allowed]
    if temperature == 0.0:
        index = int(candidates.argmax())
    else:
        scaled = (candidates.astype(np.float64) - float(candidates.max())) / temperature
        probs = np.exp(scaled)
        probs /= probs.sum()
        index = int(rng.choice(len(probs), p=probs))
    return index if allowed is None else int(allowed[index])
