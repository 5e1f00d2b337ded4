"""Config and DSL generation from a plain request to a right answer, with the embedded model.

Four kinds of task (``bench/_generation_tasks.py`` holds them and their judges):
  config  BFCL "simple" items (../shared/corpora/bfcl/simple_shared.jsonl, 324): the function's parameters
          are the schema, the request the prompt; judged by BFCL's AST rules
  cron    bench/data/cron_requests.jsonl: judged by equal fire times, not equal text
  filter  bench/data/filter_requests.jsonl over bench/data/datasets.json: judged by equal selections
  chart   bench/data/chart_requests.jsonl over the same datasets: equal encodings and filter selection

Modes (``--modes``, default all but ``k``):
  free      the pipeline's prompt (the guide: fields, syntax, examples), no grammar, one attempt
  grammar   what there was before issue #25: the bare prompt, the grammar (undeclared JSON keys admitted,
            DSL fields unbound), one attempt of up to 512 tokens
  bare      the whole pipeline except the guide in the prompt (``describe=False``): what the prompt buys
  open      the whole pipeline with the open grammar of before (undeclared JSON keys admitted, DSL fields
            unbound) but the same guide: what the tighter grammar buys
  pipeline  ``constrain.generate`` as shipped: the guide, the generation grammar (declared keys only,
            DSLs bound to the dataset's fields), the target's token bound, the repetition guard,
            up to 3 attempts with the validator's feedback
  k         the pipeline with ``candidates=K`` (``--candidates``, default 3): the typed value most agree on

For each kind and mode: accuracy, attempts per request, p50/p95 seconds, prompt tokens (p50), the most
output tokens of an attempt against its bound (``over bound`` counts attempts longer than the bound).
``--shard I/N`` runs every N-th task from the I-th and ``--save`` writes the raw rows; ``--merge`` reports
saved parts as one run (two one-thread shards use both cores of a 2-core machine).

    python bench/generation.py [--kinds config,cron] [--modes pipeline] [--limit N] [--model NAME] [--json]
    python bench/generation.py --shard 1/2 --save a.json & python bench/generation.py --shard 2/2 --save b.json; wait
    python bench/generation.py --merge a.json b.json [--json]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

# bench/ goes last on the path: bench/jsonschema.py must not shadow the jsonschema package
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [entry for entry in sys.path if entry != _HERE] + [_HERE]

from _common import bench_parser, emit, median, percentile, print_table

import _generation_tasks as tasks

import constrain
from constrain import GenerationError, Grammar, generate
from constrain.dsl import chart as chart_dsl, filter as filter_dsl
from constrain.errors import ConstrainError, JSONSchemaError
from constrain.generate import messages_for
from constrain.json_schema import grammar as schema_grammar
from constrain.providers.base import Message

MODES = ("free", "grammar", "bare", "open", "pipeline", "k")
BEFORE_MAX_TOKENS = 512  # the local provider's default limit before issue #25
FREE_MAX_TOKENS = 256


def target_grammar(task: tasks.Task, *, guided: bool) -> Grammar:
    """The grammar of a task: as shipped (``guided``), or as it was before issue #25."""
    if task.kind == "config":
        try:
            return schema_grammar(task.target, declared_keys=guided, name=task.id)
        except JSONSchemaError:
            return schema_grammar(task.target, declared_keys=guided, name=task.id, widen=True)
    if task.kind == "cron":
        return constrain.load_grammar("dsl/cron")
    if not guided:
        return constrain.load_grammar(f"dsl/{task.kind}")
    name = f"dsl/{task.kind}[{task.dataset}]"
    module = filter_dsl if task.kind == "filter" else chart_dsl
    # the dataset's name is what its requests call the records ("orders")
    return module.grammar(dataset_schema(task.dataset or ""), records=task.dataset or "records", name=name)


ENUM_LIMIT = 12


