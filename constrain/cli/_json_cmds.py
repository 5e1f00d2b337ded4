"""``constrain json-grammar`` and the ``--schema`` validator of ``constrain validate``."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ._output import Output, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "json-grammar",
        help="compile a JSON Schema file or a pydantic model (module:Model) to a Lark grammar",
        description="Print the Lark grammar whose language is the JSON documents conforming to the schema.",
    )
    p.add_argument("schema", metavar="SCHEMA", help="SCHEMA.json ('-' for stdin) or package.module:Model")
    _add_compile_flags(p)
    add_json_flag(p)
    p.set_defaults(handler=cmd_json_grammar)


def _add_compile_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretty", action="store_true", help="allow bounded whitespace between tokens (default: compact)")
    p.add_argument(
        "--widen",
        action="store_true",
        help="leave keywords a grammar cannot state to the validator instead of refusing the schema",
    )


def cmd_json_grammar(args: argparse.Namespace, out: Output) -> int:
    from ..json_schema import grammar, load_schema, widenings  # 0.3 s of imports other commands skip

    g = grammar(load_schema(args.schema), compact=not args.pretty, widen=args.widen)
    widened = widenings(g)
    out.line(g.text.rstrip("\n"))
    for keyword, pointer in widened:
        print(f"constrain: warning: {keyword} at {pointer} is enforced by the validator only", file=out.stderr)
    out.json(
        {
            "schema": args.schema,
            "grammar": g.text,
            "parser": g.parser_choice,
            "widened": [{"keyword": k, "pointer": p} for k, p in widened],
        }
    )
    return 0


# -- `constrain validate --schema` ----------------------------------------------------------------------
def add_validator_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--schema",
        metavar="SCHEMA",
        help="validate JSON outputs against SCHEMA.json or package.module:Model (grammar, then the schema)",
    )
    p.add_argument("--widen", action="store_true", help="with --schema: compile with widen=True")


def validator_from_args(args: argparse.Namespace) -> tuple[str, Callable[[str], Any]] | None:
    if not getattr(args, "schema", None):
        return None
    from ..json_schema import grammar, load_schema

    g = grammar(load_schema(args.schema), widen=getattr(args, "widen", False))
    return f"schema {args.schema}", g.parse_typed
