"""Natural-language-to-SQL quality: execution accuracy with and without the grammar.

Runs a provider (the embedded local model by default) over Spider dev questions
(``../shared/corpora/spider/dev_shared.json``; databases in ``../shared/corpora/spider/database``).
For every question the model answers twice from the same prompt (schema + question): once free, once
under the schema-bound SQLite grammar. Both answers and the gold query run on the database; an answer
is correct when its result rows equal the gold rows as a multiset (columns may come in another order). Free answers get Markdown code
fences stripped (the usual courtesy); nothing else is repaired. Reports execution accuracy (EX), the
share of answers that execute, and decoding tokens/s of each mode.

``--limit N`` takes N questions shared evenly among all the databases, evenly spaced within each.

    python bench/nl2sql.py [--limit N] [--provider local] [--model NAME|PATH] [--json]
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_parser, emit, print_table

from constrain import providers
from constrain.errors import ConstrainError
from constrain.providers.base import Constraint, Message, Provider

CORPUS = ROOT.parent / "shared" / "corpora" / "spider"
QUERY_SECONDS = 10.0

SYSTEM = (
    "You are an expert SQLite developer. Write one SQLite query that answers the user's question "
    "about the database below. Use only the tables and columns in the schema. Reply with the SQL only.\n\n"
    "Database schema:\n{schema}"
)


def spread(questions: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Up to ``limit`` questions shared evenly among the databases, evenly spaced within each database's
    questions (so not just the first, easiest ones); grouped by database for running."""
    by_db: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in questions:
        by_db[q["db_id"]].append(q)
    if limit is None or limit >= len(questions):
        chosen = questions
    else:
        dbs = sorted(by_db)
        quota = {db: limit // len(dbs) + (i < limit % len(dbs)) for i, db in enumerate(dbs)}
        chosen = []
        for db in dbs:
            items, k = by_db[db], min(quota[db], len(by_db[db]))
            chosen += [items[int((i + 0.5) * len(items) / k)] for i in range(k)]
    return sorted(chosen, key=lambda q: q["db_id"])  # stable: same database in a row reuses the prompt cache


def run_query(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows of ``sql`` on a read-only connection, or None when it does not execute (or runs too long)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    deadline = time.monotonic() + QUERY_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    conn.text_factory = lambda b: b.decode("utf-8", "replace")
    try:
        return conn.execute(sql).fetchall()
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return None
    finally:
        conn.close()


def same_rows(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal as multisets of rows, allowing the columns in another order (as Spider's test-suite EX does)."""

    def norm(rows: list[tuple[Any, ...]]) -> collections.Counter[tuple[Any, ...]]:
        return collections.Counter(tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows)

    if len(a) != len(b):
        return False
    if not a:
        return True
    width = len(a[0])
    if width != len(b[0]):
        return False
    target = norm(b)
    orders = itertools.permutations(range(width)) if width <= 6 else [tuple(range(width))]
    return any(norm([tuple(row[i] for i in order) for row in a]) == target for order in orders)


_FENCE = re.compile(r"```(?:sql|sqlite)?\s*(.*?)```", re.S | re.I)


def strip_fences(text: str) -> str:
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip()


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="number of questions (spread over all databases)")
    parser.add_argument("--provider", default="local", help="provider name (default: the embedded local model)")
    parser.add_argument("--model", default=None, help="model name or GGUF path for the provider")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the Spider corpus folder")
    parser.add_argument("--show", action="store_true", help="print every question with both answers")
    parser.add_argument("--ask", action="store_true", help="also run constrain.sql.ask (grammar + validation + "
                        "up to 3 attempts with the error fed back), the product's own path")
    args = parser.parse_args()

    from constrain.sql import Schema, grammar
    from constrain.sql import ask as sql_ask

    questions = spread(json.loads((args.corpus / "dev_shared.json").read_text()), args.limit)
    options: dict[str, Any] = {"model": args.model}
    if args.provider == "local":
        options["max_tokens"] = args.max_tokens
    provider: Provider = providers.get(args.provider, **options)

    modes = ("free", "grammar", "ask") if args.ask else ("free", "grammar")
    tally = {mode: collections.Counter() for mode in modes}
    speed = {mode: [0, 0.0] for mode in modes}
    schemas: dict[str, tuple[Constraint, str]] = {}
    started = time.perf_counter()
    for n, q in enumerate(questions, start=1):
        db = args.corpus / "database" / q["db_id"] / f"{q['db_id']}.sqlite"
        if q["db_id"] not in schemas:
            schema = Schema.from_sqlite(db)
            schemas[q["db_id"]] = (Constraint(grammar("sqlite", schema=schema)), SYSTEM.format(schema=schema.describe()))
        constraint, system = schemas[q["db_id"]]
        messages = [Message("system", system), Message("user", q["question"])]
        gold = run_query(db, q["query"])
        line = [f"[{n}/{len(questions)}] {q['db_id']}: {q['question']}"]
        for mode, con in (("free", None), ("grammar", constraint), ("ask", constraint))[: len(modes)]:
            try:
                if mode == "ask":  # the product path: its own prompt, validation, re-ask with the error
                    sql = sql_ask(q["question"], db=db, provider=provider, policy=None, max_attempts=3,
                                  max_tokens=args.max_tokens).sql
                    raw = None
                else:
                    completion = provider.complete(messages, con, max_tokens=args.max_tokens)
                    sql = strip_fences(completion.text) if con is None else completion.text
                    raw = completion.raw
                if raw is not None and hasattr(raw, "decode_seconds"):
                    speed[mode][0] += raw.completion_tokens
                    speed[mode][1] += raw.decode_seconds
            except ConstrainError as exc:
                sql, tally[mode]["errors"] = "", tally[mode]["errors"] + 1
                line.append(f"  {mode}: error {type(exc).__name__}: {exc}")
            rows = run_query(db, sql) if sql else None
            tally[mode]["total"] += 1
            tally[mode]["executes"] += rows is not None
            correct = rows is not None and gold is not None and same_rows(rows, gold)
            tally[mode]["correct"] += correct
            line.append(f"  {mode:7} {'ok ' if correct else 'BAD' if rows is not None else 'ERR'} {sql}")
        if args.show:
            print("\n".join(line + [f"  gold    {q['query']}"]), flush=True)
    elapsed = time.perf_counter() - started

    n = len(questions)
    figures: dict[str, Any] = {
        "provider": args.provider,
        "model": getattr(provider, "model", None),
        "questions": n,
        "databases": len({q["db_id"] for q in questions}),
        "seconds": elapsed,
    }
    for mode in modes:
        t = tally[mode]
        figures[f"{mode}_execution_accuracy"] = t["correct"] / n if n else 0.0
        figures[f"{mode}_executes"] = t["executes"] / n if n else 0.0
        figures[f"{mode}_correct"] = t["correct"]
        figures[f"{mode}_errors"] = t["errors"]
        tokens, seconds = speed[mode]
        figures[f"{mode}_tokens_per_second"] = tokens / seconds if seconds else None
    print(f"{n} Spider dev questions over {figures['databases']} databases, provider {args.provider} "
          f"({figures['model']}), {elapsed:.0f} s")
    print_table(
        ["decoding", "EX (execution accuracy)", "executes", "tokens/s"],
        [
            [
                {"free": "free", "grammar": "schema-bound grammar", "ask": "grammar + validation, 3 attempts (sql.ask)"}[mode],
                f"{figures[f'{mode}_correct']}/{n} = {figures[f'{mode}_execution_accuracy']:.1%}",
                f"{figures[f'{mode}_executes']:.1%}",
                f"{figures[f'{mode}_tokens_per_second']:.1f}" if figures[f"{mode}_tokens_per_second"] else "-",
            ]
            for mode in modes
        ],
    )
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
