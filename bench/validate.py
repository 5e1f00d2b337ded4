"""Per-call validation latency of the packaged JSON grammar vs ``json.loads`` + pydantic.

Documents of about 1 KB, 10 KB and 100 KB are generated deterministically (a list of order records).
For each size: the plain-Lark baseline (Lark's own JSON example grammar, LALR, basic lexer), Lark parse
of the packaged grammar (with positions), llguidance match, the full two-engine ``Grammar.validate``
(llguidance on the packaged grammar, Lark on its lexer-friendly copy), the typed
``Grammar.parse_json(text, Model)``, and the baselines ``json.loads`` and ``json.loads`` + pydantic.
The ratio ``validate / plain Lark`` comes from interleaved calls (plain, validate, plain, ...), so load
that drifts during the run weighs on both alike.

    python bench/validate.py [--json]
"""

from __future__ import annotations

import json
import random

import statistics
import time

from _common import bench_parser, emit, fmt_seconds, print_table, time_calls

import pydantic

import lark

import constrain

# Lark's own JSON example (examples/json_parser.py): the plain-Lark baseline, measured in the same run
LARK_EXAMPLE_GRAMMAR = r"""
    ?start: value
    ?value: object
          | array
          | string
          | SIGNED_NUMBER      -> number
          | "true"             -> true
          | "false"            -> false
          | "null"             -> null
    array  : "[" [value ("," value)*] "]"
    object : "{" [pair ("," pair)*] "}"
    pair   : string ":" value
    string : ESCAPED_STRING
    %import common.ESCAPED_STRING
    %import common.SIGNED_NUMBER
    %import common.WS
    %ignore WS
"""


class Line(pydantic.BaseModel):
    sku: str
    qty: int
    price: float


class Order(pydantic.BaseModel):
    id: int
    customer: str
    paid: bool
    note: str | None
    lines: list[Line]


ORDERS = pydantic.TypeAdapter(list[Order])
SIZES = {"1KB": 1_000, "10KB": 10_000, "100KB": 100_000}


def document(target_bytes: int, seed: int = 7) -> str:
    """A pretty-printed JSON list of orders, grown until it reaches ``target_bytes``."""
    rng = random.Random(seed)
    orders: list[dict[str, object]] = []
    text = "[]"
    while len(text.encode()) < target_bytes:
        orders.append(
            {
                "id": len(orders) + 1,
                "customer": f"customer-{rng.randrange(10_000):04d} \u00e9\u00e8",
                "paid": rng.random() < 0.5,
                "note": None if rng.random() < 0.5 else "leave at the door, ring twice",
                "lines": [
                    {"sku": f"SKU-{rng.randrange(10**6):06d}", "qty": rng.randrange(1, 9), "price": round(rng.uniform(1, 500), 2)}
                    for _ in range(rng.randrange(1, 4))
                ],
            }
        )
        text = json.dumps(orders, indent=2, ensure_ascii=False)
    return text


def paired_ratio(numerator, denominator, *, min_time: float = 1.0, min_rounds: int = 7) -> float:
    """median(numerator) / median(denominator) over interleaved calls."""
    numerator(), denominator()
    a: list[float] = []
    b: list[float] = []
    deadline = time.perf_counter() + min_time
    while len(a) < min_rounds or time.perf_counter() < deadline:
        for fn, out in ((denominator, b), (numerator, a)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a) / statistics.median(b)


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args()
    grammar = constrain.load_grammar("json")
    grammar.validate("[]")  # build both engines outside the timings
    plain = lark.Lark(LARK_EXAMPLE_GRAMMAR, parser="lalr", lexer="basic")
    figures: dict[str, float | int] = {}
    rows = []
    for label, size in SIZES.items():
        text = document(size)
        assert ORDERS.validate_python(json.loads(text)) == grammar.parse_json(text, list[Order])
        timings = {
            "json_loads": time_calls(lambda: json.loads(text)),
            "json_loads_pydantic": time_calls(lambda: ORDERS.validate_python(json.loads(text))),
            "plain_lark_parse": time_calls(lambda: plain.parse(text)),
            "lark_parse": time_calls(lambda: grammar.parse(text)),
            "llguidance_match": time_calls(lambda: grammar.matches(text)),
            "validate": time_calls(lambda: grammar.validate(text)),
            "parse_json_model": time_calls(lambda: grammar.parse_json(text, list[Order])),
        }
        medians = {name: t.median for name, t in timings.items()}
        ratio = medians["validate"] / medians["json_loads_pydantic"]
        typed_ratio = medians["parse_json_model"] / medians["json_loads_pydantic"]
        plain_ratio = paired_ratio(lambda: grammar.validate(text), lambda: plain.parse(text))
        rows.append(
            [
                f"{label} ({len(text.encode()):,} B)",
                fmt_seconds(medians["json_loads"]),
                fmt_seconds(medians["json_loads_pydantic"]),
                fmt_seconds(medians["plain_lark_parse"]),
                fmt_seconds(medians["lark_parse"]),
                fmt_seconds(medians["llguidance_match"]),
                fmt_seconds(medians["validate"]),
                fmt_seconds(medians["parse_json_model"]),
                f"{ratio:,.0f}x",
                f"{plain_ratio:.2f}x",
            ]
        )
        key = label.lower()
        figures[f"{key}_bytes"] = len(text.encode())
        figures.update({f"{key}_{name}_s": value for name, value in medians.items()})
        figures[f"{key}_validate_vs_json_pydantic_ratio"] = ratio
        figures[f"{key}_parse_json_model_vs_json_pydantic_ratio"] = typed_ratio
        figures[f"{key}_validate_vs_plain_lark_ratio"] = plain_ratio
        figures[f"{key}_llguidance_bytes_per_s"] = len(text.encode()) / medians["llguidance_match"]
    print_table(
        [
            "document",
            "json.loads",
            "json.loads + pydantic",
            "plain Lark (example grammar)",
            "Lark LALR parse",
            "llguidance match",
            "validate (both)",
            "parse_json(text, Model)",
            "validate / (loads+pydantic)",
            "validate / plain Lark (interleaved)",
        ],
        rows,
    )
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
