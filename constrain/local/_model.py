"""A loaded GGUF model, decoded under a grammar: llama-cpp-python's low-level API, masked by llguidance.

Each step reads the last logits, lets a ``DecodingSequence`` pick a token under the grammar's mask
(``_sequence``) and feeds it back. llama.cpp's own GBNF sampler is never used (4-6x slower). The state of
a prompt's shared prefix is kept in the ``PrefixCache`` so a later prompt with that prefix starts there.

``generate_candidates`` decodes K continuations of one prompt together: the prompt is evaluated once in
sequence 0, its keys/values are shared with sequences 1..K-1 (``llama_memory_seq_cp`` in a unified
KV cache), and each step decodes one token of every live sequence in one batch.

llama-cpp-python is imported lazily: it is the optional ``[local]`` extra.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import llguidance

from ..errors import InputError, ModelError, ProviderTimeoutError
from ._prefix_cache import PrefixCache
from ._sequence import DecodeResult, DecodeStats, DecodingSequence
from ._threads import ThreadTuner

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CONTEXT = 4096
DEFAULT_THREADS = 0  # decoding threads chosen by measurement (``_threads``); N: always N
# Earley items one mask step may build (llguidance's default is 50,000): a cushion for users' grammars.
# The packaged ones stay within the default, as hosted engines and vLLM run it (tests/test_sql_masks.py)
STEP_MAX_ITEMS = 1_000_000
MAX_SEQUENCES = 8  # parallel sequences of one context: the most candidates decoded together
_FEW_TOKENS = 64
_PROMPT_BATCH = 1024  # bench/prompt_eval.py: 1.13x the prompt tokens/s of 512 on a 2-core CPU, 1.4x of 256


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), which prompt evaluation uses."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " amx_int8" in line for line in cpuinfo)
    except OSError:  # not Linux
        return False


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # the optional extra is missing
        raise ModelError(
            "the local model needs llama-cpp-python: pip install 'constrain-cfg[local]' "
            f"(import failed: {exc})"
        ) from None
    return llama_cpp


class LocalModel:
    """One loaded GGUF model with its context, chat template and llguidance tokenizer.

    Not thread-safe by itself: ``generate`` holds the model's lock for the whole decode.
    """

    def __init__(self, path: str | os.PathLike[str], *, n_ctx: int = DEFAULT_CONTEXT, threads: int = DEFAULT_THREADS) -> None:
        if threads < 0:
            raise InputError(f"threads must be >= 0 (0: chosen by measurement), got {threads}")
        llama_cpp = import_llama_cpp()
        self.path = Path(path)
        self.n_ctx = n_ctx
        self.threads = threads
        self.lock = threading.Lock()
        started = time.perf_counter()
        self.batch_threads = available_cores()
        from llama_cpp._logger import set_verbose
        from llama_cpp._utils import suppress_stdout_stderr  # llama.cpp logs on the C streams while loading

        set_verbose(False)  # llama.cpp's log callback then prints errors only (what Llama(verbose=False) sets)

        model_params = llama_cpp.llama_model_default_params()
        # ggml's AMX matrix kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) on Q4_K weights on CPUs
        # with AMX (seen on a Xeon with amx_int8): keep the weights in plain CPU buffers there
        model_params.use_extra_bufts = not _cpu_has_amx()
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        with suppress_stdout_stderr(disable=False):
            self._model = llama_cpp.llama_model_load_from_file(os.fspath(self.path).encode(), model_params)
        if not self._model:
            raise ModelError(f"{self.path}: llama.cpp could not load this GGUF model")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = _PROMPT_BATCH
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True
        params.n_threads = threads or 1  # set again before every decode: _set_threads
        params.n_threads_batch = self.batch_threads
        # flash attention stays on (llama.cpp's auto): off, one token decodes 1.44x faster with a schema-long
        # context (bench/prompt_eval.py), but K candidates decoded in one batch no longer give the greedy
        # answer's exact tokens (tests/test_sql_candidates_local.py fails), which the vote relies on
        params.no_perf = True
        context = llama_cpp.llama_init_from_model(self._model, params)
        if not context:
            llama_cpp.llama_model_free(self._model)
            raise ModelError(f"{self.path}: llama.cpp could not create a context of {n_ctx} tokens")
        self.load_seconds = time.perf_counter() - started
        self._lib = llama_cpp
        self._ctx = context
        self._batch = llama_cpp.llama_batch_init(MAX_SEQUENCES, 0, 1)
        self._threads_now: int | None = None  # what llama_set_n_threads last set (both counts)
        self.tuner = ThreadTuner(self.batch_threads)
        self.prompt_tokens_evaluated = 0  # every prompt token ever evaluated (after reusing cached prefixes)
        self.prompt_tokens_restored = 0  # prompt tokens whose state came from the prefix cache
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.metadata: dict[str, str] = self._read_metadata()
        self.chat_template: str | None = self.metadata.get("tokenizer.chat_template")
        self.eos_tokens = self._end_tokens()
        self._tokenizer: llguidance.LLTokenizer | BaseException | None = None
        self.tokenizer_seconds = 0.0
        self._pieces: dict[int, bytes] = {}
        self._cached: list[int] = []  # tokens whose keys/values are in the context memory
        self.prefix_cache = PrefixCache.from_env(self.path, {
            "llama_cpp_python": getattr(llama_cpp, "__version__", "?"),
            "system": llama_cpp.llama_print_system_info().decode("utf-8", "replace"),
            "type_k": params.type_k, "type_v": params.type_v, "flash_attn": params.flash_attn_type,
        })
        # llguidance's tokenizer is built on the other core while the caller goes on (llguidance releases
        # the GIL): a prompt is tokenized, a schema described and a grammar compiled before it is needed
        self._tokenizer_build = threading.Thread(target=self._build_tokenizer, name="constrain-tokenizer", daemon=True)
        self._tokenizer_build.start()

    def __repr__(self) -> str:
        return f"LocalModel({str(self.path)!r}, n_ctx={self.n_ctx}, threads={self.threads})"

    def close(self) -> None:
        """Free the context, then the model (idempotent)."""
        self._tokenizer_build.join()  # it reads the vocabulary
        if self._ctx is not None:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = None
            self._lib.llama_model_free(self._model)

    # -- tokenizer, template ------------------------------------------------------------------------
    def _read_metadata(self) -> dict[str, str]:
        """The GGUF's key/value metadata as strings (the chat template is one of them)."""
        lib, metadata = self._lib, {}
        for index in range(int(lib.llama_model_meta_count(self._model))):
            key, value = (self._meta_string(read, index) for read in (lib.llama_model_meta_key_by_index, lib.llama_model_meta_val_str_by_index))
            metadata[key] = value
        return metadata

    def _meta_string(self, read: Callable[..., int], index: int) -> str:
        buf = ctypes.create_string_buffer(1024)
        n = read(self._model, index, buf, len(buf))
        if n >= len(buf):  # the length it needs, without the terminating NUL
            buf = ctypes.create_string_buffer(n + 1)
            n = read(self._model, index, buf, len(buf))
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    def _end_tokens(self) -> tuple[int, ...]:
        lib = self._lib
        ends = {int(lib.llama_vocab_eos(self._vocab)), int(lib.llama_vocab_eot(self._vocab))}
        return tuple(sorted(t for t in ends if 0 <= t < self.n_vocab))

    @property
    def tokenizer(self) -> llguidance.LLTokenizer:
        """The llguidance tokenizer for this model's vocabulary (built once per process, ~0.4 s, in a thread
        started by ``__init__``, from the vocabulary's pieces, which are read once per model file and kept
        beside the prefix cache)."""
        self._tokenizer_build.join()
        if isinstance(self._tokenizer, BaseException):
            raise self._tokenizer
        assert self._tokenizer is not None
        return self._tokenizer

    def _build_tokenizer(self) -> None:
        started = time.perf_counter()
        try:
            pieces = self.prefix_cache.vocabulary()
            if pieces is None or len(pieces) != self.n_vocab:
                pieces = self._vocabulary_pieces()
                self.prefix_cache.keep_vocabulary(pieces)
            tokenize = ctypes.cast(self._lib.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
            self._tokenizer = llguidance.LLTokenizer.from_llamacpp(  # what llguidance.llamacpp's helper calls
                tokens=pieces, vocab_ptr=self._vocab, tokenize_fptr=tokenize, eos_token=list(self.eos_tokens),
            )
        except Exception as exc:  # raised where the tokenizer is asked for
            self._tokenizer = ModelError(f"{self.path}: llguidance could not build a tokenizer for this vocabulary ({exc})")
        self.tokenizer_seconds = time.perf_counter() - started

    def _vocabulary_pieces(self) -> list[bytes]:
        """Every token's bytes, as llguidance wants them: a control token (or a user-defined one written
        like ``<...>``) prefixed with 0xff so that no text can spell it."""
        lib, vocab = self._lib, self._vocab
        buf = ctypes.create_string_buffer(16 * 1024)
        control, user_defined = lib.LLAMA_TOKEN_ATTR_CONTROL, lib.LLAMA_TOKEN_ATTR_USER_DEFINED
        pieces = []
        for token in range(self.n_vocab):
            n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
            if n < 0:
                raise ModelError(f"{self.path}: token {token} is longer than {len(buf)} bytes")
            piece = buf.raw[:n]
            attr = lib.llama_vocab_get_attr(vocab, token)
            if attr & control or (attr & user_defined and piece.startswith(b"<") and piece.endswith(b">")):
                piece = b"\xff" + piece
            pieces.append(piece)
        return pieces

    def render(self, messages: Sequence[dict[str, str]], *, template: str | None = None) -> str:
        """The prompt text for ``messages`` in the model's own chat template (or ``template``)."""
        return self._render(messages, template, generation_prompt=True)

    def shared_prefix(self, messages: Sequence[dict[str, str]], *, template: str | None = None) -> str:
        """The start of ``render(messages)`` that other requests are likely to share: everything before
        the last user message (instructions, a schema, worked examples); "" when there is none."""
        last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
        if last == 0:
            return ""
        try:
            return self._render(messages[:last], template, generation_prompt=False)
        except ModelError:  # a template that refuses a conversation not ending with a user message
            return ""

    def _render(self, messages: Sequence[dict[str, str]], template: str | None, *, generation_prompt: bool) -> str:
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
                add_generation_prompt=generation_prompt,
                bos_token=self._piece_text(self._lib.llama_vocab_bos(self._vocab)),
                eos_token=self._piece_text(self.eos_tokens[0]) if self.eos_tokens else "",
            )
        except TemplateError as exc:
            raise ModelError(f"{self.path}: the chat template failed to render: {exc}") from None

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        add_bos = bool(self._lib.llama_vocab_get_add_bos(self._vocab))
        bos = int(self._lib.llama_vocab_bos(self._vocab))
        room = len(data) + 8
        array = (self._lib.llama_token * room)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), array, room, False, True)
        if n < 0:  # more tokens than bytes (never for a byte-level BPE, but a vocabulary may differ)
            room = -n
            array = (self._lib.llama_token * room)()
            n = self._lib.llama_tokenize(self._vocab, data, len(data), array, room, False, True)
        tokens = array[:n]
        if add_bos and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens = [bos, *tokens]
        return list(tokens)

    def is_end_of_generation(self, token: int) -> bool:
        """True for any token that ends a turn in this vocabulary (EOS, EOT and the like)."""
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

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
    def _set_threads(self, threads: int) -> None:
        if self._threads_now != threads:
            self._lib.llama_set_n_threads(self._ctx, threads, threads)
            self._threads_now = threads

    def _decode(self, batch: Any, rows: int, *, step: bool) -> int:
        """``llama_decode`` of a small batch (a decoding ``step``, else a short prompt) on the threads set
        (``threads``) or chosen by the tuner (see ``_threads``), which times the steps; its return code."""
        threads = self.threads or (self.tuner.choose(rows) if step else self.tuner.preferred(rows))
        self._set_threads(threads)
        started = time.perf_counter()
        rc = int(self._lib.llama_decode(self._ctx, batch))
        if step and not self.threads:
            self.tuner.record(threads, rows, time.perf_counter() - started)
        return rc

    def _eval(self, tokens: Sequence[int]) -> None:
        lib = self._lib
        few = len(tokens) < _FEW_TOKENS  # a question after a cached prefix, a decoded token: tuned threads
        if not few:
            self._set_threads(self.batch_threads)  # a prompt: every core this process may use
        for start in range(0, len(tokens), _PROMPT_BATCH):
            part = tokens[start : start + _PROMPT_BATCH]
            array = (lib.llama_token * len(part))(*part)
            batch = lib.llama_batch_get_one(array, len(part))
            rc = self._decode(batch, len(part), step=len(part) == 1) if few else lib.llama_decode(self._ctx, batch)
            if rc != 0:
                self._forget_cache()
                raise ModelError(f"llama_decode failed with code {rc} after {len(self._cached)} cached tokens")
            self._cached.extend(part)

    def _forget_cache(self) -> None:
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)
        self._cached = []

    def _load_prompt(self, tokens: list[int], prefix: int = 0) -> int:
        """Evaluate ``tokens``, reusing the longest prefix already in memory, or the saved state of the first
        ``prefix`` tokens when that is longer; return how many tokens were reused.

        The first ``prefix`` tokens are evaluated on their own and their state saved, so a prompt is split
        into the same batches whether its prefix is restored or evaluated: the same logits either way."""
        common = 0
        limit = min(len(tokens) - 1, len(self._cached))  # always evaluate at least one token for fresh logits
        while common < limit and tokens[common] == self._cached[common]:
            common += 1
        prefix = min(prefix, len(tokens) - 1)
        if prefix > common and self._restore(tokens[:prefix]):
            common = prefix
        elif common == 0:
            self._forget_cache()
        elif common < len(self._cached):
            ok = self._lib.llama_memory_seq_rm(self._lib.llama_get_memory(self._ctx), 0, common, -1)
            if not ok:
                self._forget_cache()
                common = 0
            else:
                del self._cached[common:]
        if prefix > common:
            self._eval(tokens[common:prefix])
            self._save(tokens[:prefix])
            self._eval(tokens[prefix:])
        else:
            self._eval(tokens[common:])
        self.prompt_tokens_evaluated += len(tokens) - common
        return common

    def _prefix_length(self, prompt: str, prompt_tokens: list[int], prefix: str) -> int:
        """How many of ``prompt_tokens`` are the tokens of ``prefix`` (the start of ``prompt``)."""
        if not prefix or not prompt.startswith(prefix):
            return 0
        n = 0
        for a, b in zip(self.tokenize(prefix), prompt_tokens):
            if a != b:
                break
            n += 1
        return n

    def _restore(self, tokens: list[int]) -> bool:
        """Put the saved state of ``tokens`` into sequence 0 (emptying the context); False on a miss."""
        if not self.prefix_cache.enabled:
            return False
        state = self.prefix_cache.get(tokens)
        if state is None:
            return False
        self._forget_cache()
        source = ctypes.cast(ctypes.c_char_p(state), ctypes.POINTER(ctypes.c_uint8))
        if self._lib.llama_state_seq_set_data(self._ctx, source, len(state), 0) == 0:
            self._forget_cache()
            self.prefix_cache.discard(tokens)
            return False
        self._cached = list(tokens)
        self.prompt_tokens_restored += len(tokens)
        return True

    def _save(self, tokens: list[int]) -> None:
        """Keep the state of sequence 0, which holds exactly ``tokens``."""
        cache = self.prefix_cache
        if not cache.enabled or len(tokens) < cache.min_tokens:
            return
        size = self._lib.llama_state_seq_get_size(self._ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = self._lib.llama_state_seq_get_data(self._ctx, buffer, size, 0)
        if written:
            cache.put(tokens, bytes(memoryview(buffer)[:written]))

    def _logits(self, index: int = -1) -> np.ndarray:
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # -- generation -------------------------------------------------------------------------------------
    def matcher(self, llg_grammar: str) -> llguidance.LLMatcher:
        """A matcher for an llguidance grammar (``LLMatcher.grammar_from_lark(...)`` etc.) over this vocab."""
        matcher = llguidance.LLMatcher(self.tokenizer, llg_grammar, log_level=0,
                                       limits=llguidance.LLParserLimits(step_max_items=STEP_MAX_ITEMS))
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
        prefix: str = "",
    ) -> DecodeResult:
        """Decode from ``prompt``; with ``matcher``, every token is one the grammar allows. ``prefix`` (the
        start of ``prompt`` that other prompts share, see ``shared_prefix``) has its state cached."""
        stats = DecodeStats()
        parts: list[str] = []
        for piece in self.stream(
            prompt, matcher, max_tokens=max_tokens, temperature=temperature, seed=seed, stats=stats,
            mask_every_token=mask_every_token, timeout=timeout, prefix=prefix,
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
        prefix: str = "",
    ) -> Iterator[str]:
        """Yield the text of each generated token (``""`` while a UTF-8 sequence is incomplete).

        The model is locked while the generator runs; closing it early releases the lock. ``stats`` is
        filled in as decoding goes (finish reason, token counts, timings). ``mask_every_token`` turns off
        the greedy shortcut (same tokens, slower: for measuring and testing the shortcut). ``timeout``
        bounds the seconds spent on the prompt and the tokens (``ProviderTimeoutError``). ``prefix``: as for
        ``generate``.
        """
        prompt_tokens, limit = self._prepare(prompt, max_tokens, temperature)
        prefix_tokens = self._prefix_length(prompt, prompt_tokens, prefix)
        seq = DecodingSequence(self, matcher, temperature, seed, limit, stats, mask_every_token)
        seq.stats.prompt_tokens = len(prompt_tokens)
        with self.lock:
            started = time.perf_counter()
            seq.stats.reused_prompt_tokens = self._load_prompt(prompt_tokens, prefix_tokens)
            seq.begin(started)
            try:
                while not seq.done:
                    _check_deadline(started, timeout, seq.stats.completion_tokens)
                    token = seq.pick(self._logits())
                    counted = seq.stats.completion_tokens
                    piece = seq.accept(token)
                    if piece or seq.stats.completion_tokens > counted:  # one piece per token ("" mid-UTF-8)
                        yield piece
                    if not seq.done:
                        self._eval([token])
            finally:
                seq.end()

    def generate_candidates(
        self,
        prompt: str,
        matchers: Sequence[llguidance.LLMatcher | None],
        samplings: Sequence[tuple[float, int | None]],
        *,
        max_tokens: int,
        timeout: float | None = None,
        prefix: str = "",
    ) -> list[DecodeResult | ModelError | ProviderTimeoutError]:
        """K continuations of ``prompt`` decoded together, one per ``(temperature, seed)`` of ``samplings``
        (each with its own matcher): the prompt is evaluated once and its KV cache shared by the K
        sequences; each step decodes the next token of every live sequence in one batch. A sequence
        that fails (a grammar dead end, the ``timeout``) is its error; the others go on. ``prefix``: as for
        ``generate``."""
        if not 1 <= len(samplings) <= MAX_SEQUENCES or len(matchers) != len(samplings):
            raise InputError(f"generate_candidates takes 1 to {MAX_SEQUENCES} samplings, one matcher each")
        import numpy as np

        lib = self._lib
        prompt_tokens, limit = self._prepare(prompt, max_tokens, max(t for t, _ in samplings))
        prefix_tokens = self._prefix_length(prompt, prompt_tokens, prefix)
        limit = min(limit, (self.n_ctx - len(prompt_tokens)) // len(samplings))  # the sequences share the context
        if limit < 1:
            raise InputError(f"no room in the context of {self.n_ctx} tokens for {len(samplings)} candidates")
        seqs = [DecodingSequence(self, m, t, seed, limit, None, False) for m, (t, seed) in zip(matchers, samplings)]
        results: list[DecodeResult | ModelError | ProviderTimeoutError | None] = [None] * len(seqs)
        with self.lock:
            memory = lib.llama_get_memory(self._ctx)
            started = time.perf_counter()
            reused = self._load_prompt(prompt_tokens, prefix_tokens)
            for i in range(1, len(seqs)):
                lib.llama_memory_seq_rm(memory, i, -1, -1)
                lib.llama_memory_seq_cp(memory, 0, i, -1, -1)
            for i, seq in enumerate(seqs):
                seq.stats.prompt_tokens = len(prompt_tokens)
                seq.stats.reused_prompt_tokens = reused if i == 0 else len(prompt_tokens)
                seq.begin(started)
            first = np.array(self._logits())  # the last prompt token's logits, the same for every sequence
            rows = {i: first for i in range(len(seqs))}
            position = len(prompt_tokens)
            try:
                while rows:
                    batch: list[tuple[int, int]] = []  # (sequence, token) still to decode
                    for i, logits in rows.items():
                        seq = seqs[i]
                        try:
                            _check_deadline(started, timeout, seq.stats.completion_tokens)
                            token = seq.pick(logits)
                            seq.accept(token)
                        except (ModelError, ProviderTimeoutError) as exc:
                            seq.end()
                            results[i] = exc
                            continue
                        if seq.done:
                            seq.end()
                            results[i] = seq.stats.result(seq.text)
                        else:
                            batch.append((i, token))
                    if not batch:
                        break
                    self._decode_batch(batch, position)
                    self._cached.extend(t for i, t in batch if i == 0)  # sequence 0 is the prompt cache
                    rows = {i: np.array(self._logits(j)) for j, (i, _) in enumerate(batch)}
                    position += 1
            finally:
                for i in range(1, len(seqs)):
                    lib.llama_memory_seq_rm(memory, i, -1, -1)
                for i, seq in enumerate(seqs):
                    if results[i] is None:
                        seq.end()
        return [r if r is not None else ModelError("the candidate was not decoded") for r in results]

    def _prepare(self, prompt: str, max_tokens: int, temperature: float) -> tuple[list[int], int]:
        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
        if temperature < 0:
            raise InputError(f"temperature must be >= 0, got {temperature}")
        prompt_tokens = self.tokenize(prompt)
        room = self.n_ctx - len(prompt_tokens)
        if room < 1:
            raise InputError(
                f"the prompt has {len(prompt_tokens)} tokens, more than the model context of {self.n_ctx}; "
                "shorten it or raise n_ctx"
            )
        return prompt_tokens, min(max_tokens, room)

    def _decode_batch(self, batch: Sequence[tuple[int, int]], position: int) -> None:
        """One token of each listed sequence at ``position``, every one with its logits."""
        b = self._batch
        for j, (seq_id, token) in enumerate(batch):
            b.token[j] = token
            b.pos[j] = position
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq_id
            b.logits[j] = 1
        b.n_tokens = len(batch)
        rc = self._decode(b, len(batch), step=True)
        if rc != 0:
            self._forget_cache()
            raise ModelError(f"llama_decode failed with code {rc} decoding {len(batch)} candidates")


def _check_deadline(started: float, timeout: float | None, tokens: int) -> None:
    if timeout is not None and time.perf_counter() - started > timeout:
        raise ProviderTimeoutError(f"local model: no complete answer within {timeout} s ({tokens} tokens)", provider="local")


_MODELS: dict[tuple[str, int, int], LocalModel] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the models while llama_cpp is still whole: left to ``Llama.__del__`` at interpreter teardown,
    freeing calls into a half-dismantled module and prints an ignored ``TypeError`` per model."""
    with _MODELS_LOCK:
        for model in _MODELS.values():
            model.close()
        _MODELS.clear()


def load_model(path: str | os.PathLike[str], *, n_ctx: int = DEFAULT_CONTEXT, threads: int = DEFAULT_THREADS) -> LocalModel:
    """The loaded model for ``path``, shared per process (with its tokenizer) per (file, context, threads)."""
    key = (os.path.realpath(path), n_ctx, threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = LocalModel(key[0], n_ctx=n_ctx, threads=threads)
        return model
