"""DSL grammars before and after issue #15 (checks moved into the grammar): size, llguidance compile
and token-mask time, Lark parse time, and the share of random walks that today's full validation
(both engines, then the DSL's typed checks: what `constrain validate --grammar` runs) refuses.

    python bench/dsl.py [--before REV] [--walks N] [--json]

"before" is each grammar as of git revision REV (default: the commit before the change), read with
``git show``; "after" is the working tree. Mask time is per step while replaying random walks of the
grammar token by token, with a synthetic 32,000-token vocabulary (256 bytes plus seeded printable
strings of 2-8 bytes, the size of a small model's vocabulary; no model download needed): it counts how
the lexer's regexes scale with a vocabulary, not a particular model's tokenizer.
A "before" grammar's `// include:` lines resolve to today's packaged grammars: the "before" dsl/chart
embeds the tightened dsl/filter, so only its own aggregate rule differs.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_parser, emit, environment, fmt_seconds, median, print_table, time_calls

import llguidance

import constrain
from constrain.grammar.lint import judge_sample

BEFORE = "2c72d59"  # main before issue #15
NAMES = ("dsl/cron", "dsl/filter", "dsl/chart")
VOCAB = 32_000


class _Vocabulary:
    def __init__(self, size: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n"]
        seen = {bytes([i]) for i in range(256)}
        tokens = [bytes([i]) for i in range(256)]
        while len(tokens) < size - 1:
            token = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 8))).encode()
            if token not in seen:
                seen.add(token)
                tokens.append(token)
        self.tokens = tokens + [b"<eos>"]
        self.eos_token_id = len(tokens)
        self.bos_token_id = None
        self.special_token_ids = [self.eos_token_id]

    def __call__(self, data: bytes | str) -> list[int]:
        return list(data.encode("utf-8") if isinstance(data, str) else data)  # bytes are tokens 0-255


def _grammar_at(rev: str, name: str) -> str | None:
    try:
        return subprocess.run(["git", "show", f"{rev}:grammars/{name}.lark"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _mask_times(tokenizer: llguidance.LLTokenizer, lark_text: str, texts: list[str]) -> list[float]:
    template = llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_lark(lark_text), log_level=0)
    times = []
    for text in texts:
        matcher = template.deep_copy()
        for byte in text.encode("utf-8"):
            t0 = time.perf_counter()
            matcher.compute_bitmask()
            times.append(time.perf_counter() - t0)
            if not matcher.consume_token(byte):
                break
    return times


def measure(name: str, label: str, text: str, tokenizer: llguidance.LLTokenizer, walks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:  # a file, so that `// parser:` and `// include:` apply
        path = Path(tmp) / "grammar.lark"
        path.write_text(text, encoding="utf-8")
        grammar = constrain.load_grammar(path)
    text = grammar.text  # includes expanded: what a provider receives
    texts = grammar.sample(walks, seed=1)
    t0 = time.perf_counter()
    llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_lark(text), log_level=0)
    compile_s = time.perf_counter() - t0
    masks = _mask_times(tokenizer, text, texts[:20])
    parse = time_calls(lambda: [grammar.parse(t) for t in texts[:20]], min_time=0.5).median / max(1, len(texts[:20]))
    current = constrain.load_grammar(name)  # today's full validation: both engines, then the typed checks
    refused = sum(not judge_sample(current, t).ok for t in texts)
    return {
        "grammar": name, "version": label, "bytes": len(text.encode("utf-8")), "lark_parser": grammar.parser,
        "llg_compile_s": compile_s, "mask_median_s": median(masks), "mask_max_s": max(masks),
        "lark_parse_median_s": parse, "walks": len(texts), "refused_by_validation": refused,
    }


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"git revision of the 'before' grammars (default {BEFORE})")
    parser.add_argument("--walks", type=int, default=200, help="random walks per grammar (default 200)")
    args = parser.parse_args()
    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Vocabulary(VOCAB)))
    rows = []
    for name in NAMES:
        old = _grammar_at(args.before, name)
        if old is not None:
            rows.append(measure(name, "before", old, tokenizer, args.walks))
        rows.append(measure(name, "after", constrain.load_grammar(name).text, tokenizer, args.walks))
    print_table(
        ["grammar", "version", "bytes", "lark", "llg compile", "mask median", "mask max", "lark parse", "refused"],
        [[r["grammar"], r["version"], r["bytes"], r["lark_parser"], fmt_seconds(r["llg_compile_s"]),
          fmt_seconds(r["mask_median_s"]), fmt_seconds(r["mask_max_s"]), fmt_seconds(r["lark_parse_median_s"]),
          f"{r['refused_by_validation']}/{r['walks']}"] for r in rows],
    )
    emit({"environment": environment(), "vocabulary": VOCAB, "before": args.before, "rows": rows}, as_json=args.json)


if __name__ == "__main__":
    main()
