"""Grammar-constrained decoding of a GGUF model: llama-cpp-python's low-level API, masked by llguidance.

Each step reads the last logits, picks a token and feeds it back. With a grammar, only tokens the
llguidance matcher allows can be picked: greedy decoding first tries the unmasked argmax (when the
matcher accepts it, it is also the argmax of the masked logits) and computes the full mask only when
it does not; sampling always masks. EOS is in the mask only once the grammar is complete, so a model
can stop only on a finished answer. llama.cpp's own GBNF sampler is never used (4-6x slower).

llama-cpp-python is imported lazily: it is the optional ``[local]`` extra.
"""

from __future__ import annotations

import atexit
import codecs
import ctypes
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Sequence

import llguidance

from .errors import InputError, ModelError, ProviderTimeoutError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CONTEXT = 4096
DEFAULT_THREADS = 1  # 2 threads on a shared 2-core machine made decoding collapse to a few tokens/s
_PROMPT_BATCH = 512


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # the optional extra is missing
        raise ModelError(
            "the local model needs llama-cpp-python: pip install 'constrain-cfg[local]' "
            f"(import failed: {exc})"
        ) from None
    return llama_cpp


@dataclass(frozen=True)
class DecodeResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    prompt_seconds: float  # evaluating the prompt (after reusing the cached common prefix)
    decode_seconds: float  # generating the completion, masks included
    mask_seconds: float  # time spent in llguidance (full masks and token checks)
    masks_computed: int
    reused_prompt_tokens: int
    decode_cpu_seconds: float = 0.0  # process CPU time while generating: robust to a busy machine

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0


