"""``constrain generate`` and ``constrain sql``: thin layers over ``constrain.generate`` and ``constrain.sql.ask``."""

from __future__ import annotations

import argparse

from typing import Any, Callable

from ..errors import GenerationError, InputError
from ._sql_cmds import add_schema_budget_argument
from ._output import Output, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "generate",
        help="generate an output that matches a grammar or a JSON Schema (validated locally)",
        description="Generate with a grammar (--grammar), or a JSON config conforming to a JSON Schema "
        "(--schema) or a pydantic model (--model-class); the validated output is printed.",
    )
    p.add_argument("prompt", help="what to ask the model")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--grammar", "-g", help="packaged grammar name or .lark path")
    target.add_argument("--schema", metavar="SCHEMA.json", help="a JSON Schema file ('-' for stdin): print conforming JSON")
    target.add_argument("--model-class", metavar="MODULE:MODEL", help="a pydantic model: print JSON that validates as it")
    p.add_argument("--fields", metavar="SPEC",
                   help="with --grammar dsl/filter or dsl/chart: only these fields, each with values of its type; "
                        "SPEC is module:Model (pydantic), SCHEMA.json, name:type,... (string, number, integer, "
                        "boolean, date) or sqlite:PATH:TABLE")
    p.add_argument("--records", metavar="NOUN", default=None,
                   help="with --grammar dsl/filter or dsl/chart --fields: what requests call the records, a plural "
                        "noun ('orders'); the model's worked examples are phrased with it (default 'records')")
    p.add_argument("--widen", action="store_true", help="with --schema/--model-class: leave keywords a grammar cannot state to the validator")
    p.add_argument("--system", help="a system message (default: answer in the format the grammar describes)")
    p.add_argument("--candidates", "-k", type=int, default=1, metavar="K",
                   help="draw K outputs a round and print the value most of them agree on (default 1; the "
                        "local model decodes them together, a remote provider gets K sampled requests)")
    p.add_argument("--no-describe", dest="describe", action="store_false",
                   help="do not tell the model the grammar's description and examples (or the schema's fields)")
    _add_generation_arguments(p)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("sql", help="ask a question about a database; get a validated query (and rows)")
    p.add_argument("question", help="the question, in natural language")
    p.add_argument("--db", required=True, metavar="DB",
                   help="a database URL (postgresql://user:pw@host/db, mysql://..., mariadb://..., duckdb:///file, "
                        "sqlite:///file), a SQLite or .duckdb file, or a packaged name (chinook)")
    p.add_argument("--dialect", default=None, help="SQL dialect of the query (default: the database's)")
    p.add_argument("--schema", dest="schemas", action="append", default=[], metavar="NAME",
                   help="also read the tables of this schema (PostgreSQL/DuckDB schema, MySQL database), named "
                        "NAME.table; repeatable; '*' reads every schema but the engine's own (default: the "
                        "connection's current schema only)")
    p.add_argument("--run", action="store_true", help="run the validated query (read-only) and print the rows")
    p.add_argument("--max-rows", type=int, default=1000, help="at most this many rows (default 1000; truncation is reported)")
    p.add_argument("--candidates", "-k", type=int, default=None, metavar="K",
                   help="draft K queries, run each, answer with the largest group of equal results "
                        "(default: the provider's, 2 for local, 1 for remote providers)")
    p.add_argument("--no-schema-repairs", dest="schema_repairs", action="store_false",
                   help="never apply the one change a schema error proposes (a join along a foreign key, "
                        "the qualifier that has the column); re-ask instead")
    add_schema_budget_argument(p)
    _add_generation_arguments(p)
    p.set_defaults(handler=cmd_sql)


