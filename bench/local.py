"""The embedded model's speed: unconstrained vs grammar-constrained decoding in the same run.

For each prompt the model decodes free (no grammar) and constrained, interleaved so a busy machine
slows them alike: SQL questions under the schema-bound SQL grammar (Chinook), JSON prompts under the
JSON grammar. Each constrained rate is compared with free decoding of the same prompts (a SQL prompt
carries the schema, so its context, and the cost of each token, is larger than a JSON prompt's).
Reports tokens/s of each, the constrained/free ratios, llguidance time per token (as spent in the loop, and
for a full mask computed at every step of the same outputs), model load, tokenizer build,
time to the first answer, and peak memory.

    python bench/local.py [--model NAME|PATH] [--rounds N] [--max-tokens N] [--json]
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

from _common import bench_parser, emit, fmt_seconds, print_table

from constrain import _model_store, load_grammar
from constrain._databases import packaged_database
from constrain.providers.base import Constraint, Message
from constrain.providers.local import Local

SQL_QUESTIONS = [
    "How many albums does each artist have? Show the artist name and the count.",
    "List the ten longest tracks with their album titles.",
    "Which customers from Brazil spent the most in total? Show their names and totals.",
    "What is the average invoice total per billing country?",
]
JSON_PROMPTS = [
    "Describe the album 'Let There Be Rock' by AC/DC as a JSON object with title, artist, year and a list of three tracks.",
    "Write a JSON configuration for a web server: host, port, TLS settings and a list of allowed origins.",
    "Give a JSON object describing a customer with name, email, country and a list of two invoices.",
    "Return a JSON array of three music genres, each an object with a name and a one-sentence description.",
]


def _sql_setup() -> tuple[Constraint, str]:
    from constrain.sql import Schema, grammar

    schema = Schema.from_sqlite(packaged_database("chinook"))
    try:
        sql_grammar = grammar("sqlite", schema=schema)
    except NotImplementedError:  # schema-bound grammars not available: the dialect grammar
        sql_grammar = grammar("sqlite")
    system = (
        "You write one SQLite query that answers the question. Reply with the SQL only.\n\n"
        f"Database schema:\n{schema.describe()}"
    )
    return Constraint(sql_grammar), system


def _replay_full_masks(local: Local, constraint: Constraint, tokens_text: str) -> list[float]:
    """Seconds per full mask, computed at every step while re-feeding the tokens of a finished output."""
    import llguidance
    import numpy as np

    model = local.load()
    matcher = model.matcher(llguidance.LLMatcher.grammar_from_lark(constraint.definition))
    tokens = model.tokenize(tokens_text) if tokens_text else []
    bitmask = np.zeros((model.n_vocab + 31) // 32, dtype=np.int32)
    times = []
    for token in tokens:
        t0 = time.perf_counter()
        matcher.unsafe_compute_mask_ptr(bitmask.ctypes.data, bitmask.nbytes)
        times.append(time.perf_counter() - t0)
        if not matcher.consume_token(token):
            break  # retokenised text can split differently from the model's tokens; stop there
    return times


def _decode(local: Local, messages: list[Message], constraint: Constraint | None, max_tokens: int) -> Any:
    """One decode through the model (a token-limit stop is measured like any other)."""
    import llguidance

    model = local.load()
    prompt = model.render([{"role": m.role, "content": m.content} for m in messages])
    matcher = None
    if constraint is not None:
        matcher = model.matcher(llguidance.LLMatcher.grammar_from_lark(constraint.definition))
    return model.generate(prompt, matcher, max_tokens=max_tokens)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=_model_store.DEFAULT_MODEL, help="model name or GGUF path")
    parser.add_argument("--rounds", type=int, default=4, help="prompts per kind (max 4)")
    parser.add_argument("--max-tokens", type=int, default=96, help="token limit per answer")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    local = Local(args.model, threads=args.threads, max_tokens=args.max_tokens)
    path = _model_store.resolve_model(args.model)
    resolved = time.perf_counter()
    model = local.load()
    loaded = time.perf_counter()
    sql_constraint, sql_system = _sql_setup()
    json_constraint = Constraint(load_grammar("json"))
    _ = model.tokenizer
    tokenizer_built = time.perf_counter()
    first = local.complete(
        [Message("system", sql_system), Message("user", SQL_QUESTIONS[0])], sql_constraint, max_tokens=256
    )
    first_answer = time.perf_counter()

    kinds: dict[str, list[Any]] = {"free_sql": [], "sql": [], "free_json": [], "json": []}
    outputs: dict[str, list[str]] = {"sql": [], "json": []}
    rounds = min(args.rounds, len(SQL_QUESTIONS))
    for i in range(rounds):
        sql_messages = [Message("system", sql_system), Message("user", SQL_QUESTIONS[i])]
        json_messages = [Message("system", "Reply with JSON only."), Message("user", JSON_PROMPTS[i])]
        for kind, messages, constraint in (
            ("free_sql", sql_messages, None),
            ("sql", sql_messages, sql_constraint),
            ("free_json", json_messages, None),
            ("json", json_messages, json_constraint),
        ):
            result = _decode(local, messages, constraint, args.max_tokens)
            kinds[kind].append(result)
            if kind in outputs:
                outputs[kind].append(result.text)

    def rate(results: list[Any]) -> float:
        tokens = sum(r.completion_tokens for r in results)
        seconds = sum(r.decode_seconds for r in results)
        return tokens / seconds if seconds else 0.0

    def cpu_rate(results: list[Any]) -> float:
        tokens = sum(r.completion_tokens for r in results)
        seconds = sum(r.decode_cpu_seconds for r in results)
        return tokens / seconds if seconds else 0.0

    def per_token(results: list[Any], attr: str) -> float:
        tokens = sum(r.completion_tokens for r in results)
        return sum(getattr(r, attr) for r in results) / tokens if tokens else 0.0

    full_masks = {
        kind: _replay_full_masks(local, constraint, outputs[kind][0]) if outputs[kind] else []
        for kind, constraint in (("sql", sql_constraint), ("json", json_constraint))
    }
    free = kinds["free_sql"] + kinds["free_json"]
    figures: dict[str, Any] = {
        "model": local.model,
        "model_path": str(path.name),
        "threads": args.threads,
        "rounds": rounds,
        "free_tokens_per_second": rate(free),
        "free_tokens_per_cpu_second": cpu_rate(free),
    }
    for kind in ("sql", "json"):
        baseline = kinds[f"free_{kind}"]
        figures[f"free_{kind}_tokens"] = sum(r.completion_tokens for r in baseline)
        figures[f"free_{kind}_tokens_per_second"] = rate(baseline)
        figures[f"free_{kind}_tokens_per_cpu_second"] = cpu_rate(baseline)
        figures[f"{kind}_tokens_per_second"] = rate(kinds[kind])
        figures[f"{kind}_tokens_per_cpu_second"] = cpu_rate(kinds[kind])
        figures[f"{kind}_ratio"] = rate(kinds[kind]) / rate(baseline) if rate(baseline) else 0.0
        figures[f"{kind}_cpu_ratio"] = cpu_rate(kinds[kind]) / cpu_rate(baseline) if cpu_rate(baseline) else 0.0
    figures.update({
        "sql_llguidance_seconds_per_token": per_token(kinds["sql"], "mask_seconds"),
        "json_llguidance_seconds_per_token": per_token(kinds["json"], "mask_seconds"),
        "sql_full_mask_seconds": statistics.median(full_masks["sql"]) if full_masks["sql"] else None,
        "json_full_mask_seconds": statistics.median(full_masks["json"]) if full_masks["json"] else None,
        "sql_tokens": sum(r.completion_tokens for r in kinds["sql"]),
        "json_tokens": sum(r.completion_tokens for r in kinds["json"]),
        "free_tokens": sum(r.completion_tokens for r in free),
        "prompt_tokens_per_second": sum(r.prompt_tokens - r.reused_prompt_tokens for r in free + kinds["sql"])
        / max(1e-9, sum(r.prompt_seconds for r in free + kinds["sql"])),
        "model_resolve_seconds": resolved - started,
        "model_load_seconds": loaded - resolved,
        "tokenizer_build_seconds": tokenizer_built - loaded,
        "first_answer_seconds": first_answer - started,
        "first_answer": first.text,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    })

    print(f"model {figures['model']} ({figures['model_path']}), {args.threads} thread(s), {rounds} prompts per kind")
    rows = []
    for kind in ("sql", "json"):
        rows.append([f"free ({kind.upper()} prompts)", figures[f"free_{kind}_tokens"], f"{figures[f'free_{kind}_tokens_per_second']:.1f}",
                     f"{figures[f'free_{kind}_tokens_per_cpu_second']:.1f}", "1.00", "1.00", "-", "-"])
        rows.append([f"{kind.upper()} grammar", figures[f"{kind}_tokens"], f"{figures[f'{kind}_tokens_per_second']:.1f}",
                     f"{figures[f'{kind}_tokens_per_cpu_second']:.1f}", f"{figures[f'{kind}_ratio']:.3f}",
                     f"{figures[f'{kind}_cpu_ratio']:.3f}", fmt_seconds(figures[f"{kind}_llguidance_seconds_per_token"]),
                     fmt_seconds(figures[f"{kind}_full_mask_seconds"] or 0.0)])
    print_table(
        ["decoding", "tokens", "tokens/s", "tokens per CPU-s", "vs free (wall)", "vs free (CPU)", "llguidance per token",
         "full mask (median)"],
        rows,
    )
    print()
    print_table(
        ["figure", "value"],
        [
            ["model assembly/verification check", fmt_seconds(figures["model_resolve_seconds"])],
            ["model load (llama.cpp)", fmt_seconds(figures["model_load_seconds"])],
            ["llguidance tokenizer build", fmt_seconds(figures["tokenizer_build_seconds"])],
            ["first answer (from start)", fmt_seconds(figures["first_answer_seconds"])],
            ["prompt evaluation", f"{figures['prompt_tokens_per_second']:.0f} tokens/s"],
            ["peak memory (RSS)", f"{figures['peak_rss_bytes'] / 2**20:.0f} MiB"],
        ],
    )
    print(f"\nfirst answer: {first.text}")
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