def dataset_schema(name: str) -> dict[str, Any]:
    """The dataset's fields as an app would declare them: a JSON Schema whose string fields with few
    distinct values (at most ENUM_LIMIT, as a status or a country in a model's ``Literal``) list them."""
    fields = tasks.datasets()[name]["fields"]
    rows = tasks.records(name)
    properties: dict[str, Any] = {}
    for field, kind in fields.items():
        if kind == "date":
            properties[field] = {"type": "string", "format": "date"}
            continue
        properties[field] = {"type": kind}
        values = sorted({row[field] for row in rows if isinstance(row.get(field), str)})
        if kind == "string" and 0 < len(values) <= ENUM_LIMIT:
            properties[field]["enum"] = values
    return {"type": "object", "properties": properties}


def run_one(task: tasks.Task, mode: str, provider: Any, candidates: int) -> dict[str, Any]:
    # a plain request: what the model is told of the target comes from the library (the guide), so a
    # DSL task's own system message (written for prompting by hand) is left out; BFCL's are the data's
    messages = [Message(role, content) for role, content in task.messages  # type: ignore[arg-type]
                if task.kind == "config" or role != "system"]
    g = target_grammar(task, guided=mode not in ("grammar", "open"))
    if mode == "open":  # the open grammar, told what the shipped one is told
        shipped = target_grammar(task, guided=True)
        g = type(g)(g.text, name=g.name, parser=g.parser_choice, description=shipped.description,
                    examples=shipped.examples, max_tokens=shipped.max_tokens, listed_values=shipped.listed_values,
                    _typer=g._typer)
    started = time.perf_counter()
    row: dict[str, Any] = {"id": task.id, "kind": task.kind, "mode": mode, "bound": g.max_tokens}
    attempts: list[Any] = []
    raw = ""
    try:
        if mode == "free":
            completion = provider.complete(messages_for(messages, g), None, max_tokens=FREE_MAX_TOKENS)
            raw = _unfenced(completion.text)
            row["attempt_tokens"] = [completion.usage.output_tokens]
            row["prompt_tokens"] = completion.usage.input_tokens
        else:
            options: dict[str, Any] = {}
            if mode == "grammar":
                options = {"describe": False, "max_attempts": 1, "max_tokens": BEFORE_MAX_TOKENS}
            elif mode == "bare":
                options = {"describe": False}
            elif mode == "k":
                options = {"candidates": candidates}
            result = generate(messages, grammar=g, provider=provider, **options)
            raw, attempts = result.raw, list(result.attempts)
    except GenerationError as exc:
        attempts = list(exc.attempts)
        raw = attempts[-1].raw if attempts else ""
    except ConstrainError as exc:
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    if attempts:
        row["attempt_tokens"] = [a.usage.output_tokens for a in attempts]
        row["prompt_tokens"] = attempts[0].usage.input_tokens
        failed = [a for a in attempts if not a.ok]
        if failed and "error" not in row and not any(a.ok for a in attempts):
            row["error"] = f"{type(failed[-1].error).__name__}: {str(failed[-1].error).splitlines()[0][:200]}"
        row["repeated"] = sum(1 for a in attempts if getattr(a.error, "repeated", None))
    row["attempts"] = len(attempts) if attempts else 1
    row["seconds"] = time.perf_counter() - started
    row["raw"] = raw
    row["right"] = bool(raw) and "error" not in row and task.judge(raw)
    if not row["right"]:
        row["why"] = row.get("error") or task.why(raw)
    return row


