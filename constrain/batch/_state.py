"""The resumable state of one batch folder: ``state.sqlite`` is the truth, the two JSONL files follow it.

Every item is a row (``pending`` → ``submitted`` → ``done`` | ``failed``) whose final output line is
stored with the status, in the same commit. The files ``results.jsonl`` / ``failures.jsonl`` are an
append-only projection of the committed rows: lines are appended, fsync'd, and only then are those rows
marked written together with the file's new committed length. On start, each file is cut back to its
committed length, so a SIGKILL at any instant leaves neither a lost nor a duplicated line: bytes past
the committed length were never acknowledged and are written again from the rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConstrainError, InputError

__all__ = ["BatchError", "Counts", "State", "RESULTS", "FAILURES", "STATE"]

RESULTS, FAILURES, STATE = "results.jsonl", "failures.jsonl", "state.sqlite"
_MAX_PROBLEMS = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    line INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    metadata TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    record TEXT,
    written INTEGER NOT NULL DEFAULT 0,
    shard INTEGER,
    round INTEGER NOT NULL DEFAULT 1,
    history TEXT
);
CREATE INDEX IF NOT EXISTS items_status ON items(status, written, seq);
CREATE INDEX IF NOT EXISTS items_shard ON items(shard, status);
CREATE TABLE IF NOT EXISTS shards(
    shard INTEGER PRIMARY KEY,
    token TEXT NOT NULL,
    lines INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    file_id TEXT,
    batch_id TEXT,
    status TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    request_counts TEXT,
    errors TEXT,
    collected INTEGER NOT NULL DEFAULT 0,
    round INTEGER NOT NULL DEFAULT 1,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
"""
# columns added after the first release: a folder made before them gets them on open
_ADDED_COLUMNS = {
    "items": (("round", "INTEGER NOT NULL DEFAULT 1"), ("history", "TEXT")),
    "shards": (("round", "INTEGER NOT NULL DEFAULT 1"), ("cancel_requested", "INTEGER NOT NULL DEFAULT 0")),
}


class BatchError(ConstrainError):
    """A batch run cannot go on, or its output does not hold every input id exactly once."""


@dataclass(frozen=True)
class Counts:
    total: int
    succeeded: int
    failed: int
    pending: int

    @property
    def finished(self) -> bool:
        return self.pending == 0


@dataclass(frozen=True)
class Item:
    seq: int
    id: str
    line: int
    prompt: str
    metadata: dict[str, Any] | None
    round: int = 1  # Batch API mode: the batch round this item is in (1, then one more per re-ask)
    history: tuple[dict[str, Any], ...] = ()  # the refused earlier rounds (output, error, feedback messages)


_ITEM_COLUMNS = "seq, id, line, prompt, metadata, round, history"


