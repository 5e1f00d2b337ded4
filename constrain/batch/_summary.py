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
    rounds: list[dict[str, int]] = field(default_factory=list)  # Batch API mode: per round (see ``State.rounds``)
    concurrency: dict[str, Any] | None = None  # online mode: the concurrency limit and the rate limits met
    cancelled: bool = False  # Batch API mode: ``cancel`` was run on the folder

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
        if self.rounds:
            data["rounds"] = self.rounds
        if self.concurrency is not None:
            data["concurrency"] = self.concurrency
        if self.mode == "batch":
            data["cancelled"] = self.cancelled
        return data

    def describe(self) -> str:
        c = self.counts
        lines = [f"{c.succeeded} succeeded, {c.failed} failed, {c.pending} pending, of {c.total} items ({self.elapsed:.1f} s)"]
        if self.exactly_once:
            lines.append(f"every one of the {c.total} input ids appears exactly once in {RESULTS} or {FAILURES} (checked)")
        elif c.pending:
            lines.append(f"{c.pending} items are not finished yet")
        for r in self.rounds:
            items = f"{r['items']} item" + ("s" if r["items"] != 1 else "")
            parts = [f"{r['succeeded']} succeeded", f"{r['failed']} failed"]
            if r["refused"]:
                parts.append(f"{r['refused']} refused, re-asked in round {r['round'] + 1}")
            if r["waiting"]:
                parts.append(f"{r['waiting']} waiting")
            lines.append(f"round {r['round']}: {items}: {', '.join(parts)}")
        for b in self.batches:
            counts = b.get("request_counts") or {}
            lines.append(f"  batch {b.get('batch_id') or '(not created)'} (round {b.get('round', 1)}): {b.get('status') or 'not submitted'}, "
                         f"{b['lines']} requests" + (f" ({counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed)" if counts else ""))
        if self.cancelled:
            lines.append("cancelled: no further round is submitted; `collect` takes what ran, "
                         "`submit --retry-failed` sends the failures again")
        if self.concurrency is not None:
            lines.append(_describe_concurrency(self.concurrency))
        lines.append(f"results:  {self.folder / RESULTS}")
        lines.append(f"failures: {self.folder / FAILURES}")
        return "\n".join(lines)


def _describe_concurrency(c: dict[str, Any]) -> str:
    if not c.get("adaptive"):
        text = f"concurrency: {c['maximum']}, fixed"
        return text + (f"; {c['rate_limited']} rate-limited answers (429)" if c.get("rate_limited") else "")
    if not c.get("rate_limited"):
        return f"concurrency: {c['maximum']} (no rate limit met)"
    return (f"concurrency: at most {c['maximum']}; {c['rate_limited']} rate-limited answers (429): lowered {c['lowered']} times "
            f"(lowest {c['lowest']}), raised {c['raised']} times, {c['limit']} at the end")
