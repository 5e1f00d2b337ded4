"""``constrain batch run | submit | status | collect | cancel``: thin layers over ``constrain.batch``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._output import Output, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("batch", help="thousands of prompts online or through the OpenAI Batch API; every output validated")
    commands = p.add_subparsers(dest="batch_command", metavar="SUBCOMMAND")
    commands.required = True

    run = commands.add_parser("run", help="online: send every item to a provider, N at a time (resumable)")
    _add_input_arguments(run)
    run.add_argument("--concurrency", "-c", type=int, default=16,
                     help="requests in flight at most (default 16); halved on a rate limit, raised back as requests succeed")
    run.add_argument("--no-adaptive", dest="adaptive", action="store_false",
                     help="keep the concurrency fixed (a rate limit that outlives the retries pauses every worker)")
    run.add_argument("--max-attempts", type=int, default=3, help="generate-validate attempts per item (default 3)")
    run.add_argument("--timeout", type=float, default=None, help="seconds per HTTP request")
    run.add_argument("--retry-failed", action="store_true", help="send the items that failed in an earlier run again")
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="Batch API: upload the items and create batches (resumable)")
    _add_input_arguments(submit)
    submit.add_argument("--max-attempts", type=int, default=3,
                        help="rounds per item: `collect` sends an output the validator refuses back with its feedback "
                             "in a follow-up batch, up to this many batches per item (default 3)")
    submit.add_argument("--retry-failed", action="store_true", help="put the failed items into a new batch (also after a cancel)")
    submit.add_argument("--max-requests-per-file", type=int, default=50_000, help="split files at this many lines (default 50000)")
    submit.set_defaults(handler=cmd_submit)

    status = commands.add_parser("status", help="Batch API: the state of every batch of a folder")
    status.add_argument("folder", help="the -o folder of `batch submit`")
    status.add_argument("--wait", action="store_true", help="poll with backoff until every batch has finished")
    status.add_argument("--poll-interval", type=float, default=10.0, help="first polling interval in seconds (default 10)")
    status.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    status.add_argument("--base-url", help="override the server URL stored at submit")
    add_json_flag(status)
    status.set_defaults(handler=cmd_status)

    collect = commands.add_parser("collect", help="Batch API: download, validate and record the outputs; "
                                                       "refused ones go into a follow-up round with the validator's feedback")
    collect.add_argument("folder", help="the -o folder of `batch submit`")
    collect.add_argument("--base-url", help="override the server URL stored at submit")
    collect.add_argument("--sql-db", metavar="DB", help="the database of a SQL batch again (a URL's password is never stored)")
    collect.add_argument("--wait", action="store_true", help="poll, collect and submit the follow-up rounds until every item is finished")
    collect.add_argument("--poll-interval", type=float, default=10.0, help="with --wait: first polling interval in seconds (default 10)")
    collect.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    collect.add_argument("--max-attempts", type=int, default=None, help="change the rounds per item given at submit")
    add_json_flag(collect)
    collect.set_defaults(handler=cmd_collect)

    cancel = commands.add_parser("cancel", help="Batch API: cancel the running batches; a later `collect` takes what ran")
    cancel.add_argument("folder", help="the -o folder of `batch submit`")
    cancel.add_argument("--base-url", help="override the server URL stored at submit")
    add_json_flag(cancel)
    cancel.set_defaults(handler=cmd_cancel)


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="JSONL: one {\"prompt\": ..., \"id\": ...} object per line")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--grammar", "-g", help="packaged grammar name or .lark path")
    which.add_argument("--schema", help="JSON Schema file")
    which.add_argument("--sql-db", metavar="DB", help="database (URL, SQLite or .duckdb file, packaged name): "
                       "the prompt is the question")
    p.add_argument("--sql-schema", dest="sql_schemas", action="append", default=[], metavar="NAME",
                   help="with --sql-db: also read this schema's tables (PostgreSQL/DuckDB schema, MySQL database), "
                   "named NAME.table (repeatable; '*' reads every schema but the engine's own)")
    p.add_argument("--schema-budget", dest="sql_schema_budget", type=int, default=None, metavar="TOKENS",
                   help="with --sql-db: the schema part of each prompt in tokens; a larger schema is linked to each "
                   "question (default: as for `constrain sql`; 0: the whole schema)")
    p.add_argument("-o", "--out", required=True, help="output folder (results.jsonl, failures.jsonl, state.sqlite)")
    p.add_argument("--provider", "-p", help="openai, openai-chat, vllm, sglang, ... (default: as for `generate`)")
    p.add_argument("--base-url", help="server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", "-m", help="model name")
    p.add_argument("--max-tokens", type=int, default=None, help="output tokens per request")
    add_json_flag(p)


def _constraint(args: argparse.Namespace) -> dict[str, Any]:
    return {"grammar": args.grammar, "schema": args.schema, "sql_db": args.sql_db, "sql_schemas": args.sql_schemas,
            "sql_schema_budget": args.sql_schema_budget}


def _log(out: Output) -> Any:
    def log(message: str) -> None:
        print(f"constrain: {message}", file=out.stderr, flush=True)

    return log


def _report(summary: Any, out: Output) -> int:
    out.line(summary.describe())
    out.json(summary.to_dict())
    if not summary.finished:
        return 3
    return 1 if summary.counts.failed else 0


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    from ..batch import run_batch

    summary = run_batch(args.input, args.out, **_constraint(args), provider=args.provider, base_url=args.base_url, model=args.model,
                        concurrency=args.concurrency, adaptive=args.adaptive, max_attempts=args.max_attempts,
                        max_tokens=args.max_tokens, timeout=args.timeout, retry_failed=args.retry_failed,
                        progress=sys.stderr.isatty())
    return _report(summary, out)


def cmd_submit(args: argparse.Namespace, out: Output) -> int:
    from ..batch import submit_batch

    summary = submit_batch(args.input, args.out, **_constraint(args), provider=args.provider, base_url=args.base_url,
                           model=args.model, max_tokens=args.max_tokens, max_attempts=args.max_attempts, retry_failed=args.retry_failed,
                           max_lines=args.max_requests_per_file, log=_log(out))
    out.line(summary.describe())
    out.line(f"next: constrain batch collect {args.out} --wait")
    out.json(summary.to_dict())
    return 0


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    from ..batch import batch_status

    def show(shards: list[dict[str, Any]]) -> None:
        if args.wait and not out.json_mode and sys.stderr.isatty():
            states = ", ".join(f"{s['status']}" for s in shards)
            print(f"\rbatches: {states}   ", end="", file=out.stderr, flush=True)

    summary = batch_status(args.folder, wait=args.wait, poll_interval=args.poll_interval, timeout=args.timeout,
                           base_url=args.base_url, on_poll=show)
    if args.wait and not out.json_mode and sys.stderr.isatty():
        print(file=out.stderr)
    out.line(summary.describe())
    out.json(summary.to_dict())
    return 0


def cmd_collect(args: argparse.Namespace, out: Output) -> int:
    from ..batch import collect_batch

    def show(shards: list[dict[str, Any]]) -> None:
        if not out.json_mode and sys.stderr.isatty():
            states = ", ".join(f"{s['status']}" for s in shards if not s["collected"])
            print(f"\rbatches: {states}   ", end="", file=out.stderr, flush=True)

    summary = collect_batch(args.folder, base_url=args.base_url, log=_log(out) if not out.json_mode else None,
                            sql_db=args.sql_db, max_attempts=args.max_attempts, wait=args.wait,
                            poll_interval=args.poll_interval, timeout=args.timeout, on_poll=show)
    if args.wait and not out.json_mode and sys.stderr.isatty():
        print(file=out.stderr)
    return _report(summary, out)


def cmd_cancel(args: argparse.Namespace, out: Output) -> int:
    from ..batch import cancel_batch

    summary = cancel_batch(args.folder, base_url=args.base_url, log=_log(out) if not out.json_mode else None)
    cancelling = [b for b in summary.batches if b["cancel_requested"] and b["status"] in ("cancelling", "cancelled")]
    if cancelling:
        out.line(f"cancelled {len(cancelling)} batch{'es' if len(cancelling) != 1 else ''}; no further round will be submitted")
    else:
        out.line("no batch was running; no further round will be submitted")
    out.line(summary.describe())
    out.line(f"next: constrain batch collect {args.folder} --wait   (takes what ran; the rest ends in failures.jsonl "
             "as BatchCancelled, and `submit ... --retry-failed` sends it again)")
    out.json(summary.to_dict())
    return 0
