"""``constrain playground``: the grammar playground, a local web page over check, explain and sample."""

from __future__ import annotations

import argparse
import contextlib

from ._output import Output, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "playground",
        help="serve the grammar playground (a local web page) on 127.0.0.1",
        description="Serve a web page on 127.0.0.1 where a grammar and a test input are checked as you type: "
        "check findings per target, the hang probe, both engines' verdicts on the input, samples, and the "
        "exact request each provider would receive. Prints the URL; opens a browser only with --open.",
    )
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = a free one; default 8765)")
    p.add_argument("--grammar", metavar="NAME|FILE", help="the grammar to open with: a packaged name or a .lark path "
                   "(default dsl/cron)")
    p.add_argument("--db", metavar="DB", help="open with this database's SQL grammar (a URL, a SQLite or .duckdb file, "
                   "or a packaged name): its schema is read from the catalog")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--workers", type=int, default=3, help="worker processes running the checks (default 3)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_playground)


def cmd_playground(args: argparse.Namespace, out: Output) -> int:
    from ..playground import Playground

    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C: the workers are killed with it

    signal.signal(signal.SIGTERM, stop)
    playground = Playground(port=args.port, grammar=args.grammar, db=args.db, workers=args.workers)
    out.line(f"constrain playground: {playground.url}  (Ctrl-C stops it)")
    out.json({"event": "listening", "url": playground.url})
    if args.open:
        import webbrowser

        webbrowser.open(playground.url)
    with contextlib.suppress(KeyboardInterrupt):
        playground.serve_forever()
    return 0
