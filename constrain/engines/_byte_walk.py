"""llguidance over a byte vocabulary, importable without the rest of ``constrain``.

``llg_engine`` takes its tokenizer and random walk from here. Run as a script (``python -I _byte_walk.py``), this module
is the child process of ``llg_engine.find_hang``: it reads ``{"grammar", "walks", "max_bytes", "seed"}``
as JSON on stdin, compiles the grammar, prints ``compiled``, then random-walks it, printing
``at <hex prefix>`` before each token mask and ``done`` at the end. llguidance can loop forever inside
one mask computation (the call releases the GIL and never returns), so only a separate process that
the parent can kill makes that observable without leaving a spinning thread behind.
"""

from __future__ import annotations

import functools
import json
import random
import sys
from typing import Callable

import llguidance

EOS = 256


class ByteVocabulary:
    """256 single-byte tokens plus one EOS token, in the shape ``TokenizerWrapper`` reads."""

    def __init__(self) -> None:
        self.tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        self.eos_token_id = EOS
        self.bos_token_id = None
        self.special_token_ids = [EOS]

    def __call__(self, data: bytes | str) -> list[int]:
        return list(data.encode("utf-8") if isinstance(data, str) else data)


@functools.lru_cache(maxsize=1)
def byte_tokenizer() -> llguidance.LLTokenizer:
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(ByteVocabulary()))


_BITS_OF = tuple(tuple(bit for bit in range(8) if value >> bit & 1) for value in range(256))


def _count_bytes(mask: bytes) -> int:
    return int.from_bytes(mask[:32], "little").bit_count()


def _nth_allowed_byte(mask: bytes, n: int) -> int:
    """The ``n``-th (0-based) byte value whose bit is set in an llguidance token mask."""
    for index in range(32):
        bits = _BITS_OF[mask[index]]
        if n < len(bits):
            return index * 8 + bits[n]
        n -= len(bits)
    raise ValueError("fewer allowed bytes than asked for")


def random_walk(
    matcher: llguidance.LLMatcher, rng: random.Random, max_bytes: int = 400, stop_weight: float = 0.25,
    before_mask: Callable[[bytes], None] | None = None,
) -> bytes | None:
    """A random walk: pick uniformly among allowed bytes, stopping at EOS. None if it ran too long.
    ``before_mask(prefix)`` is called before each token mask is computed."""
    out = bytearray()
    while len(out) < max_bytes:
        if before_mask is not None:
            before_mask(bytes(out))
        mask = matcher.compute_bitmask()
        can_stop = mask[EOS >> 3] >> (EOS & 7) & 1
        allowed = _count_bytes(mask)
        if not allowed:
            return bytes(out) if can_stop else None
        if can_stop and rng.random() < stop_weight:
            return bytes(out)
        byte = _nth_allowed_byte(mask, rng.randrange(allowed))
        if not matcher.consume_token(byte):
            return None
        out.append(byte)
    return None


def main() -> None:
    job = json.loads(sys.stdin.read())
    template = llguidance.LLMatcher(byte_tokenizer(), job["grammar"], log_level=0)
    print("compiled", flush=True)
    rng = random.Random(job["seed"])
    for _ in range(job["walks"]):
        random_walk(template.deep_copy(), rng, job["max_bytes"], before_mask=lambda prefix: print("at", prefix.hex(), flush=True))
    print("done", flush=True)


if __name__ == "__main__":
    main()
