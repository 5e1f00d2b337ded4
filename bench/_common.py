"""Helpers shared by the ``bench/`` scripts: timing medians, a human table, the ``--json`` last line.

Run a script as ``python bench/NAME.py [--json]``; it imports this module with ``from _common import ...``.
Conventions: times in seconds, rates per second, keys named after the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` from a checkout imports the source tree
    sys.path.insert(0, str(ROOT))

__all__ = [
    "Timing",
    "bench_parser",
    "emit",
    "environment",
    "fmt_rate",
    "fmt_seconds",
    "median",
    "percentile",
    "print_table",
    "time_call",
    "time_calls",
]


@dataclass(frozen=True)
class Timing:
    """Per-call wall-clock seconds of repeated calls."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def rate(self) -> float:
        """Calls per second at the median."""
        return 1.0 / self.median if self.median > 0 else float("inf")


def bench_parser(description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the ``--json`` flag every bench script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object on the last line"
    )
    return parser


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def time_call(fn: Callable[[], Any], *, repeat: int = 7, number: int = 1, warmup: int = 1) -> Timing:
    """Time ``fn()``: ``repeat`` samples, each the mean of ``number`` back-to-back calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return Timing(tuple(samples))


def time_calls(fn: Callable[[], Any], *, min_time: float = 0.2, max_repeat: int = 1000, warmup: int = 1) -> Timing:
    """Time single calls of ``fn()`` until ``min_time`` seconds have passed (at least 5 samples)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + min_time
    while len(samples) < max_repeat and (len(samples) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples))


def fmt_seconds(seconds: float) -> str:
    """A duration with a readable unit: ``12.3 µs``, ``4.56 ms``, ``1.23 s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s" if per_second >= 100 else f"{per_second:.2f}/s"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, file: Any = None) -> None:
    """A Markdown table (pastes straight into the README), columns padded for reading in a terminal."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = file or sys.stdout

    def render(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    print(render(cells[0]), file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for row in cells[1:]:
        print(render(row), file=out)


def environment() -> dict[str, Any]:
    """Where the figures came from: Python, platform, CPU count, library versions."""
    import os
    from importlib import metadata

    versions = {}
    for dist in ("constrain-cfg", "lark", "llguidance", "sqlglot", "pydantic", "httpx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def emit(figures: dict[str, Any], *, as_json: bool) -> None:
    """In ``--json`` mode, print ``figures`` (plus the environment) as one JSON object on the last line."""
    if as_json:
        sys.stdout.flush()
        print(json.dumps({**figures, "environment": environment()}, sort_keys=False, default=str))


class Started:
    """A context manager over ``_start`` and ``close``: what a failed start had already started is closed."""

    def _start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
