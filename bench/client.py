"""The async client under load: N requests at concurrency C against the local grammar-enforcing server.

Two clients in the same run, against the same server process (started here on 127.0.0.1):
  * constrain — ``constrain.agenerate`` through the ``OpenAI`` provider, every output validated locally
    (llguidance and Lark) into a typed value;
  * httpx — bare ``httpx.AsyncClient`` POSTs of the same request body (over the same 8-pool layout the
    provider uses), JSON decoded, output picked out, nothing validated.
Reports results/s, p50/p99 latency and client CPU per result for each, the overhead ratios, and counts lost, duplicated and
wrong results (every answer is checked against the one the server's deterministic backend owes it).

    python bench/client.py [--n 10000] [--concurrency 64] [--json]
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from _common import bench_parser, emit, fmt_rate, fmt_seconds, percentile, print_table

import httpx

from constrain import Grammar, agenerate
from constrain.generate import DEFAULT_SYSTEM
from constrain.providers import Constraint, Message, OpenAI
from constrain.server import GenerationRequest, RandomWalkBackend

GRAMMAR = Grammar(
    'start: "SELECT " COL (", " COL)~0..3 " FROM " TABLE (" LIMIT " NUM)?\n'
    "COL: /[a-z][a-z_]{0,9}/\nTABLE: /[a-z]{1,8}/\nNUM: /[1-9][0-9]{0,2}/",
    name="bench-select",
)
SEED = 0


@dataclass
class Run:
    name: str
    latencies: list[float]
    outputs: dict[int, str]
    request_ids: list[str]
    errors: int
    wall: float
    cpu: float

    def figures(self, expected: dict[int, str]) -> dict[str, Any]:
        lost = sum(1 for i in expected if i not in self.outputs)
        wrong = sum(1 for i, text in self.outputs.items() if expected.get(i) != text)
        duplicated = len(self.request_ids) - len(set(self.request_ids))
        return {
            "results": len(self.outputs),
            "results_per_second": len(self.outputs) / self.wall,
            "client_cpu_per_result": self.cpu / max(1, len(self.outputs)),
            "p50_latency": percentile(self.latencies, 50),
            "p99_latency": percentile(self.latencies, 99),
            "lost": lost,
            "duplicated": duplicated,
            "wrong": wrong,
            "errors": self.errors,
        }


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "constrain.server", "--port", "0", "--seed", str(SEED)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def messages_for(i: int) -> list[Message]:
    return [Message("system", DEFAULT_SYSTEM), Message("user", f"request {i}: list some columns")]


async def drive(name: str, ids: range, concurrency: int, one: Callable[[int], Awaitable[tuple[str, str]]]) -> Run:
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    outputs: dict[int, str] = {}
    request_ids: list[str] = []
    errors = 0

    async def task(i: int) -> None:
        nonlocal errors
        async with semaphore:
            started = time.perf_counter()
            try:
                text, request_id = await one(i)
            except Exception:  # counted, never hidden
                errors += 1
                return
            latencies.append(time.perf_counter() - started)
            if i in outputs:
                request_ids.append(f"duplicate-of-{i}")
            outputs[i] = text
            request_ids.append(request_id)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(task(i) for i in ids))
    return Run(name, latencies, outputs, request_ids, errors, time.perf_counter() - started, time.process_time() - cpu)


async def bench(url: str, n: int, concurrency: int) -> tuple[Run, Run]:
    provider = OpenAI(base_url=url, model="bench", max_retries=0, timeout=120)
    constraint = Constraint(GRAMMAR)

    async def with_constrain(i: int) -> tuple[str, str]:
        result = await agenerate(messages_for(i), grammar=GRAMMAR, provider=provider, max_attempts=1)
        return result.raw, result.request_id or ""

    # the same pool layout the provider uses (8 small pools: httpcore's pool scan grows with the square
    # of the connections in one pool), so the ratio measures constrain's own work, not pool effects
    clients = [httpx.AsyncClient(timeout=120) for _ in range(8)]
    turn = itertools.count()

    async def with_httpx(i: int) -> tuple[str, str]:
        body = provider.build(messages_for(i), constraint, max_tokens=None, stream=False).body
        response = await clients[next(turn) % len(clients)].post(f"{url}/responses", json=body)
        response.raise_for_status()
        data = response.json()
        text = next(item["input"] for item in data["output"] if item.get("type") == "custom_tool_call")
        return text, response.headers["x-request-id"]

    # warm both clients' connections and the server's walk cache (not measured)
    warm = range(-1, -1 - min(n, 512), -1)
    await drive("warm", warm, concurrency, with_httpx)
    await drive("warm", warm, concurrency, with_constrain)
    # alternate halves so that machine load drifts over both clients alike
    half = n // 2
    parts: dict[str, list[Run]] = {"httpx": [], "constrain": []}
    for ids in (range(0, half), range(half, n)):
        parts["httpx"].append(await drive("httpx", ids, concurrency, with_httpx))
        parts["constrain"].append(await drive("constrain", ids, concurrency, with_constrain))
    for client in clients:
        await client.aclose()
    await provider.aclose()
    merged = []
    for name, runs in parts.items():
        merged.append(Run(
            name,
            [x for r in runs for x in r.latencies],
            {k: v for r in runs for k, v in r.outputs.items()},
            [x for r in runs for x in r.request_ids],
            sum(r.errors for r in runs),
            sum(r.wall for r in runs),
            sum(r.cpu for r in runs),
        ))
    return merged[1], merged[0]


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="requests per client (default 10000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    args = parser.parse_args()

    backend = RandomWalkBackend(SEED)
    expected = {i: backend.text_for(GenerationRequest(tuple(messages_for(i)), GRAMMAR)) for i in range(args.n)}
    proc, url = start_server()
    try:
        constrain_run, httpx_run = asyncio.run(bench(url, args.n, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(10)
    ours, bare = constrain_run.figures(expected), httpx_run.figures(expected)
    rows = [
        [name, f["results"], fmt_rate(f["results_per_second"]), fmt_seconds(f["p50_latency"]), fmt_seconds(f["p99_latency"]),
         fmt_seconds(f["client_cpu_per_result"]), f["lost"], f["duplicated"], f["wrong"], f["errors"]]
        for name, f in (("constrain (agenerate, validated)", ours), ("bare httpx (no validation)", bare))
    ]
    print(f"{args.n} requests per client, concurrency {args.concurrency}, server: python -m constrain.server (random walk)")
    print_table(["client", "results", "results/s", "p50", "p99", "client CPU/result", "lost", "duplicated", "wrong", "errors"], rows)
    ratio = bare["results_per_second"] / ours["results_per_second"]
    cpu_ratio = ours["client_cpu_per_result"] / bare["client_cpu_per_result"]
    print(f"overhead ratio (httpx results/s / constrain results/s): {ratio:.2f}; client CPU ratio: {cpu_ratio:.2f}")
    figures = {
        "n": args.n,
        "concurrency": args.concurrency,
        "constrain_results_per_second": ours["results_per_second"],
        "constrain_p50_latency": ours["p50_latency"],
        "constrain_p99_latency": ours["p99_latency"],
        "httpx_results_per_second": bare["results_per_second"],
        "httpx_p50_latency": bare["p50_latency"],
        "httpx_p99_latency": bare["p99_latency"],
        "overhead_ratio": ratio,
        "constrain_client_cpu_per_result": ours["client_cpu_per_result"],
        "httpx_client_cpu_per_result": bare["client_cpu_per_result"],
        "client_cpu_ratio": cpu_ratio,
        "lost": ours["lost"] + bare["lost"],
        "duplicated": ours["duplicated"] + bare["duplicated"],
        "wrong": ours["wrong"] + bare["wrong"],
        "errors": ours["errors"] + bare["errors"],
    }
    emit(figures, as_json=args.json)
    if figures["lost"] or figures["duplicated"] or figures["wrong"] or figures["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