def _add_generation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", "-p", help="openai, openai-chat, azure, vllm, llamacpp, sglang, local "
                   "(default: CONSTRAIN_PROVIDER, else openai with OPENAI_API_KEY or CONSTRAIN_BASE_URL, else local)")
    p.add_argument("--model", "-m", help="model name (or a GGUF path for the local provider)")
    p.add_argument("--base-url", help="server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--max-attempts", type=int, default=3, help="attempts before giving up (default 3)")
    p.add_argument("--max-tokens", type=int, default=None, help="output tokens per attempt")
    p.add_argument("--max-total-tokens", type=int, default=None, help="token budget over all attempts")
    p.add_argument("--timeout", type=float, default=None, help="seconds per HTTP request")
    p.add_argument("--stream", action="store_true", help="print the output as it arrives (stderr in --json mode)")
    add_json_flag(p)


def _provider(args: argparse.Namespace) -> Any:
    from .. import providers

    options: dict[str, Any] = {"model": args.model, "base_url": args.base_url}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    return providers.from_env(args.provider, **options)


def _streamer(args: argparse.Namespace, out: Output) -> Callable[[str], None] | None:
    if not args.stream:
        return None
    target = out.stderr if out.json_mode else out.stdout

    def show(delta: str) -> None:
        target.write(delta)
        target.flush()

    return show


def _end_stream(args: argparse.Namespace, out: Output) -> None:
    if args.stream:
        print(file=out.stderr if out.json_mode else out.stdout, flush=True)


def _report_failure(exc: GenerationError, out: Output) -> int:
    attempts = [a.to_dict() for a in exc.attempts]
    for a in attempts:
        message = (a.get("error") or {}).get("message", "")
        out.line(f"attempt {a['number']}: {message}")
        out.line(f"  output: {a['raw']!r}")
    record: dict[str, Any] = {"ok": False, "error": {"type": "GenerationError", "message": str(exc)}, "attempts": attempts}
    if exc.prompt_tables:  # sql: what the prompts held, to tell a retrieval miss from a model's slip
        record["prompt_tables"] = [p.to_dict() for p in exc.prompt_tables]
    out.json(record)
    out.error(str(exc))
    return 1


def _note_attempts(result: Any, out: Output) -> None:
    failed = [a for a in result.attempts if not a.ok]
    for a in failed:
        print(f"constrain: attempt {a.number} rejected: {str(a.error).splitlines()[0]}", file=out.stderr, flush=True)


def _target_grammar(args: argparse.Namespace) -> Any:
    """The grammar for ``--grammar`` (bound to ``--fields``), or the schema grammar (validator attached) for
    ``--schema`` / ``--model-class``."""
    from ..grammar import load_grammar

    fields = getattr(args, "fields", None)
    if fields is None and getattr(args, "records", None) is not None:
        raise InputError("--records names the records of a DSL bound to --fields: use it with --grammar dsl/filter "
                         "or dsl/chart and --fields SPEC")
    if fields is not None:
        from .. import dsl

        binders = {"dsl/filter": dsl.filter.grammar, "dsl/chart": dsl.chart.grammar}
        if args.grammar not in binders:
            raise InputError("--fields binds a packaged DSL to your fields: use it with --grammar dsl/filter "
                             "or --grammar dsl/chart")
        options = {} if getattr(args, "records", None) is None else {"records": args.records}
        return binders[args.grammar](dsl.load_fields(fields), name=f"{args.grammar}[{fields}]", **options)
    if args.grammar:
        return load_grammar(args.grammar)
    from ..json_schema import grammar as schema_grammar, load_schema

    spec = args.schema or args.model_class
    if args.model_class and ":" not in args.model_class:
        raise InputError("expected module:Model", source=args.model_class)
    return schema_grammar(load_schema(spec), widen=args.widen)


