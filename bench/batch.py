"""Batch throughput and memory: N items through ``constrain batch`` in online and in Batch API mode.

The local server (``python -m constrain.server``, random-walk backend, its own process) answers both
``/v1/responses`` and the Files/Batches endpoints. Each mode runs as the CLI in a subprocess, so its peak
resident memory is that process's own (``wait4``): at 2,000 and at 20,000 items it should stay flat (the
input is streamed through ``state.sqlite``, never loaded whole). Every output is validated locally; the
figures count items per second, lost items (input ids in neither output file) and the exactly-once check.

    python bench/batch.py [--sizes 2000,20000] [--concurrency 32] [--json]

``--rate-limit N`` measures the online mode against a server that answers HTTP 429 (with ``retry-after``)
to a request arriving while N are in flight: items/s with the concurrency fixed (``--no-adaptive``, the
earlier behaviour: a rate limit that outlives the provider's retries pauses every worker) and adaptive
(AIMD, the default), alternating, medians over ``--runs`` runs, and their ratio.

    python bench/batch.py --rate-limit 8 [--concurrency 32] [--items 200] [--runs 3] [--latency 0.05] [--retry-after 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_parser, emit, fmt_rate, print_table

GRAMMAR = ('start: "SELECT " COL (", " COL)~0..3 " FROM " TABLE (" LIMIT " NUM)?\n'
           "COL: /[a-z][a-z_]{0,9}/\nTABLE: /[a-z]{1,8}/\nNUM: /[1-9][0-9]{0,2}/\n")


def start_server(*command: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(list(command or (sys.executable, "-m", "constrain.server", "--port", "0")), stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split("listening on", 1)[1].strip()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("OPENAI_API_KEY", None)
    return env


def cli(*args: str) -> tuple[dict[str, Any], float, float]:
    """Run ``constrain ARGS --json``: (its last JSON line, wall seconds, peak RSS in MB of that process)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "constrain", *args, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"constrain {' '.join(args)} exited {proc.returncode}: {stderr.decode()[-2000:]}")
    return json.loads(stdout.decode().splitlines()[-1]), wall, usage.ru_maxrss / 1024


def write_input(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"q{i}", "prompt": f"Write a query for report number {i}.", "suite": "bench"}) + "\n")


def count_lost(folder: Path, n: int) -> int:
    seen = 0
    for name in ("results.jsonl", "failures.jsonl"):
        with open(folder / name, "rb") as fh:
            seen += sum(1 for _ in fh)
    return n - seen


def serve_rate_limited(limit: int, latency: float, retry_after: float) -> None:
    """The local server (random walk), with every ``/v1/responses`` request taking ``latency`` seconds and
    a request that arrives while ``limit`` are in flight answered 429 with ``retry-after-ms``."""
    from constrain.server import RandomWalkBackend, Request, Responder, Server

    class RateLimited(Server):
        in_flight = 0

        async def handle(self, request: Request, responder: Responder) -> None:
            if request.path != "/v1/responses":
                await super().handle(request, responder)
                return
            self.in_flight += 1
            try:
                if self.in_flight > limit:
                    error = {"error": {"message": "Rate limit reached: too many concurrent requests", "type": "requests",
                                       "param": None, "code": "rate_limit_exceeded"}}
                    await responder.send_json(429, error, headers={"retry-after-ms": str(int(retry_after * 1000))})
                    return
                await asyncio.sleep(latency)
                await super().handle(request, responder)
            finally:
                self.in_flight -= 1

    async def run() -> None:
        server = RateLimited(RandomWalkBackend(0))
        await server.start()
        print(f"listening on {server.base_url}", flush=True)
        await server.serve_forever()

    asyncio.run(run())


