"""The embedded model's speed: unconstrained vs grammar-constrained decoding in the same run.

For each prompt the model decodes free (no grammar) and constrained, interleaved so a busy machine
slows them alike: SQL questions under the schema-bound SQL grammar (Chinook), JSON prompts under the
JSON grammar. Each constrained rate is compared with free decoding of the same prompts (a SQL prompt
carries the schema, so its context, and the cost of each token, is larger than a JSON prompt's).
Reports tokens/s of each, the constrained/free ratios, llguidance time per token (as spent in the loop, and
for a full mask computed at every step of the same outputs), model load, tokenizer build,
time to the first answer, and peak memory.

    python bench/local.py [--model NAME|PATH] [--rounds N] [--max-tokens N] [--json]

``--repeat``: the prompt-prefix cache. 20 Chinook questions, each asked by ``constrain sql Q --db chinook
--run`` in a new process (the disk cache cold for the first, warm after), then the same 20 through
``constrain.sql.ask`` in this process (its own cold cache folder); p50/p95 seconds, the first question
vs the later ones, prompt tokens evaluated vs reused, where a process's time goes, the cache's size on
disk, and the README's question once more in a new process from the warm cache.

    python bench/local.py --repeat [--questions N] [--json]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_parser, emit, fmt_seconds, percentile, print_table

from constrain import load_grammar
from constrain.local import _store as _model_store
from constrain.errors import ConstrainError
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


README_QUESTION = "How many albums does each artist have?"
REPEAT_QUESTIONS = [
    README_QUESTION,
    "How many tracks are there?",
    "List the names of all genres.",
    "Which artist has the most albums?",
    "What is the total number of invoices per country?",
    "List the titles of the albums by AC/DC.",
    "How many customers are from Brazil?",
    "What is the longest track?",
    "Which employees report to Andrew Adams?",
    "What are the five best-selling tracks by quantity?",
    "How many tracks does each media type have?",
    "What is the average unit price of tracks per genre?",
    "List the customers who live in Canada.",
    "Which playlist has the most tracks?",
    "What is the total revenue per year?",
    "How many albums have more than 20 tracks?",
    "Which customers have spent more than 45 in total?",
    "List the tracks longer than 10 minutes with their album titles.",
    "Who is the sales support agent with the most customers?",
    "How many invoices were issued in 2010?",
]

# Runs the CLI in this new process, then prints the model's counters and timings on stderr (one JSON line)
_CHILD = """
import json, os, sys, time
started = time.perf_counter()
from constrain.local import _model as _local_decode
timings = {"prompt": 0.0, "decode": 0.0}
def timed(name, method):
    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            timings[name] += time.perf_counter() - t0
    return wrapper
_local_decode.LocalModel._load_prompt = timed("prompt", _local_decode.LocalModel._load_prompt)
_local_decode.LocalModel.generate_candidates = timed("decode", _local_decode.LocalModel.generate_candidates)
imported = time.perf_counter() - started
import atexit
@atexit.register
def report():  # registered after _local_decode's own atexit hook, so it runs before the models are freed
    models = list(_local_decode._MODELS.values())
    m = models[0] if models else None
    print("BENCH " + json.dumps({
        "import_seconds": imported,
        "model_load_seconds": m.load_seconds if m else None,
        "prompt_seconds": timings["prompt"],
        "decode_seconds": max(0.0, timings["decode"] - timings["prompt"]),
        "evaluated": m.prompt_tokens_evaluated if m else 0,
        "restored": m.prompt_tokens_restored if m else 0,
        "process_seconds": time.perf_counter() - started,
    }), file=sys.stderr, flush=True)
