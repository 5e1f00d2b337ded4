"""llguidance with a byte-level tokenizer: exact byte offsets, no model needed.

A grammar is compiled once into a template matcher; every check works on a ``deep_copy`` of it.
"""

from __future__ import annotations

import functools
import json
import queue
import random
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Sequence

import llguidance

from . import lark_engine
from ._byte_walk import EOS, byte_tokenizer, random_walk

_VOCAB = 257


def lark_to_llg(text: str) -> str:
    return llguidance.LLMatcher.grammar_from_lark(text)


def validate_lark(text: str) -> tuple[str, list[str]]:
    """Return (error message or "", warnings) for a Lark grammar, as OpenAI's server would judge it."""
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(lark_to_llg(text))
    if is_error:
        return (messages[0] if messages else "invalid grammar"), []
    return "", list(messages)


@functools.lru_cache(maxsize=256)
def hang_of(lark_text: str, seconds: float = 5.0) -> bytes | None:
    """``find_hang`` once per grammar text (for servers and decoders that see the same grammars again); a
    grammar found safe is remembered in the parser cache folder too, so a new process skips the walks
    (0.1-0.2 s of a child process)."""
    marker = lark_engine.cache_file(f"{llguidance.__version__}\0{seconds}\0{lark_text}", ".no-hang")
    if marker is not None and marker.is_file():
        return None
    hang = find_hang(lark_text, seconds=seconds)
    if hang is None and marker is not None:
        try:
            marker.touch()
        except OSError:
            pass  # a read-only cache: walk again next time
    return hang


def find_hang(lark_text: str, *, seconds: float = 5.0, walks: int = 8, max_bytes: int = 64, seed: int = 0) -> bytes | None:
    """The prefix after which llguidance did not finish computing the next token mask within ``seconds``
    on random walks of the grammar, or None when every walk finished.

    The walks run in a child process that is killed on a hang (llguidance 1.9 can spin forever in one
    mask computation, e.g. on ``start: A B / A: /a+/ / B: "a"``). Compiling is not timed.
    """
    from . import _byte_walk

    child = subprocess.Popen(
        [sys.executable, "-I", _byte_walk.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    lines: queue.Queue[bytes | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    assert child.stdin is not None
    job = {"grammar": lark_to_llg(lark_text), "walks": walks, "max_bytes": max_bytes, "seed": seed}
    child.stdin.write(json.dumps(job).encode())
    child.stdin.close()
    prefix, compiled = b"", False
    try:
        while True:
            try:
                line = lines.get(timeout=seconds if compiled else max(seconds, 300.0))
            except queue.Empty:
                return prefix
            if line is None:
                return None
            kind, _, payload = line.decode().strip().partition(" ")
            compiled = compiled or kind == "compiled"
            if kind == "at":
                prefix = bytes.fromhex(payload)
    finally:
        child.kill()
        child.wait()


@dataclass(frozen=True)
class MatchResult:
    ok: bool
    offset: int  # bytes accepted before the failure (== len(data) when ok or incomplete)
    complete: bool  # the whole input was consumed but the grammar wanted more
    expected: tuple[str, ...]
    message: str


class Matcher:
    """A compiled llguidance matcher over bytes."""

    def __init__(self, lark_text: str) -> None:
        self._template = llguidance.LLMatcher(byte_tokenizer(), lark_to_llg(lark_text), log_level=0)
        if self._template.is_error():
            raise ValueError(self._template.get_error())

    def fresh(self) -> llguidance.LLMatcher:
        return self._template.deep_copy()

    def match(self, data: bytes) -> MatchResult:
        tokens = list(data)
        # the common (valid) path: one call checks every byte and then the end of input (EOS), without
        # committing the matcher's state; only a refused text is walked again to locate the failure
        if self.fresh().validate_tokens(tokens + [EOS]) == len(tokens) + 1:
            return MatchResult(True, len(tokens), True, (), "")
        m = self.fresh()
        if m.consume_tokens(tokens):
            if m.is_accepting():  # pragma: no cover - the fast path above accepted it already
                return MatchResult(True, len(tokens), True, (), "")
            return MatchResult(False, len(tokens), True, allowed_bytes(m), "unexpected end of input")
        m = self.fresh()  # refused somewhere: find the first refused byte and what was allowed there
        accepted = m.validate_tokens(tokens)
        m.consume_tokens(tokens[:accepted])
        return MatchResult(False, accepted, accepted == len(tokens), allowed_bytes(m), "unexpected byte")

    def prefix_ok(self, data: bytes) -> int:
        """How many leading bytes of ``data`` the grammar admits as a prefix."""
        return self.fresh().validate_tokens(list(data))

    def sample(self, rng: random.Random, max_bytes: int = 400, stop_weight: float = 0.25) -> bytes | None:
        """A random walk: pick uniformly among allowed bytes, stopping at EOS. None if it ran too long."""
        return random_walk(self.fresh(), rng, max_bytes, stop_weight)


def allowed_tokens(m: llguidance.LLMatcher) -> list[int]:
    mask = int.from_bytes(m.compute_bitmask(), "little")
    return [t for t in range(_VOCAB) if mask >> t & 1]


def allowed_bytes(m: llguidance.LLMatcher) -> tuple[str, ...]:
    return describe_bytes(allowed_tokens(m))


def describe_bytes(tokens: Sequence[int]) -> tuple[str, ...]:
    """Render allowed byte values compactly: runs become ranges, EOS becomes <end>."""
    out: list[str] = []
    bytes_only = sorted(t for t in tokens if t != EOS)
    i = 0
    while i < len(bytes_only):
        j = i
        while j + 1 < len(bytes_only) and bytes_only[j + 1] == bytes_only[j] + 1:
            j += 1
        lo, hi = bytes_only[i], bytes_only[j]
        out.append(_byte_repr(lo) if lo == hi else f"{_byte_repr(lo)}..{_byte_repr(hi)}")
        i = j + 1
    if EOS in tokens:
        out.append("<end>")
    return tuple(out)


def _byte_repr(b: int) -> str:
    if 0x21 <= b < 0x7F:
        return repr(chr(b))
    return f"0x{b:02x}"