def item_from_row(row: tuple[Any, ...]) -> Item:
    """An ``Item`` from a row of ``SELECT {_ITEM_COLUMNS}``."""
    seq, item_id, line, prompt, metadata, round_, history = row
    return Item(seq, item_id, line, prompt, json.loads(metadata) if metadata else None, round_,
                tuple(json.loads(history)) if history else ())


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class State:
    """``DIR/state.sqlite`` plus the two output files it governs."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / STATE
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    def __repr__(self) -> str:
        return f"State({str(self.folder)!r})"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ------------------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, str(value)))

    def set(self, key: str, value: Any) -> None:
        self._set(key, value)

    @property
    def cancelled(self) -> bool:
        """Batch API mode: ``cancel`` was run; no further round is submitted."""
        return self.get("cancelled") is not None

    def mark_cancelled(self) -> None:
        if not self.cancelled:
            self._set("cancelled", int(time.time()))

    def clear_cancelled(self) -> None:
        self.db.execute("DELETE FROM meta WHERE key = 'cancelled'")

    @property
    def loaded(self) -> bool:
        return self.get("loaded") == "1"

    @property
    def run_token(self) -> str:
        token = self.get("run_token")
        assert token is not None
        return token

    # -- input -----------------------------------------------------------------------------------
    def open_input(self, input_path: str | os.PathLike[str], mode: str, pipeline: dict[str, str]) -> None:
        """Load the input (once, all or nothing), or check that this folder was made from the same input."""
        source = Path(input_path)
        if not source.is_file():
            raise InputError("no such input file", source=str(input_path))
        digest = file_digest(source)
        if self.loaded:
            for key, wanted in (("mode", mode), ("input_sha256", digest), ("pipeline", pipeline["fingerprint"])):
                if self.get(key) != wanted:
                    what = {"mode": f"a `batch {self.get('mode')}` run", "input_sha256": "a different input file",
                            "pipeline": "a different constraint"}[key]
                    raise BatchError(f"{self.folder} holds the state of {what}; resume it with the same command, or use a new -o folder")
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM items")
            problems = list(self._load_items(source))
            if problems:
                more = "" if len(problems) <= _MAX_PROBLEMS else "\n  ... and more"
                raise InputError("nothing was sent; the input has errors:\n  " + "\n  ".join(problems[:_MAX_PROBLEMS]) + more,
                                 source=str(input_path))
            count = self.db.execute("SELECT count(*) FROM items").fetchone()[0]
            if count == 0:
                raise InputError("the input holds no items", source=str(input_path))
            for key, value in (("mode", mode), ("input", str(source.resolve())), ("input_sha256", digest),
                               ("pipeline", pipeline["fingerprint"]), ("constraint", json.dumps(pipeline)),
                               ("run_token", uuid.uuid4().hex), ("results_size", 0), ("failures_size", 0), ("loaded", 1)):
                self._set(key, value)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        for name in (RESULTS, FAILURES):  # a fresh state owns fresh files
            (self.folder / name).write_bytes(b"")

    def _load_items(self, source: Path) -> Iterator[str]:
        """Insert every line as an item; yield a message per bad line (the caller rolls back on any)."""
        with open(source, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    yield f"line {number}: not a JSON object ({exc})"
                    continue
                if not isinstance(obj, dict):
                    yield f"line {number}: expected a JSON object, got {type(obj).__name__}"
                    continue
                prompt = obj.pop("prompt", None)
                if not isinstance(prompt, str) or not prompt.strip():
                    yield f"line {number}: \"prompt\" must be a non-empty string"
                    continue
                item_id = obj.pop("id", None)
                if item_id is None:
                    item_id = str(number)
                elif not isinstance(item_id, str) or not item_id:
                    yield f"line {number}: \"id\" must be a non-empty string, got {json.dumps(item_id)}"
                    continue
                try:
                    self.db.execute("INSERT INTO items(id, line, prompt, metadata) VALUES(?, ?, ?, ?)",
                                    (item_id, number, prompt, json.dumps(obj, ensure_ascii=False) if obj else None))
                except sqlite3.IntegrityError:
                    earlier = self.db.execute("SELECT line FROM items WHERE id = ?", (item_id,)).fetchone()[0]
                    yield f"line {number}: duplicate id {item_id!r} (first on line {earlier})"

    # -- items -------------------------------------------------------------------------------------
    def items(self, where: str = "status = 'pending'", args: tuple[Any, ...] = (), page: int = 500) -> Iterator[Item]:
        """Rows in input order, read a page at a time (never the whole input in memory)."""
        last = 0
        while True:
            rows = self.db.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
                                   (*args, last, page)).fetchall()
            if not rows:
                return
            for row in rows:
                yield item_from_row(row)
            last = rows[-1][0]

    def finish(self, outcomes: list[tuple[int, str, str]]) -> None:
        """Commit final outcomes ``(seq, "done" | "failed", record line)``; items already final stay as they are."""
        if not outcomes:
            return
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("UPDATE items SET status = ?, record = ?, written = 0 WHERE seq = ? AND status NOT IN ('done', 'failed')",
                            [(status, record, seq) for seq, status, record in outcomes])
        self.db.execute("COMMIT")

    def advance(self, refused: list[tuple[int, int, str]]) -> None:
        """Batch API mode: items ``(seq, shard, history JSON)`` refused in their shard's round go back to
        pending for the next round, in one commit; an item no longer in that shard is left as it is."""
        if not refused:
            return
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("UPDATE items SET status = 'pending', shard = NULL, round = round + 1, history = ? "
                            "WHERE seq = ? AND shard = ? AND status = 'submitted'",
                            [(history, seq, shard) for seq, shard, history in refused])
        self.db.execute("COMMIT")

    def rounds(self) -> list[dict[str, int]]:
        """Per round: the items that entered it, and how many of them succeeded, failed for good, went on to
        the next round (``refused``: re-asked with the validator's feedback) or are still waiting."""
        rows = self.db.execute("SELECT round, status, count(*) FROM items GROUP BY round, status").fetchall()
        last = max((r for r, _, _ in rows), default=0)
        table = []
        for number in range(1, last + 1):
            here = {status: n for r, status, n in rows if r == number}
            later = sum(n for r, _, n in rows if r > number)
            table.append({"round": number, "items": sum(here.values()) + later, "succeeded": here.get("done", 0),
                          "failed": here.get("failed", 0), "refused": later,
                          "waiting": here.get("pending", 0) + here.get("submitted", 0)})
        return table

    def counts(self) -> Counts:
        rows = dict(self.db.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall())
        total = sum(rows.values())
        return Counts(total, rows.get("done", 0), rows.get("failed", 0), total - rows.get("done", 0) - rows.get("failed", 0))

    def retry_failed(self) -> int:
        """Make failed items pending again; ``failures.jsonl`` is rebuilt without them."""
        self.db.execute("BEGIN IMMEDIATE")
        count = self.db.execute("UPDATE items SET status = 'pending', record = NULL, written = 0, shard = NULL, round = 1, history = NULL "
                                "WHERE status = 'failed'").rowcount
        if count:
            self._set("failures_size", -1)
        self.db.execute("COMMIT")
        return int(count)

    # -- the output files ----------------------------------------------------------------------------
    def sync_outputs(self) -> None:
        """Bring both files up to the committed rows (see the module docs for why this is exactly-once)."""
        for name, status in ((RESULTS, "done"), (FAILURES, "failed")):
            self._sync_file(name, status)

    def _sync_file(self, name: str, status: str) -> None:
        path = self.folder / name
        key = f"{name.split('.')[0]}_size"
        committed = int(self.get(key, "0") or 0)
        actual = path.stat().st_size if path.exists() else -1
        if committed < 0 or actual < committed:
            self._rebuild(path, key, status)
            return
        with open(path, "r+b") as fh:
            fh.truncate(committed)
            fh.seek(committed)
            while True:
                rows = self.db.execute("SELECT seq, record FROM items WHERE status = ? AND written = 0 ORDER BY seq LIMIT 1000",
                                       (status,)).fetchall()
                if not rows:
                    return
                fh.write(b"".join(record.encode("utf-8") + b"\n" for _, record in rows))
                fh.flush()
                os.fsync(fh.fileno())
                size = fh.tell()
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("UPDATE items SET written = 1 WHERE seq = ?", [(seq,) for seq, _ in rows])
                self._set(key, size)
                self.db.execute("COMMIT")

    def _rebuild(self, path: Path, key: str, status: str) -> None:
        temporary = path.with_suffix(".jsonl.tmp")
        with open(temporary, "wb") as fh:
            for (record,) in self.db.execute("SELECT record FROM items WHERE status = ? ORDER BY seq", (status,)):
                fh.write(record.encode("utf-8") + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
        os.replace(temporary, path)
        _fsync_dir(path.parent)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("UPDATE items SET written = 1 WHERE status = ?", (status,))
        self._set(key, size)
        self.db.execute("COMMIT")

    def verify(self) -> Counts:
        """Read both files back: every input id exactly once, in the file its status says; else ``BatchError``."""
        counts = self.counts()
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS seen(id TEXT PRIMARY KEY, status TEXT NOT NULL)")
        self.db.execute("DELETE FROM seen")
        self.db.execute("BEGIN")
        try:
            for name, status in ((RESULTS, "done"), (FAILURES, "failed")):
                path = self.folder / name
                if not path.exists():
                    continue
                with open(path, "rb") as fh:
                    for number, raw in enumerate(fh, start=1):
                        try:
                            item_id = json.loads(raw)["id"]
                        except (ValueError, KeyError, TypeError):
                            raise BatchError(f"{path}: line {number} is not an output record") from None
                        try:
                            self.db.execute("INSERT INTO seen(id, status) VALUES(?, ?)", (item_id, status))
                        except sqlite3.IntegrityError:
                            raise BatchError(f"{path}: line {number}: id {item_id!r} appears more than once in the outputs") from None
            wrong = self.db.execute(
                "SELECT items.id, items.status, seen.status FROM items LEFT JOIN seen ON seen.id = items.id "
                "WHERE items.status IN ('done', 'failed') AND (seen.status IS NULL OR seen.status != items.status) LIMIT 5").fetchall()
            stray = self.db.execute("SELECT seen.id FROM seen LEFT JOIN items ON items.id = seen.id "
                                    "WHERE items.id IS NULL OR items.status NOT IN ('done', 'failed') LIMIT 5").fetchall()
        finally:
            self.db.execute("ROLLBACK")
        if wrong or stray:
            raise BatchError(f"the outputs in {self.folder} do not match the state: missing or misplaced ids "
                             f"{[w[0] for w in wrong]}, unexpected ids {[s[0] for s in stray]}")
        return counts

    # -- Batch API shards ------------------------------------------------------------------------------
    def shards(self, where: str = "1", args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(f"SELECT * FROM shards WHERE {where} ORDER BY shard", args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def update_shard(self, shard: int, **fields: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE shards SET {assignments} WHERE shard = ?", (*fields.values(), shard))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
