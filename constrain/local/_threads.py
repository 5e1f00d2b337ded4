"""How many threads decode a step (a token of each candidate) or a short question: measured, not guessed.

ggml's worker threads spin at every barrier. On an idle 2-core machine two threads decode a step of two
candidates 1.9x faster than one (42 ms against 79 ms at a 1,900-token context); when another process
holds a core, the spinning thread waits for a descheduled one and two threads run several times slower
than one. So the tuner
keeps the seconds per row of each choice (an exponential average over consecutive steps; a choice
measured again after a pause starts afresh), uses more threads only when they are clearly faster, and
tries the other choice again every ``every`` steps, following the machine's load as it changes.

The choice never changes an answer: with flash attention, llama.cpp's CPU kernels give the same logits
for a batch with any thread count up to its number of rows (one row on two threads is split along the
keys and rounds differently, so a single row always gets one thread). ``tests/test_local_threads.py``
holds that to the bit.
"""

from __future__ import annotations

import threading

from ..errors import InputError

_WEIGHT = 0.3  # of the newest measurement in the running average
# more threads must be clearly faster: two benchmark shards sharing 2 cores measured both choices within a
# few percent of each other, and then one thread each (no spinning) finished 10% sooner
_MARGIN = 0.8


class ThreadTuner:
    """Threads for a batch of ``rows`` rows: 1 or ``min(cores, rows)``, whichever has measured faster."""

    def __init__(self, cores: int, *, every: int = 32) -> None:
        if cores < 1 or every < 2:
            raise InputError("ThreadTuner needs cores >= 1 and every >= 2")
        self.cores = cores
        self.every = every
        self.seconds_per_row: dict[int, float] = {}
        self.measured_at: dict[int, int] = {}  # the step each choice was last measured at
        self.steps = 0
        self._lock = threading.Lock()

    def choose(self, rows: int) -> int:
        """The threads for a decoding step of ``rows`` rows (one thread first, then the other choice, then
        the faster with the other re-measured every ``every`` steps); pass its time to ``record``."""
        wide = min(self.cores, rows)
        if wide <= 1:
            return 1
        with self._lock:
            self.steps += 1
            known = self.seconds_per_row
            for threads in (1, wide):
                if threads not in known:
                    return threads
            faster = self._faster(wide)
            return (wide if faster == 1 else 1) if self.steps % self.every == 0 else faster

    def preferred(self, rows: int) -> int:
        """The threads for a batch that is not a decoding step (a question after a cached prefix): the
        faster choice as measured so far, one thread before anything is measured; nothing to record."""
        wide = min(self.cores, rows)
        with self._lock:
            return self._faster(wide) if wide > 1 and {1, wide} <= self.seconds_per_row.keys() else 1

    def _faster(self, wide: int) -> int:
        known = self.seconds_per_row
        return wide if known[wide] < _MARGIN * known[1] else 1

    def record(self, threads: int, rows: int, seconds: float) -> None:
        """A batch of ``rows`` rows took ``seconds`` with ``threads`` threads."""
        if rows < 1 or seconds < 0 or min(self.cores, rows) <= 1:
            return
        per_row = seconds / rows
        with self._lock:
            old = self.seconds_per_row.get(threads)
            stale = self.steps - self.measured_at.get(threads, -2) > 1
            self.seconds_per_row[threads] = per_row if old is None or stale else old + _WEIGHT * (per_row - old)
            self.measured_at[threads] = self.steps
