"""``constrain grammars``, ``constrain check``, ``constrain validate``."""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable, Iterator

from ..errors import ConstrainError, GrammarError, InputError
from ..grammar import available_grammars, load_grammar
from ..grammar.lint import TARGETS
from ._output import Output, add_json_flag, decode_utf8, read_output_file


Validator = Callable[[str], Any]

# Modules that add their own validators to `constrain validate`. Each provides
# `add_validator_arguments(parser)` and `validator_from_args(args) -> (label, validator) | None`.
VALIDATOR_PLUGINS: tuple[str, ...] = ("constrain.cli._sql_cmds", "constrain.cli._json_cmds")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("grammars", help="list the packaged grammars")
    add_json_flag(p)
    p.set_defaults(handler=cmd_grammars)

    p = sub.add_parser("check", help="check a grammar against lark-python, llguidance and the lint")
    p.add_argument("grammar", help="a packaged grammar name (see `constrain grammars`) or a .lark path")
    p.add_argument(
        "--target",
        action="append",
        choices=sorted(TARGETS),
        metavar="TARGET",
        help=f"also report what a deployment target refuses or treats differently ({', '.join(sorted(TARGETS))}); "
        "repeatable",
    )
    add_json_flag(p)
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("validate", help="validate outputs (whole files, or one per line with --lines)")
    p.add_argument("--grammar", "-g", help="packaged grammar name or .lark path")
    p.add_argument("files", nargs="*", metavar="FILE", help="files to validate whole ('-' for stdin)")
    p.add_argument("--lines", metavar="FILE", help="validate each line of FILE as one output")
    for plugin in VALIDATOR_PLUGINS:
        importlib.import_module(plugin).add_validator_arguments(p)
    add_json_flag(p)
    p.set_defaults(handler=cmd_validate)


def cmd_grammars(args: argparse.Namespace, out: Output) -> int:
    infos = available_grammars()
    width = max((len(i.name) for i in infos), default=0)
    for info in infos:
        out.line(f"{info.name:<{width}}  {info.description}")
        out.json({"name": info.name, "description": info.description})
    return 0


def cmd_check(args: argparse.Namespace, out: Output) -> int:
    grammar = load_grammar(args.grammar)
    diagnostics = grammar.check(targets=tuple(getattr(args, "target", None) or ()))
    errors = [d for d in diagnostics if d.severity == "error"]
    for d in diagnostics:
        out.line(f"{grammar.name}:{d}")
    summary = f"{grammar.name}: {len(errors)} error(s), {len(diagnostics) - len(errors)} other finding(s)"
    out.line(summary if diagnostics else f"{grammar.name}: clean")
    out.json({"grammar": grammar.name, "ok": not errors, "diagnostics": [d.to_dict() for d in diagnostics]})
    return 1 if errors else 0


def grammar_validator(args: argparse.Namespace) -> tuple[str, Validator]:
    if not args.grammar:
        raise InputError("validate needs --grammar (or another validator option)")
    grammar = load_grammar(args.grammar)
    return grammar.name, grammar.parse_typed


def cmd_validate(args: argparse.Namespace, out: Output) -> int:
    label, validator = select_validator(args)
    inputs = list(_inputs(args))
    if not inputs:
        raise InputError("nothing to validate: give FILE arguments or --lines FILE")
    failures = 0
    for item in out.progress(inputs, len(inputs), f"validating against {label}"):
        record = _validate_one(validator, item)
        failures += not record["ok"]
        out.json(record)
        where = f"{item['source']}" + (f":{item['line']}" if "line" in item else "")
        if record["ok"]:
            out.line(f"{where}: ok")
        else:
            out.line(f"{where}: {record['error']['message'] if isinstance(record['error'], dict) else record['error']}")
    summary = {"summary": True, "total": len(inputs), "passed": len(inputs) - failures, "failed": failures}
    out.line(f"{len(inputs) - failures}/{len(inputs)} passed, {failures} failed ({label})")
    out.json(summary)
    return 1 if failures else 0


def select_validator(args: argparse.Namespace) -> tuple[str, Validator]:
    for plugin in VALIDATOR_PLUGINS:
        chosen = importlib.import_module(plugin).validator_from_args(args)
        if chosen is not None:
            return chosen  # type: ignore[no-any-return]
    return grammar_validator(args)


def _validate_one(validator: Validator, item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {k: v for k, v in item.items() if k in ("source", "line")}
    if "error" in item:
        record.update(ok=False, error=item["error"])
        return record
    text = item["text"]
    try:
        if text == "":
            raise InputError("empty input")
        validator(text)
    except GrammarError:
        raise  # a broken grammar is fatal, not a failure of this input
    except ConstrainError as exc:
        to_dict = getattr(exc, "to_dict", None)
        error = to_dict() if callable(to_dict) else {"type": type(exc).__name__, "message": str(exc)}
        error.setdefault("message", str(exc))
        error["message"] = str(exc).splitlines()[0]
        record.update(ok=False, error=error)
    else:
        record.update(ok=True, error=None)
    return record


def _inputs(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    for path in args.files:
        try:
            yield {"source": path, "text": read_output_file(path)}
        except InputError as exc:
            yield {"source": path, "error": _input_error(exc)}
    if args.lines:
        raw_lines = _read_raw(args.lines).split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        for number, raw in enumerate(raw_lines, start=1):
            raw = raw.removesuffix(b"\r")
            try:
                yield {"source": args.lines, "line": number, "text": decode_utf8(raw, source="")}
            except InputError as exc:
                yield {"source": args.lines, "line": number, "error": _input_error(exc)}


def _input_error(exc: InputError) -> dict[str, Any]:
    message = str(exc)
    if exc.source and message.startswith(f"{exc.source}: "):
        message = message[len(exc.source) + 2 :]  # the record names the source already
    return {"type": "InputError", "message": message, "offset": exc.offset}


def _read_raw(path: str) -> bytes:
    import sys
    from pathlib import Path

    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
