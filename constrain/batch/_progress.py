"""A one-line progress bar on stderr (done, failed, rate, ETA), drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, already: int = 0, *, stream: TextIO | None = None, enabled: bool | None = None,
                 label: str = "batch", every: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.already, self.label, self.every = total, already, label, every
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, done: int = 0, failed: int = 0) -> None:
        self.done += done
        self.failed += failed
        now = time.perf_counter()
        if self.enabled and now - self._last >= self.every:
            self._last = now
            self.draw()

    def draw(self) -> None:
        finished = self.already + self.done + self.failed
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = (self.done + self.failed) / elapsed
        left = self.total - finished
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 else "--:--"
        width = 24
        filled = int(width * finished / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {finished}/{self.total}  failed {self.failed}  {rate:.1f}/s  ETA {eta} ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()