def _unfenced(text: str) -> str:
    """Free decoding's answer without the markdown fence a chat model may wrap it in."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip()


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in tasks.KINDS:
        for mode in MODES:
            mine = [r for r in rows if r["kind"] == kind and r["mode"] == mode]
            if not mine:
                continue
            seconds = [r["seconds"] for r in mine]
            over = sum(1 for r in mine for t in r.get("attempt_tokens", []) if r.get("bound") and mode not in ("free", "grammar") and t > r["bound"])
            out.setdefault(kind, {})[mode] = {
                "n": len(mine),
                "right": sum(r["right"] for r in mine),
                "accuracy": sum(r["right"] for r in mine) / len(mine),
                "attempts_mean": sum(r["attempts"] for r in mine) / len(mine),
                "p50_seconds": median(seconds),
                "p95_seconds": percentile(seconds, 95),
                "prompt_tokens_p50": median([r.get("prompt_tokens", 0) for r in mine]),
                "max_attempt_tokens": max((t for r in mine for t in r.get("attempt_tokens", [])), default=0),
                "over_bound": over,
                "repetition_cuts": sum(r.get("repeated", 0) for r in mine),
            }
    return out


def report(run: dict[str, Any], *, as_json: bool) -> None:
    figures = summarise(run["rows"])
    table = []
    for kind, modes in figures.items():
        for mode, f in modes.items():
            table.append([kind, mode, f"{f['right']}/{f['n']} = {f['accuracy']:.1%}", f"{f['attempts_mean']:.2f}",
                          f"{f['p50_seconds']:.1f} / {f['p95_seconds']:.1f}", f"{f['prompt_tokens_p50']:.0f}",
                          f"{f['max_attempt_tokens']}", f"{f['over_bound']}", f"{f['repetition_cuts']}"])
    print(f"model: {run['meta']['model']}")
    print_table(["kind", "mode", "right", "attempts", "p50 / p95 s", "prompt tok", "max attempt tok", "over bound", "loops cut"], table)
    emit({"model": run["meta"]["model"], "figures": figures}, as_json=as_json)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(tasks.KINDS), help="comma-separated: config,cron,filter,chart")
    parser.add_argument("--modes", default="free,grammar,bare,pipeline", help=f"comma-separated, of {','.join(MODES)}")
    parser.add_argument("--model", default=None, help="local model: qwen2.5-coder-0.5b (default) | qwen2.5-coder-1.5b | a GGUF path")
    parser.add_argument("--limit", type=int, default=None, help="the first N tasks of each kind (spread: every M-th)")
    parser.add_argument("--candidates", type=int, default=3, help="K for the k mode (default 3)")
    parser.add_argument("--shard", default=None, metavar="I/N", help="run only every N-th task, from the I-th")
    parser.add_argument("--save", type=Path, default=None, metavar="FILE", help="write the rows to FILE (for --merge)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="FILE", help="report saved parts as one run")
    parser.add_argument("--show-wrong", action="store_true", help="print each wrong answer with the reason")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        run = {"meta": parts[0]["meta"], "rows": [row for part in parts for row in part["rows"]]}
        report(run, as_json=args.json)
        return
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s): {', '.join(sorted(unknown))}")
    from constrain.providers.local import Local

    provider = Local(args.model) if args.model else Local()
    selected: list[tasks.Task] = []
    for kind in args.kinds.split(","):
        items = tasks.load(kind)
        if args.limit is not None and args.limit < len(items):
            step = len(items) / args.limit
            items = [items[int(i * step)] for i in range(args.limit)]
        selected += items
    if args.shard:
        index, count = (int(x) for x in args.shard.split("/"))
        selected = selected[index - 1 :: count]
    rows: list[dict[str, Any]] = []
    total = len(selected) * len(modes)
    for task in selected:
        for mode in modes:
            row = run_one(task, mode, provider, args.candidates)
            rows.append(row)
            mark = "ok " if row["right"] else "-- "
            print(f"[{len(rows)}/{total}] {mark}{task.id} {mode} {row['seconds']:.1f}s {row['raw'][:70]!r}", file=sys.stderr, flush=True)
            if args.show_wrong and not row["right"]:
                print(f"    {row.get('why', '')[:300]}", file=sys.stderr, flush=True)
    run = {"meta": {"model": provider.model}, "rows": rows}
    if args.save:
        args.save.write_text(json.dumps(run))
    report(run, as_json=args.json)


if __name__ == "__main__":
    main()
