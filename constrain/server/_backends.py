"""Where the server's outputs come from: the ``Backend`` protocol and the random-walk backend.

A backend is handed a ``GenerationRequest`` (the conversation and the compiled grammar) and yields the
output piece by piece (one piece per token). ``RandomWalkBackend`` walks the grammar at random, for tests
and benchmarks; the embedded model plugs in the same way (``constrain.local.LocalBackend``).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from ..engines.llg_engine import EOS, allowed_tokens
from ..errors import ConstrainError
from ..grammar import Grammar
from ..providers.base import Message

__all__ = ["Backend", "GenerationRequest", "RandomWalkBackend"]


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend is asked for: the conversation, the compiled grammar (None = free text), a limit."""

    messages: tuple[Message, ...]
    grammar: Grammar | None
    max_tokens: int | None = None
    model: str | None = None


class Backend(Protocol):
    """Produces output pieces (one per token) that stay inside ``request.grammar``.

    Stop when the grammar is complete or after ``max_tokens`` pieces; the server reports truncation
    when the grammar is still incomplete at the limit. ``blocking = True`` makes the server run
    ``generate`` in a worker thread (a real model); ``False`` runs it inline (cheap backends).
    """

    name: str
    blocking: bool

    def generate(self, request: GenerationRequest) -> Iterator[str]: ...


class RandomWalkBackend:
    """Random walks over the grammar with llguidance (byte-level), deterministic per conversation.

    Each grammar gets up to ``variety`` distinct walks, computed on first use and kept; a conversation
    picks one of them by a hash of its messages, so the same ``seed`` and messages give the same output
    (a test or benchmark can recompute the answer) and a busy server does no walking at all.
    Pieces are 1–4 characters, standing in for tokens.
    """

    name = "random-walk"
    blocking = False

    def __init__(self, seed: int = 0, *, max_bytes: int = 400, variety: int = 256, free_text: str = "ok") -> None:
        self.seed = seed
        self.max_bytes = max_bytes
        self.variety = variety
        self.free_text = free_text
        self._walks: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def _digest(self, *parts: Any) -> int:
        return int.from_bytes(hashlib.sha256(json.dumps([self.seed, *parts]).encode()).digest()[:8], "big")

    def pick(self, messages: Sequence[Message]) -> int:
        return self._digest([(m.role, m.content) for m in messages]) % self.variety

    def walk(self, grammar: Grammar, index: int) -> str:
        key = (grammar.text, index)
        text = self._walks.get(key)
        if text is None:
            rng = random.Random(self._digest(grammar.text, index))
            for _ in range(100):
                data = _walk(grammar, rng, self.max_bytes)
                if data is None:
                    continue
                try:
                    text = data.decode("utf-8")
                    break
                except UnicodeDecodeError:
                    continue
            else:
                raise ConstrainError(f"random walk found no string of at most {self.max_bytes} bytes in {grammar.name}")
            with self._lock:
                self._walks[key] = text
        return text

    def text_for(self, request: GenerationRequest) -> str:
        if request.grammar is None:
            return self.free_text
        return self.walk(request.grammar, self.pick(request.messages))

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        text = self.text_for(request)
        rng = random.Random(len(text))
        i = 0
        while i < len(text):
            step = rng.randint(1, 4)
            yield text[i : i + step]
            i += step


_PRINTABLE = frozenset(range(0x20, 0x7F))
_WORDLIKE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _")


def _walk(grammar: Grammar, rng: random.Random, max_bytes: int) -> bytes | None:
    """One random string of the grammar, biased to finish: printable ASCII first, and the longer it
    gets the likelier it stops or takes a punctuation byte (which closes strings, numbers, lists)."""
    matcher = grammar._llg().fresh()
    out = bytearray()
    while len(out) < max_bytes:
        allowed = allowed_tokens(matcher)
        if not allowed:
            return None
        pressure = min(0.95, len(out) / (max_bytes / 4))
        if EOS in allowed and (len(allowed) == 1 or rng.random() < 0.25 + 0.7 * pressure):
            return bytes(out)
        choices = [t for t in allowed if t != EOS]
        printable = [t for t in choices if t in _PRINTABLE] or choices
        closing = [t for t in printable if t not in _WORDLIKE]
        pool = closing if closing and rng.random() < pressure else printable
        token = rng.choice(pool)
        if not matcher.consume_token(token):
            return None
        out.append(token)
    return None
