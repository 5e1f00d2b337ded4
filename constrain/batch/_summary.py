"""What a batch command reports: counts, the exactly-once check, where the files are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._state import FAILURES, RESULTS, Counts

__all__ = ["BatchSummary"]


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch command. ``exactly_once`` is True once every input id was read back from
    exactly one of the two output files (checked at the end of every finished run)."""

    folder: Path
    counts: Counts
    elapsed: float
    exactly_once: bool
    batches: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "online"

    @property
    def finished(self) -> bool:
        return self.counts.finished

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "total": self.counts.total,
            "succeeded": self.counts.succeeded,
            "failed": self.counts.failed,
            "pending": self.counts.pending,
            "elapsed": round(self.elapsed, 3),
            "finished": self.finished,
            "exactly_once": self.exactly_once,
            "mode": self.mode,
            "results": str(self.folder / RESULTS),
            "failures": str(self.folder / FAILURES),
        }
        if self.batches:
            data["batches"] = self.batches
        return data

    def describe(self) -> str:
        c = self.counts
        lines = [f"{c.succeeded} succeeded, {c.failed} failed, {c.pending} pending, of {c.total} items ({self.elapsed:.1f} s)"]
        if self.exactly_once:
            lines.append(f"every one of the {c.total} input ids appears exactly once in {RESULTS} or {FAILURES} (checked)")
        elif c.pending:
            lines.append(f"{c.pending} items are not finished yet")
        for b in self.batches:
            counts = b.get("request_counts") or {}
            lines.append(f"  batch {b.get('batch_id') or '(not created)'}: {b.get('status') or 'not submitted'}, "
                         f"{b['lines']} requests" + (f" ({counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed)" if counts else ""))
        lines.append(f"results:  {self.folder / RESULTS}")
        lines.append(f"failures: {self.folder / FAILURES}")
        return "\n".join(lines)