def rate_limited(args: Any) -> None:
    """Online mode, fixed vs adaptive concurrency, against the rate-limiting server."""
    proc, url = start_server(sys.executable, str(Path(__file__).resolve()), "--serve-rate-limited", str(args.rate_limit),
                             "--latency", str(args.latency), "--retry-after", str(args.retry_after))
    runs: dict[str, list[dict[str, Any]]] = {"fixed": [], "adaptive": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            grammar = Path(tmp) / "select.lark"
            grammar.write_text(GRAMMAR)
            source = Path(tmp) / "in.jsonl"
            write_input(source, args.items)
            for number in range(args.runs):
                for mode in ("fixed", "adaptive"):
                    out = Path(tmp) / f"{mode}-{number}"
                    flags = ["--no-adaptive"] if mode == "fixed" else []
                    summary, wall, _ = cli("batch", "run", str(source), "--grammar", str(grammar), "-o", str(out), "--provider", "openai",
                                           "--base-url", url, "--concurrency", str(args.concurrency), *flags)
                    c = summary["concurrency"]
                    runs[mode].append({"items_per_s": args.items / summary["elapsed"], "elapsed_s": summary["elapsed"],
                                       "succeeded": summary["succeeded"], "failed": summary["failed"], "lost": count_lost(out, args.items),
                                       "rate_limited": c["rate_limited"], "final_limit": c["limit"], "lowest_limit": c["lowest"]})
    finally:
        proc.terminate()
        proc.wait(10)
    figures: dict[str, Any] = {"rate_limit": args.rate_limit, "concurrency": args.concurrency, "items": args.items,
                               "latency_s": args.latency, "retry_after_s": args.retry_after, "runs": runs}
    rows = []
    for mode in ("fixed", "adaptive"):
        rate = statistics.median(r["items_per_s"] for r in runs[mode])
        refused = statistics.median(r["rate_limited"] for r in runs[mode])
        figures[f"{mode}_items_per_s"] = rate
        figures[f"{mode}_rate_limited"] = refused
        rows.append([mode, fmt_rate(rate), ", ".join(f"{r['items_per_s']:.0f}" for r in runs[mode]), f"{refused:.0f}",
                     ", ".join(str(r["final_limit"]) for r in runs[mode]), sum(r["failed"] + r["lost"] for r in runs[mode])])
    figures["adaptive_vs_fixed"] = figures["adaptive_items_per_s"] / figures["fixed_items_per_s"]
    print(f"constrain batch run, {args.items} items at concurrency {args.concurrency}, against a server that answers 429 "
          f"(retry-after {args.retry_after:g} s) above {args.rate_limit} requests in flight, {args.latency * 1000:.0f} ms each; "
          f"medians of {args.runs} runs")
    print_table(["concurrency", "items/s (median)", "runs", "429 answers (median)", "limit at the end", "failed or lost"], rows)
    print(f"adaptive / fixed: {figures['adaptive_vs_fixed']:.2f}x")
    emit(figures, as_json=args.json)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="item counts (comma-separated)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate-limit", type=int, default=None, metavar="N",
                        help="instead: online mode against a server that answers 429 above N requests in flight, fixed vs adaptive")
    parser.add_argument("--items", type=int, default=200, help="with --rate-limit: items per run (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="with --rate-limit: runs per mode (default 3)")
    parser.add_argument("--latency", type=float, default=0.05, help="with --rate-limit: seconds per request (default 0.05)")
    parser.add_argument("--retry-after", type=float, default=1.0, help="with --rate-limit: the 429's retry-after in seconds (default 1)")
    parser.add_argument("--serve-rate-limited", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_rate_limited is not None:
        serve_rate_limited(args.serve_rate_limited, args.latency, args.retry_after)
        return
    if args.rate_limit is not None:
        rate_limited(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    proc, url = start_server()
    figures: dict[str, Any] = {"concurrency": args.concurrency, "runs": []}
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            grammar = Path(tmp) / "select.lark"
            grammar.write_text(GRAMMAR)
            for n in sizes:
                source = Path(tmp) / f"in-{n}.jsonl"
                write_input(source, n)
                out = Path(tmp) / f"online-{n}"
                summary, wall, rss = cli("batch", "run", str(source), "--grammar", str(grammar), "-o", str(out), "--provider", "openai",
                                         "--base-url", url, "--concurrency", str(args.concurrency))
                run = {"mode": "online", "items": n, "items_per_s": n / summary["elapsed"], "wall_s": wall, "peak_rss_mb": rss,
                       "succeeded": summary["succeeded"], "failed": summary["failed"], "lost": count_lost(out, n),
                       "exactly_once": summary["exactly_once"]}
                figures["runs"].append(run)
                out = Path(tmp) / f"batch-{n}"
                steps = [cli("batch", "submit", str(source), "--grammar", str(grammar), "-o", str(out), "--base-url", url),
                         cli("batch", "status", str(out), "--wait", "--poll-interval", "0.2"),
                         cli("batch", "collect", str(out))]
                summary = steps[-1][0]
                wall = sum(s[1] for s in steps)
                run = {"mode": "batch-api", "items": n, "items_per_s": n / wall, "wall_s": wall, "peak_rss_mb": max(s[2] for s in steps),
                       "submit_s": steps[0][1], "wait_s": steps[1][1], "collect_s": steps[2][1],
                       "succeeded": summary["succeeded"], "failed": summary["failed"], "lost": count_lost(out, n),
                       "exactly_once": summary["exactly_once"]}
                figures["runs"].append(run)
    finally:
        proc.terminate()
        proc.wait(10)
    for run in figures["runs"]:
        rows.append([run["mode"], f"{run['items']:,}", fmt_rate(run["items_per_s"]), f"{run['wall_s']:.1f} s",
                     f"{run['peak_rss_mb']:.0f} MB", run["succeeded"], run["failed"], run["lost"], run["exactly_once"]])
    print(f"constrain batch against python -m constrain.server (random walk), concurrency {args.concurrency} (online mode)")
    print_table(["mode", "items", "items/s", "wall", "peak RSS", "succeeded", "failed", "lost", "exactly once"], rows)
    for mode in ("online", "batch-api"):
        runs = [r for r in figures["runs"] if r["mode"] == mode]
        if len(runs) >= 2:
            figures[f"{mode}_rss_ratio_largest_vs_smallest"] = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
    figures["lost_total"] = sum(r["lost"] for r in figures["runs"])
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
