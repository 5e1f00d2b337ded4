"""JSON Schema -> grammar on real schemas: coverage, acceptance of valid instances, false accepts, compile time.

Corpora (read from ../shared/corpora, or $CONSTRAIN_CORPORA):
  jsonschemabench/maskbench/*.json                       1,000 real-world schemas with valid/invalid instances
  json-schema-test-suite/tests/draft2020-12/*.json        the official suite (top-level files, not optional/)

For every schema: ``constrain.json_schema.grammar(schema, widen=..., declared_keys=False)`` (compiled =
no JSONSchemaError and both lark and llguidance build the grammar; ``declared_keys=False`` so that the
grammar is measured against the schema's whole language, undeclared keys included). Every valid instance, serialized compactly, must be
accepted by the validation pipeline (``parse_json``: JSON syntax in BOTH engines, then the validator,
any key order); the share the generation grammar itself accepts as given (it fixes declared key order)
is reported beside it. Every invalid instance must be refused by ``parse_json``: one that passes is a
false accept.

    python bench/jsonschema.py [--limit N] [--mode strict|widen|both] [--corpus maskbench|suite|both] [--json]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from _common import ROOT, bench_parser, emit, median, percentile, print_table

# this file's name would shadow the `jsonschema` package the validator imports
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from constrain.errors import ConstrainError, JSONSchemaError, ValidationError
from constrain.json_schema import grammar

CORPORA = Path(os.environ.get("CONSTRAIN_CORPORA", ROOT.parent / "shared" / "corpora"))


def maskbench(limit: int | None, every: int = 1) -> Iterator[tuple[str, Any, list[tuple[Any, bool]]]]:
    files = sorted((CORPORA / "jsonschemabench" / "maskbench").glob("*.json"))[::every]
    for path in files[:limit]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        yield path.stem, doc["schema"], [(t["data"], bool(t["valid"])) for t in doc["tests"]]


def suite(limit: int | None, every: int = 1) -> Iterator[tuple[str, Any, list[tuple[Any, bool]]]]:
    files = sorted((CORPORA / "json-schema-test-suite" / "tests" / "draft2020-12").glob("*.json"))
    count = 0
    for path in files:
        if path.name == "format.json":
            continue  # format as an annotation only; constrain asserts every format (optional/format)
        for group in json.loads(path.read_text(encoding="utf-8")):
            if limit is not None and count >= limit:
                return
            count += 1
            yield f"{path.stem}: {group['description']}", group["schema"], [
                (t["data"], bool(t["valid"])) for t in group["tests"]
            ]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def run(cases: list[tuple[str, Any, list[tuple[Any, bool]]]], *, widen: bool, progress: bool = False) -> dict[str, Any]:
    compiled = 0
    compile_times: list[float] = []
    refused: Counter[str] = Counter()
    crashes: list[str] = []
    valid_total = valid_in_compiled = valid_accepted = grammar_accepts = 0
    invalid_total = false_accepts = 0
    rejected_valid: list[str] = []
    earley = 0
    for name, schema, tests in cases:
        valid_total += sum(v for _, v in tests)
        if progress:
            print(f"  .. {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            g = grammar(schema, widen=widen, declared_keys=False)
            compile_times.append(time.perf_counter() - start)
            earley += g.parser == "earley"  # builds the lark parser too
        except JSONSchemaError as exc:
            refused[exc.keyword or "limits"] += 1
            continue
        except ConstrainError as exc:
            crashes.append(f"{name}: {str(exc).splitlines()[0][:160]}")
            continue
        except Exception as exc:  # a bug in the compiler: counted and shown, never hidden
            crashes.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
            continue
        compiled += 1
        for data, valid in tests:
            text = compact(data)
            if valid:
                valid_in_compiled += 1
                in_grammar = g.matches(text)
                if in_grammar:
                    try:
                        g.parse(text)
                    except ValidationError:
                        in_grammar = False
                grammar_accepts += in_grammar
                try:  # the pipeline for outside text: JSON syntax in both engines, then the validator
                    g.parse_json(text)
                    ok = True
                except ConstrainError:
                    ok = False
                valid_accepted += ok
                if not ok:
                    rejected_valid.append(f"{name}: {text[:100]}")
            else:
                invalid_total += 1
                try:
                    g.parse_json(text)
                except ConstrainError:
                    continue
                false_accepts += 1
                crashes.append(f"FALSE ACCEPT {name}: {text[:100]}")
    n = len(cases)
    return {
        "schemas": n,
        "compiled": compiled,
        "compiled_share": compiled / n if n else 0.0,
        "valid_instances": valid_total,
        "valid_in_compiled": valid_in_compiled,
        "valid_accepted": valid_accepted,
        "valid_accepted_share": valid_accepted / valid_in_compiled if valid_in_compiled else 0.0,
        "valid_accepted_share_of_all": valid_accepted / valid_total if valid_total else 0.0,
        "generation_grammar_accepts": grammar_accepts,
        "generation_grammar_accepts_share": grammar_accepts / valid_in_compiled if valid_in_compiled else 0.0,
        "invalid_checked": invalid_total,
        "false_accepts": false_accepts,
        "compile_median": median(compile_times) if compile_times else 0.0,
        "compile_p95": percentile(compile_times, 95) if compile_times else 0.0,
        "earley_grammars": earley,
        "refused_by_keyword": dict(refused.most_common()),
        "errors": crashes,
        "rejected_valid": rejected_valid,
    }


def main() -> int:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N schemas of each corpus")
    parser.add_argument("--every", type=int, default=1, help="only every Nth MaskBench schema (a deterministic sample)")
    parser.add_argument("--mode", choices=("strict", "widen", "both"), default="both")
    parser.add_argument("--corpus", choices=("maskbench", "suite", "both"), default="both")
    parser.add_argument("--verbose", action="store_true", help="list refused valid instances and errors")
    args = parser.parse_args()
    corpora = {"maskbench": maskbench, "suite": suite}
    chosen = list(corpora) if args.corpus == "both" else [args.corpus]
    modes = ["strict", "widen"] if args.mode == "both" else [args.mode]
    figures: dict[str, Any] = {}
    rows = []
    for corpus_name in chosen:
        cases = list(corpora[corpus_name](args.limit, args.every))
        if not cases:
            print(f"{corpus_name}: corpus not found under {CORPORA}", file=sys.stderr)
            continue
        for mode in modes:
            r = run(cases, widen=mode == "widen", progress=args.verbose)
            key = f"{corpus_name}_{mode}"
            rows.append(
                [
                    corpus_name,
                    mode,
                    f"{r['compiled']}/{r['schemas']} ({r['compiled_share']:.1%})",
                    f"{r['valid_accepted']}/{r['valid_in_compiled']} ({r['valid_accepted_share']:.1%})",
                    f"{r['valid_accepted_share_of_all']:.1%}",
                    f"{r['generation_grammar_accepts']}/{r['valid_in_compiled']}",
                    f"{r['false_accepts']}/{r['invalid_checked']}",
                    f"{r['compile_median'] * 1e3:.2f} ms",
                    f"{r['compile_p95'] * 1e3:.2f} ms",
                ]
            )
            if args.verbose:
                for line in r["errors"] + [f"rejected valid: {x}" for x in r["rejected_valid"]]:
                    print(f"  [{key}] {line}")
                print(f"  [{key}] refused by keyword: {r['refused_by_keyword']}")
            figures[key] = {k: v for k, v in r.items() if k not in ("errors", "rejected_valid")}
            figures[key]["error_count"] = len([e for e in r["errors"] if not e.startswith("FALSE ACCEPT")])
    print_table(
        ["corpus", "mode", "compiled", "valid accepted (compiled)", "valid accepted (all)", "generation grammar, as given", "invalid accepted", "compile median", "compile p95"],
        rows,
    )
    emit(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
