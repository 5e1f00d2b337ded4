"""llguidance over a byte vocabulary, importable without the rest of ``constrain``.

``llg_engine`` builds its tokenizer from here. Run as a script (``python -I _byte_walk.py``), this module
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


def allowed_bytes_of(mask: bytes) -> list[int]:
    bits = int.from_bytes(mask[:32], "little")
    return [b for b in range(256) if bits >> b & 1]


def _walk(matcher: llguidance.LLMatcher, rng: random.Random, max_bytes: int) -> None:
    out = bytearray()
    while len(out) < max_bytes:
        print("at", out.hex(), flush=True)
        mask = matcher.compute_bitmask()
        allowed = allowed_bytes_of(mask)
        can_stop = mask[EOS >> 3] >> (EOS & 7) & 1
        if not allowed or (can_stop and rng.random() < 0.25):
            return
        byte = rng.choice(allowed)
        if not matcher.consume_token(byte):
            return
        out.append(byte)


def main() -> None:
    job = json.loads(sys.stdin.read())
    template = llguidance.LLMatcher(byte_tokenizer(), job["grammar"], log_level=0)
    print("compiled", flush=True)
    rng = random.Random(job["seed"])
    for _ in range(job["walks"]):
        _walk(template.deep_copy(), rng, job["max_bytes"])
    print("done", flush=True)


if __name__ == "__main__":
    main()