import runpy
sys.argv = ["constrain", *sys.argv[1:]]
runpy.run_module("constrain", run_name="__main__")
"""


def _cache_folder(root: Path, name: str) -> Path:
    """A fresh cache folder that shares the assembled models (no re-assembly) but not the prefix cache."""
    folder = root / name
    folder.mkdir()
    (folder / "models").symlink_to(_model_store.cache_dir() / "models")
    return folder


def _ask_in_new_process(question: str, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "CONSTRAIN_CACHE_DIR": str(cache), "CONSTRAIN_PROVIDER": "local", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "sql", question, "--db", "chinook", "--run"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)  # not bench/: it would shadow packages
    seconds = time.perf_counter() - started
    stats = next((json.loads(line[6:]) for line in done.stderr.splitlines() if line.startswith("BENCH ")), {})
    sql = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    return {"question": question, "seconds": seconds, "ok": done.returncode == 0, "sql": sql, **stats}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    times = [r["seconds"] for r in runs]
    later = times[1:]
    return {
        "questions": len(runs),
        "ok": sum(1 for r in runs if r.get("ok", True)),
        "p50_seconds": statistics.median(times),
        "p95_seconds": percentile(times, 95),
        "first_seconds": times[0],
        "later_p50_seconds": statistics.median(later) if later else None,
        "later_vs_first": statistics.median(later) / times[0] if later and times[0] else None,
        "prompt_tokens_evaluated": sum(r.get("evaluated", 0) for r in runs),
        "prompt_tokens_reused": sum(r.get("reused", r.get("restored", 0)) for r in runs),
    }


def repeat(args: Any) -> None:
    questions = REPEAT_QUESTIONS[: args.questions]
    with tempfile.TemporaryDirectory(prefix="constrain-bench-") as tmp:
        root = Path(tmp)
        # in this process: its own cold folder, then every question through sql.ask
        os.environ["CONSTRAIN_CACHE_DIR"] = str(_cache_folder(root, "inprocess"))
        from constrain.providers.local import Local
        from constrain.sql import ask

        t0 = time.perf_counter()
        provider = Local(args.model)
        model = provider.load()
        load_seconds = time.perf_counter() - t0
        inprocess: list[dict[str, Any]] = []
        for question in questions:
            evaluated, restored = model.prompt_tokens_evaluated, model.prompt_tokens_restored
            started = time.perf_counter()
            try:
                answer = ask(question, db="chinook", provider=provider, run=True)
                sql, ok, prompt_tokens = answer.sql, True, answer.result.usage.input_tokens
            except ConstrainError as exc:  # no valid query: timed like any answer
                sql, ok, prompt_tokens = "", False, getattr(getattr(exc, "usage", None), "input_tokens", 0)
            new = model.prompt_tokens_evaluated - evaluated
            inprocess.append({"question": question, "seconds": time.perf_counter() - started, "sql": sql, "ok": ok,
                              "evaluated": new, "reused": max(0, prompt_tokens - new),
                              "restored": model.prompt_tokens_restored - restored})
            print(f"  in process  {inprocess[-1]['seconds']:6.2f} s  evaluated {new:5d}  {question}", flush=True)
        # a new process per question, in a second cold folder
        folder = _cache_folder(root, "processes")
        processes = []
        for question in questions:
            run = _ask_in_new_process(question, folder)
            processes.append(run)
            print(f"  new process {run['seconds']:6.2f} s  evaluated {run.get('evaluated', 0):5d}  restored "
                  f"{run.get('restored', 0):5d}  {question}{'' if run['ok'] else '  (FAILED)'}", flush=True)
        warm = _ask_in_new_process(README_QUESTION, folder)
        print(f"  README question again, new process: {warm['seconds']:.2f} s", flush=True)
        disk = sum(p.stat().st_size for p in (folder / "prefix").glob("*.kv"))
        files = len(list((folder / "prefix").glob("*.kv")))
    per_process = _summary(processes)
    in_one = _summary(inprocess)
    later = processes[1:]

    def mean(key: str) -> float:
        return statistics.mean(r.get(key) or 0.0 for r in later) if later else 0.0

    figures = {
        "model": provider.model,
        "new_process": per_process,
        "one_process": {**in_one, "model_load_seconds": load_seconds},
        "readme_question_warm_seconds": warm["seconds"],
        "readme_question_warm": warm,
        "readme_question_cold_seconds": processes[0]["seconds"],
        "later_process_breakdown_seconds": {
            "python_and_imports": mean("import_seconds"),
            "model_load": mean("model_load_seconds"),
            "prompt": mean("prompt_seconds"),
            "decode": mean("decode_seconds"),
            "rest": statistics.mean(r["seconds"] - (r.get("prompt_seconds") or 0) - (r.get("decode_seconds") or 0)
                                    - (r.get("model_load_seconds") or 0) - (r.get("import_seconds") or 0) for r in later)
            if later else 0.0,
        },
        "first_process_breakdown_seconds": {k: processes[0].get(k) for k in
                                            ("import_seconds", "model_load_seconds", "prompt_seconds", "decode_seconds")},
        "disk_cache_bytes": disk,
        "disk_cache_files": files,
        "same_sql_both_ways": sum(a["sql"] == b["sql"] for a, b in zip(inprocess, processes)),
        "load_average": os.getloadavg()[0],
    }
    print()
    rows = []
    for name, s in (("new process per question (constrain sql ... --run)", per_process), ("one process (sql.ask)", in_one)):
        rows.append([name, s["questions"], f"{s['first_seconds']:.1f}", f"{s['later_p50_seconds']:.1f}",
                     f"{s['later_vs_first']:.2f}x", f"{s['p50_seconds']:.1f}", f"{s['p95_seconds']:.1f}",
                     s["prompt_tokens_evaluated"], s["prompt_tokens_reused"]])
    print_table(["questions asked", "n", "first s", "later p50 s", "later / first", "p50 s", "p95 s",
                 "prompt tokens evaluated", "prompt tokens reused"], rows)
    b = figures["later_process_breakdown_seconds"]
    print(f"\nREADME question from a warm cache (new process): {warm['seconds']:.1f} s (cold: {processes[0]['seconds']:.1f} s)")
    print(f"a later new process, mean: imports {b['python_and_imports']:.1f} s, model load {b['model_load']:.1f} s, "
          f"prompt {b['prompt']:.1f} s, decode {b['decode']:.1f} s, other {b['rest']:.1f} s")
    print(f"disk cache: {files} file(s), {disk / 2**20:.1f} MiB; same SQL in both runs for "
          f"{figures['same_sql_both_ways']}/{len(questions)} questions")
    emit(figures, as_json=args.json)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=_model_store.DEFAULT_MODEL, help="model name or GGUF path")
    parser.add_argument("--rounds", type=int, default=4, help="prompts per kind (max 4)")
    parser.add_argument("--max-tokens", type=int, default=96, help="token limit per answer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", action="store_true", help="measure the prompt-prefix cache (see above)")
    parser.add_argument("--questions", type=int, default=len(REPEAT_QUESTIONS), help="--repeat: how many questions")
    args = parser.parse_args()
    if args.repeat:
        repeat(args)
        return

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