class LocalModel:
    """One loaded GGUF model with its context, chat template and llguidance tokenizer.

    Not thread-safe by itself: ``generate`` holds the model's lock for the whole decode.
    """

    def __init__(self, path: str | os.PathLike[str], *, n_ctx: int = DEFAULT_CONTEXT, threads: int = DEFAULT_THREADS) -> None:
        llama_cpp = import_llama_cpp()
        self.path = Path(path)
        self.n_ctx = n_ctx
        self.threads = threads
        self.lock = threading.Lock()
        started = time.perf_counter()
        try:
            self._llama = llama_cpp.Llama(
                model_path=os.fspath(self.path),
                n_ctx=n_ctx,
                n_batch=_PROMPT_BATCH,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{self.path}: llama.cpp could not load this GGUF model ({exc})") from None
        self.load_seconds = time.perf_counter() - started
        self._lib = llama_cpp
        self._ctx = self._llama._ctx.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama._model.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.metadata: dict[str, str] = dict(self._llama.metadata)
        self.chat_template: str | None = self.metadata.get("tokenizer.chat_template")
        self.eos_tokens = self._end_tokens()
        self._tokenizer: llguidance.LLTokenizer | None = None
        self.tokenizer_seconds = 0.0
        self._pieces: dict[int, bytes] = {}
        self._cached: list[int] = []  # tokens whose keys/values are in the context memory
        self._mask_words = (self.n_vocab + 31) // 32

    def __repr__(self) -> str:
        return f"LocalModel({str(self.path)!r}, n_ctx={self.n_ctx}, threads={self.threads})"

    # -- tokenizer, template ------------------------------------------------------------------------
    def _end_tokens(self) -> tuple[int, ...]:
        lib = self._lib
        ends = {int(lib.llama_vocab_eos(self._vocab)), int(lib.llama_vocab_eot(self._vocab))}
        return tuple(sorted(t for t in ends if 0 <= t < self.n_vocab))

    @property
    def tokenizer(self) -> llguidance.LLTokenizer:
        """The llguidance tokenizer for this model's vocabulary (built once, ~0.6 s)."""
        if self._tokenizer is None:
            from llguidance.llamacpp import lltokenizer_from_vocab

            started = time.perf_counter()
            with warnings.catch_warnings():  # one deprecation warning per vocabulary entry, from llguidance's helper
                warnings.simplefilter("ignore", DeprecationWarning)
                self._tokenizer = lltokenizer_from_vocab(self._vocab, eos_token=list(self.eos_tokens))
            self.tokenizer_seconds = time.perf_counter() - started
        return self._tokenizer

    def render(self, messages: Sequence[dict[str, str]], *, template: str | None = None) -> str:
        """The prompt text for ``messages`` in the model's own chat template (or ``template``)."""
        source = template or self.chat_template
        if not source:
            raise ModelError(
                f"{self.path}: this GGUF has no chat template (tokenizer.chat_template), so its prompt format "
                "is unknown; pass chat_template= (a Jinja template) or use an instruction-tuned model that has one"
            )
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise ModelError(f"chat template refused the messages: {message}")

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        try:
            return env.from_string(source).render(
                messages=list(messages),
                add_generation_prompt=True,
                bos_token=self._piece_text(self._lib.llama_vocab_bos(self._vocab)),
                eos_token=self._piece_text(self.eos_tokens[0]) if self.eos_tokens else "",
            )
        except TemplateError as exc:
            raise ModelError(f"{self.path}: the chat template failed to render: {exc}") from None

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        add_bos = bool(self._lib.llama_vocab_get_add_bos(self._vocab))
        bos = int(self._lib.llama_vocab_bos(self._vocab))
        tokens = self._llama.tokenize(data, add_bos=False, special=True)
        if add_bos and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens = [bos, *tokens]
        return list(tokens)

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(256)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def _piece_text(self, token: int) -> str:
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    # -- evaluation -----------------------------------------------------------------------------------
    def _eval(self, tokens: Sequence[int]) -> None:
        lib = self._lib
        for start in range(0, len(tokens), _PROMPT_BATCH):
            part = tokens[start : start + _PROMPT_BATCH]
            array = (lib.llama_token * len(part))(*part)
            rc = lib.llama_decode(self._ctx, lib.llama_batch_get_one(array, len(part)))
            if rc != 0:
                self._forget_cache()
                raise ModelError(f"llama_decode failed with code {rc} after {len(self._cached)} cached tokens")
            self._cached.extend(part)

    def _forget_cache(self) -> None:
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)
        self._cached = []

    def _load_prompt(self, tokens: list[int]) -> int:
        """Evaluate ``tokens``, reusing the longest prefix already in memory; return how many were reused."""
        common = 0
        limit = min(len(tokens) - 1, len(self._cached))  # always evaluate at least one token for fresh logits
        while common < limit and tokens[common] == self._cached[common]:
            common += 1
        if common == 0:
            self._forget_cache()
        elif common < len(self._cached):
            ok = self._lib.llama_memory_seq_rm(self._lib.llama_get_memory(self._ctx), 0, common, -1)
            if not ok:
                self._forget_cache()
                common = 0
            else:
                del self._cached[common:]
        self._eval(tokens[common:])
        return common

    def _logits(self) -> np.ndarray:
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # -- generation -------------------------------------------------------------------------------------
    def matcher(self, llg_grammar: str) -> llguidance.LLMatcher:
        """A matcher for an llguidance grammar (``LLMatcher.grammar_from_lark(...)`` etc.) over this vocab."""
        matcher = llguidance.LLMatcher(self.tokenizer, llg_grammar, log_level=0)
        if matcher.is_error():
            raise ModelError(f"llguidance refused the grammar: {matcher.get_error()}")
        return matcher

    def generate(
        self,
        prompt: str,
        matcher: llguidance.LLMatcher | None,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        on_delta: Callable[[str], None] | None = None,
        mask_every_token: bool = False,
        timeout: float | None = None,
    ) -> DecodeResult:
        """Decode from ``prompt``; with ``matcher``, every token is one the grammar allows."""
        stats = DecodeStats()
        parts: list[str] = []
        for piece in self.stream(
            prompt, matcher, max_tokens=max_tokens, temperature=temperature, seed=seed, stats=stats,
            mask_every_token=mask_every_token, timeout=timeout,
        ):
            if piece:
                parts.append(piece)
                if on_delta is not None:
                    on_delta(piece)
        return stats.result("".join(parts))

    def stream(
        self,
        prompt: str,
        matcher: llguidance.LLMatcher | None,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stats: DecodeStats | None = None,
        mask_every_token: bool = False,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield the text of each generated token (``""`` while a UTF-8 sequence is incomplete).

        The model is locked while the generator runs; closing it early releases the lock. ``stats`` is
        filled in as decoding goes (finish reason, token counts, timings). ``mask_every_token`` turns off
        the greedy shortcut (same tokens, slower: for measuring and testing the shortcut). ``timeout``
        bounds the seconds spent on the prompt and the tokens (``ProviderTimeoutError``).
        """
        import numpy as np

        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
        if temperature < 0:
            raise InputError(f"temperature must be >= 0, got {temperature}")
        stats = stats if stats is not None else DecodeStats()
        prompt_tokens = self.tokenize(prompt)
        stats.prompt_tokens = len(prompt_tokens)
        room = self.n_ctx - len(prompt_tokens)
        if room < 1:
            raise InputError(
                f"the prompt has {len(prompt_tokens)} tokens, more than the model context of {self.n_ctx}; "
                "shorten it or raise n_ctx"
            )
        limit = min(max_tokens, room)
        rng = np.random.default_rng(seed)
        bitmask = np.zeros(self._mask_words, dtype=np.int32)
        ends = set(self.eos_tokens)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        stats.finish_reason = "length"

        with self.lock:
            started = time.perf_counter()
            stats.reused_prompt_tokens = self._load_prompt(prompt_tokens)
            decode_started = time.perf_counter()
            cpu_started = time.process_time()
            stats.prompt_seconds = decode_started - started
            try:
                while stats.completion_tokens < limit:
                    if timeout is not None and time.perf_counter() - started > timeout:
                        raise ProviderTimeoutError(
                            f"local model: no complete answer within {timeout} s ({stats.completion_tokens} tokens)",
                            provider="local",
                        )
                    logits = self._logits()
                    token = -1
                    if temperature == 0.0 and not (mask_every_token and matcher is not None):
                        token = int(logits.argmax())
                        if matcher is not None:
                            t0 = time.perf_counter()
                            if matcher.try_consume_tokens([token]) != 1:
                                token = -1
                            stats.mask_seconds += time.perf_counter() - t0
                    if token < 0:
                        allowed = None
                        if matcher is not None:
                            t0 = time.perf_counter()
                            matcher.unsafe_compute_mask_ptr(bitmask.ctypes.data, bitmask.nbytes)
                            bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")[: self.n_vocab]
                            allowed = np.flatnonzero(bits)
                            stats.mask_seconds += time.perf_counter() - t0
                            stats.masks_computed += 1
                            if matcher.is_error() or allowed.size == 0:
                                raise ModelError(f"the grammar allows no next token: {matcher.get_error() or 'dead end'}")
                        token = _pick(logits, allowed, temperature, rng)
                        if matcher is not None and not matcher.consume_token(token):
                            raise ModelError(f"llguidance refused token {token} from its own mask: {matcher.get_error()}")
                    if token in ends or (matcher is None and self._lib.llama_vocab_is_eog(self._vocab, token)):
                        stats.finish_reason = "stop"
                        break
                    stats.completion_tokens += 1
                    piece = decoder.decode(self.piece(token))
                    if matcher is not None and matcher.is_stopped():
                        stats.finish_reason = "stop"  # the grammar admits nothing more: the answer is complete
                        yield piece + decoder.decode(b"", final=True)
                        break
                    yield piece
                    self._eval([token])
                else:
                    tail = decoder.decode(b"", final=True)
                    if tail:
                        yield tail
            finally:
                stats.decode_seconds = time.perf_counter() - decode_started
                stats.decode_cpu_seconds = time.process_time() - cpu_started


@dataclass
class DecodeStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length"] = "length"
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    mask_seconds: float = 0.0
    masks_computed: int = 0
    reused_prompt_tokens: int = 0
    decode_cpu_seconds: float = 0.0

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
        )


def _pick(logits: np.ndarray, allowed: np.ndarray | None, temperature: float, rng: np.random.Generator) -> int:
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


_MODELS: dict[tuple[str, int, int], LocalModel] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the models while llama_cpp is still whole: left to ``Llama.__del__`` at interpreter teardown,
    freeing calls into a half-dismantled module and prints an ignored ``TypeError`` per model."""
    with _MODELS_LOCK:
        for model in _MODELS.values():
            model._llama.close()
        _MODELS.clear()


def load_model(path: str | os.PathLike[str], *, n_ctx: int = DEFAULT_CONTEXT, threads: int = DEFAULT_THREADS) -> LocalModel:
    """The loaded model for ``path``, shared per process (with its tokenizer) per (file, context, threads)."""
    key = (os.path.realpath(path), n_ctx, threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = LocalModel(key[0], n_ctx=n_ctx, threads=threads)
        return model
