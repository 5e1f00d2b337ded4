"""``constrain sample`` (what may a model write?) and ``constrain explain`` (where does a text fail?)."""

from __future__ import annotations

import argparse
import random
from typing import Any

from ..errors import InputError, ValidationError
from ..explain import Verdict, explain, lark_verdict
from ..grammar import load_grammar
from ._output import Output, add_json_flag, read_output_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sample",
        help="draw random strings the grammar admits (llguidance walk over bytes)",
        description="Draw N random strings from GRAMMAR with llguidance (a byte-level random walk), "
        "re-parse each with lark-python, and flag any the engines disagree on (exit 1).",
    )
    p.add_argument("grammar", help="a packaged grammar name or a .lark path")
    p.add_argument("-n", type=int, default=10, metavar="N", help="how many strings (default 10)")
    p.add_argument("--seed", type=int, default=None, help="random seed; the same seed draws the same strings")
    p.add_argument("--max-bytes", type=int, default=400, help="drop walks longer than this (default 400)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser(
        "explain",
        help="show where a text fails in each engine, side by side",
        description="Run TEXT through lark-python and llguidance (and the grammar's typed check when "
        "both accept), and show each verdict with its position and expected input. Exit 1 if any refuses.",
    )
    p.add_argument("grammar", help="a packaged grammar name or a .lark path")
    p.add_argument("text", nargs="?", help="the text to explain (or use --file)")
    p.add_argument("--file", "-f", metavar="FILE", help="read the text from FILE ('-' for stdin)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_explain)


# -- sample ------------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace, out: Output) -> int:
    if args.n < 1:
        raise InputError(f"-n must be at least 1, got {args.n}")
    if args.max_bytes < 1:
        raise InputError(f"--max-bytes must be at least 1, got {args.max_bytes}")
    grammar = load_grammar(args.grammar)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    samples = grammar.sample(args.n, seed=seed, max_bytes=args.max_bytes)
    multiline = any("\n" in s for s in samples)
    refused = 0
    for index, text in enumerate(samples, start=1):
        verdict = lark_verdict(grammar, text)
        refused += not verdict.ok
        out.json({"index": index, "text": text, "lark_ok": verdict.ok, "error": _error_dict(verdict.error)})
        if multiline:
            out.line(f"--- sample {index} ---")
        out.line(text.removesuffix("\n") if multiline else text)
        if not verdict.ok and verdict.error is not None:
            out.error(f"sample {index} is refused by lark-python, the engines disagree: {verdict.error.reason}")
    note = "" if len(samples) == args.n else f" (walks longer than --max-bytes {args.max_bytes} were dropped)"
    summary = {"summary": True, "grammar": grammar.name, "seed": seed, "requested": args.n, "drawn": len(samples),
               "lark_refused": refused}
    out.json(summary)
    if not out.json_mode:
        print(f"{grammar.name}: {len(samples)} of {args.n} drawn with --seed {seed}{note}; "
              f"lark refused {refused}", file=out.stderr, flush=True)
    if not samples:
        out.error(f"no walk of {grammar.name} ended within {args.max_bytes} bytes; raise --max-bytes")
        return 1
    return 1 if refused else 0


# -- explain -----------------------------------------------------------------------------------------


def _error_dict(error: ValidationError | None) -> dict[str, Any] | None:
    return None if error is None else error.to_dict()


def cmd_explain(args: argparse.Namespace, out: Output) -> int:
    if (args.text is None) == (args.file is None):
        raise InputError("explain needs the text either as an argument or with --file (not both)")
    text = args.text if args.text is not None else read_output_file(args.file)
    grammar = load_grammar(args.grammar)
    explanation = explain(grammar, text)
    verdicts, ok, agree = list(explanation.verdicts), explanation.ok, explanation.agree
    out.json(explanation.to_dict())
    if out.json_mode:
        return 0 if ok else 1

    width = max(len(v.engine) for v in verdicts)
    for v in verdicts:
        if v.ok:
            out.line(f"{v.engine:<{width}}  accepts")
            continue
        assert v.error is not None
        err = v.error
        out.line(f"{v.engine:<{width}}  refuses at {err.line}:{err.column} (byte {err.offset}): {err.reason}")
        expected = v.expected
        if expected:
            shown = ", ".join(expected[:16]) + (f", ... ({len(expected) - 16} more)" if len(expected) > 16 else "")
            out.line(f"{'':<{width}}  expected: {shown}")
    failures = [v for v in verdicts if not v.ok and v.error is not None and v.error.line is not None]
    if failures:
        out.line()
        for line in _carets(text, failures):
            out.line(line)
    if not agree:
        which = verdicts[0].engine if verdicts[0].ok else verdicts[1].engine
        out.line()
        out.line(f"the engines disagree: only {which} accepts this text; a model constrained by llguidance "
                 f"{'can' if verdicts[1].ok else 'cannot'} write it. Run `constrain check {grammar.name}`.")
    return 0 if ok else 1


def _carets(text: str, failures: list[Verdict]) -> list[str]:
    """Each failing source line once, with a caret line per distinct position naming the engines."""
    lines = text.split("\n")
    by_line: dict[int, dict[int, list[str]]] = {}
    for v in failures:
        assert v.error is not None and v.error.line is not None and v.error.column is not None
        by_line.setdefault(v.error.line, {}).setdefault(v.error.column, []).append(v.engine)
    out: list[str] = []
    for number in sorted(by_line):
        source = lines[number - 1] if number - 1 < len(lines) else ""
        source = source.replace("\t", " ").replace("\r", " ")
        columns = sorted(by_line[number])
        start = max(0, min(columns[0] - 1 - _WINDOW // 2, len(source) - _WINDOW))
        lead = "..." if start else ""
        tail = "..." if start + _WINDOW < len(source) else ""
        out.append(f"{number:>4} | {lead}{source[start:start + _WINDOW]}{tail}")
        for column in columns:
            out.append(f"{'':>4} | {' ' * (len(lead) + column - 1 - start)}^ {', '.join(by_line[number][column])}")
    return out


_WINDOW = 100