def cmd_generate(args: argparse.Namespace, out: Output) -> int:
    from ..generate import generate

    grammar = _target_grammar(args)
    try:
        result = generate(
            args.prompt,
            grammar=grammar,
            provider=_provider(args),
            system=args.system,
            max_attempts=args.max_attempts,
            max_tokens=args.max_tokens,
            max_total_tokens=args.max_total_tokens,
            on_delta=_streamer(args, out) if args.candidates == 1 else None,
            candidates=args.candidates,
            describe=args.describe,
        )
    except GenerationError as exc:
        _end_stream(args, out)
        return _report_failure(exc, out)
    _end_stream(args, out)
    _note_attempts(result, out)
    if args.candidates > 1:
        print(f"constrain: {result.agreement} of the last round's candidates gave this value", file=out.stderr, flush=True)
    if not args.stream or args.candidates > 1:  # candidates do not stream
        out.line(result.raw)
    extra: dict[str, Any] = {}
    if not args.grammar:  # the validated value, as JSON
        value = result.value.model_dump(mode="json") if hasattr(result.value, "model_dump") else result.value
        extra["value"] = value
    out.json({"ok": True, "output": result.raw, **result.to_dict(), **extra})
    return 0


def cmd_sql(args: argparse.Namespace, out: Output) -> int:
    with _read_catalog(args, out) as database:
        return _answer_sql(args, out, database)


def _read_catalog(args: argparse.Namespace, out: Output) -> Any:
    """The database of ``--db``, its catalog read (said on stderr when that takes more than a second)."""
    from ..sql import connect
    from ..sql.ask import SAMPLE_VALUES

    database = connect(args.db, samples=SAMPLE_VALUES, schemas=args.schemas)
    try:
        with out.when_slow(f"reading the catalog of {database.url}") as done:
            done(f"{len(database.schema.tables)} tables read")
    except BaseException:
        database.close()
        raise
    return database


def _answer_sql(args: argparse.Namespace, out: Output, database: Any) -> int:
    from ..sql import ask

    try:
        answer = ask(
            args.question,
            db=database,
            provider=_provider(args),
            run=args.run,
            dialect=args.dialect,
            max_attempts=args.max_attempts,
            max_tokens=args.max_tokens if args.max_tokens is not None else 512,
            max_total_tokens=args.max_total_tokens,
            max_rows=args.max_rows,
            on_delta=_streamer(args, out),
            candidates=args.candidates,
            schema_repairs=args.schema_repairs,
            schemas=args.schemas,
            schema_budget=args.schema_budget,
        )
    except GenerationError as exc:
        _end_stream(args, out)
        return _report_failure(exc, out)
    _end_stream(args, out)
    _note_attempts(answer.result, out)
    if answer.vote is not None:
        _note_vote(answer, out)
    for change in answer.query.rewrites:  # what runs is not the model's text: say how it differs
        print(f"constrain: {change}", file=out.stderr, flush=True)
    if not args.stream or answer.query.rewritten or answer.vote is not None:  # candidates do not stream
        out.line(answer.sql)
    if answer.rows is not None:
        _print_rows(answer.rows, out)
    out.json({"ok": True, **answer.to_dict()})
    return 0


def _note_vote(answer: Any, out: Output) -> None:
    vote = answer.vote
    sizes = "+".join(str(len(members)) for _, members in vote.groups) or "none"
    print(f"constrain: {len(answer.candidates)} candidates, results grouped {sizes}; "
          f"candidate {vote.winner} chosen ({vote.rule})", file=out.stderr, flush=True)


def _cell(value: Any) -> str:
    """A value as the database's own shell shows it: NULL; a float to 15 significant digits, as sqlite3's
    and psql's shells print it (49.62, not 49.620000000000005); anything else (a Decimal keeps its
    scale) as ``str``. Only the table output: ``--json`` keeps the exact values."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        shown = f"{value:.15g}"
        return shown if any(c in shown for c in ".eni") else shown + ".0"
    return str(value)


def _print_rows(rows: Any, out: Output) -> None:
    out.line()
    table = [list(rows.columns)] + [[_cell(v) for v in row] for row in rows.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(rows.columns))]
    for i, row in enumerate(table):
        out.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            out.line("  ".join("-" * w for w in widths))
    more = f", truncated at --max-rows {rows.max_rows}" if rows.truncated else ""
    out.line(f"({len(rows.rows)} row{'s' if len(rows.rows) != 1 else ''}{more})")



