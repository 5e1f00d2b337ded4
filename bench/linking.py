"""Schema linking on Spider: retrieval recall and prompt tokens over a warehouse of every Spider database.

Every database of ``corpora/spider/database`` becomes one schema of a single ``Schema`` (its tables named
``db_id.table``, three sample values per column as ``sql.ask`` reads them); each shared dev question is
linked against the whole warehouse at the default budget. Recall counts the questions whose gold query's
tables were all in the prompt (sqlglot reads the gold tables); "first table" those whose prompt opens with a
table of the question's own database (what a small model reads as the likeliest). Pure CPU, no model.

    python bench/linking.py [--budget N] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlglot  # noqa: E402
from sqlglot import exp  # noqa: E402

from constrain.sql.ask import DEFAULT_SCHEMA_BUDGET, SAMPLE_VALUES  # noqa: E402
from constrain.sql._linking import SchemaPrompt, estimate_tokens, linker_for  # noqa: E402
from constrain.sql.schema import Schema  # noqa: E402

SPIDER = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "spider"


def warehouse(root: Path) -> tuple[Schema, dict[str, Schema]]:
    """One schema per Spider database, all in one ``Schema``; and each database's own ``Schema``."""
    tables = []
    own: dict[str, Schema] = {}
    for path in sorted(root.glob("database/*/*.sqlite")):
        db = path.stem
        schema = Schema.from_sqlite(path, samples=SAMPLE_VALUES)
        own[db] = schema
        for table in schema.tables:
            keys = tuple(replace(fk, ref_schema=db) for fk in table.foreign_keys)
            tables.append(replace(table, schema=db, foreign_keys=keys))
    return Schema(tuple(tables), "sqlite"), own


def gold_tables(query: str, db: str, schema: Schema) -> set[str]:
    names = set()
    for table in sqlglot.parse_one(query, read="sqlite").find_all(exp.Table):
        found = schema.find(table.name, db)
        if found is not None:
            names.add(found.key)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=DEFAULT_SCHEMA_BUDGET, help="schema budget in tokens")
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev questions")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    args = parser.parse_args()

    started = time.perf_counter()
    schema, own = warehouse(SPIDER)
    whole = estimate_tokens(schema.describe(keys=True, samples=True))
    largest = max(own, key=lambda db: estimate_tokens(own[db].describe(keys=True, samples=True)))
    largest_tokens = estimate_tokens(own[largest].describe(keys=True, samples=True))
    linker_for(schema)  # the index, built once (its time is index_seconds)
    built = time.perf_counter() - started

    questions = json.loads((SPIDER / "dev_shared.json").read_text())[: args.limit]
    found, first_right, tokens, tables, seconds, missed = 0, 0, [], [], [], []
    for item in questions:
        gold = gold_tables(item["query"], item["db_id"], schema)
        t0 = time.perf_counter()
        prompt = SchemaPrompt(schema, item["question"], args.budget, estimate_tokens, True, True)
        text, held = prompt.text, prompt.tables
        seconds.append(time.perf_counter() - t0)
        assert estimate_tokens(text) <= args.budget
        shown = {p.table for p in held}
        first_right += bool(held) and held[0].table.split(".")[0] == item["db_id"]
        if gold <= shown:
            found += 1
        else:
            missed.append({"question": item["question"], "missing": sorted(gold - shown)})
        tokens.append(estimate_tokens(text))
        tables.append(len(held))

    figures = {
        "questions": len(questions),
        "budget": args.budget,
        "warehouse_tables": len(schema.tables),
        "warehouse_columns": sum(len(t.columns) for t in schema.tables),
        "warehouse_tokens": whole,
        "largest_database": largest,
        "largest_database_tokens": largest_tokens,
        "recall": round(found / len(questions), 4),
        "first_table_of_the_database": round(first_right / len(questions), 4),
        "prompt_tokens_p50": statistics.median(tokens),
        "prompt_tokens_max": max(tokens),
        "prompt_tables_p50": statistics.median(tables),
        "link_ms_p50": round(1000 * statistics.median(seconds), 2),
        "index_seconds": round(built, 2),
    }
    print(f"warehouse: {figures['warehouse_tables']} tables, {figures['warehouse_columns']} columns, "
          f"~{whole} tokens described whole; largest database {largest}: ~{largest_tokens} tokens")
    print(f"budget {args.budget}: recall {found}/{len(questions)} = {100 * found / len(questions):.1f}%; "
          f"first table from the question's database {first_right}/{len(questions)}; "
          f"prompt tokens p50 {figures['prompt_tokens_p50']}, max {figures['prompt_tokens_max']}; "
          f"tables p50 {figures['prompt_tables_p50']}; linking p50 {figures['link_ms_p50']} ms")
    for miss in missed[:10]:
        print(f"  missed {miss['missing']}: {miss['question']}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
