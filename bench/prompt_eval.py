"""Prompt evaluation speed of the embedded model per llama.cpp context setting, on the Chinook SQL prompt.

Each configuration is a fresh context on the same loaded weights: threads for a batch of prompt tokens,
the batch size (n_batch = n_ubatch), flash attention, and the KV cache type (q8_0 needs flash attention
for its V cache). The prompt is evaluated from an empty cache, then a few tokens are decoded one at a
time (greedy, one thread, as ``LocalModel`` decodes). Configurations are interleaved round by round, so
a busy machine slows them alike; compare ratios within one run.

    python bench/prompt_eval.py [--rounds N] [--configs NAME,...] [--json]
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from _common import bench_parser, emit, print_table

from constrain.local import _store as _model_store
from constrain.local._model import MAX_SEQUENCES, available_cores, import_llama_cpp, load_model
from constrain.sql.ask import _plan

# name -> (batch threads, n_batch, flash attention, KV type); "current" is what LocalModel uses
CONFIGS: dict[str, tuple[int, int, int, str]] = {
    "t2 b512 fa-auto f16": (2, 512, -1, "f16"),
    "t1 b512 fa-auto f16": (1, 512, -1, "f16"),
    "t2 b256 fa-auto f16": (2, 256, -1, "f16"),
    "t2 b1024 fa-auto f16": (2, 1024, -1, "f16"),
    "t2 b512 fa-off f16": (2, 512, 0, "f16"),
    "t2 b1024 fa-off f16": (2, 1024, 0, "f16"),
    "t2 b512 fa-on f16": (2, 512, 1, "f16"),
    "t2 b512 fa-on q8_0": (2, 512, 1, "q8_0"),
}


def _context(lib: Any, model: Any, threads: int, n_batch: int, flash: int, kv: str) -> Any:
    params = lib.llama_context_default_params()
    params.n_ctx = 4096
    params.n_batch = params.n_ubatch = n_batch
    params.n_seq_max = MAX_SEQUENCES
    params.kv_unified = True
    params.n_threads = 1
    params.n_threads_batch = threads
    params.flash_attn_type = flash
    kv_type = {"f16": lib.GGML_TYPE_F16, "q8_0": lib.GGML_TYPE_Q8_0}[kv]
    params.type_k = params.type_v = kv_type
    params.no_perf = True
    ctx = lib.llama_init_from_model(model, params)
    if not ctx:
        raise SystemExit(f"llama.cpp refused the context (threads {threads}, batch {n_batch}, flash {flash}, {kv})")
    return ctx


def _run(lib: Any, ctx: Any, tokens: list[int], n_batch: int, decode: int, n_vocab: int) -> tuple[float, float, list[int]]:
    """Seconds for the prompt, seconds per decoded token, and the greedy tokens."""
    import numpy as np

    lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
    started = time.perf_counter()
    for start in range(0, len(tokens), n_batch):
        part = tokens[start : start + n_batch]
        array = (lib.llama_token * len(part))(*part)
        if lib.llama_decode(ctx, lib.llama_batch_get_one(array, len(part))) != 0:
            raise SystemExit("llama_decode failed")
    prompt_seconds = time.perf_counter() - started
    out: list[int] = []
    started = time.perf_counter()
    for _ in range(decode):
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        token = int(logits.argmax())
        out.append(token)
        one = (lib.llama_token * 1)(token)
        lib.llama_decode(ctx, lib.llama_batch_get_one(one, 1))
    return prompt_seconds, (time.perf_counter() - started) / max(1, decode), out


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=_model_store.DEFAULT_MODEL, help="model name or GGUF path")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--decode", type=int, default=16, help="tokens decoded after each prompt")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    lib = import_llama_cpp()
    model = load_model(_model_store.resolve_model(args.model))
    plan = _plan("How many albums does each artist have?", "chinook", None, 3, True)
    tokens = model.tokenize(model.render([{"role": m.role, "content": m.content} for m in plan.messages]))
    prompt: dict[str, list[float]] = {n: [] for n in names}
    decode: dict[str, list[float]] = {n: [] for n in names}
    outputs: dict[str, list[int]] = {}
    for _ in range(args.rounds):
        for name in names:
            threads, n_batch, flash, kv = CONFIGS[name]
            ctx = _context(lib, model._model, threads, n_batch, flash, kv)
            try:
                p, d, out = _run(lib, ctx, tokens, n_batch, args.decode, model.n_vocab)
            finally:
                lib.llama_free(ctx)
            prompt[name].append(p)
            decode[name].append(d)
            outputs[name] = out
            print(f"  {name}: prompt {len(tokens) / p:.1f} tokens/s, decode {1 / d:.1f} tokens/s", flush=True)
    reference = outputs[names[0]]
    rows, figures = [], {"prompt_tokens": len(tokens), "cores": available_cores(), "load": os.getloadavg()[0], "configs": {}}
    for name in names:
        rate = len(tokens) / statistics.median(prompt[name])
        step = 1 / statistics.median(decode[name])
        same = outputs[name] == reference
        figures["configs"][name] = {"prompt_tokens_per_second": rate, "decode_tokens_per_second": step, "same_greedy_tokens": same}
        rows.append([name, f"{rate:.1f}", f"{step:.1f}", "yes" if same else "no"])
    print(f"{len(tokens)} prompt tokens (Chinook), {args.rounds} round(s), {available_cores()} cores")
    print_table(["threads, batch, flash attention, KV", "prompt tokens/s", "decode tokens/s", f"same greedy tokens as {names[0]}"], rows)
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
