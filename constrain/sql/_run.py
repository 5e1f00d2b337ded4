"""Running a query and what comes back: ``Rows``, and SQLite's read-only run (authorizer, value cap, time
limit) shared by ``SQLQuery.run`` and the SQLite ``Database``."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError, PolicyError, ValidationError
from ._dialects import get_dialect
from .policy import DIALECT_RULES

__all__ = ["Rows", "run_sqlite", "DEFAULT_MAX_ROWS", "DEFAULT_TIMEOUT"]

DEFAULT_MAX_ROWS = 1_000
DEFAULT_TIMEOUT = 10.0
_MAX_VALUE_BYTES = 10_000_000  # SQLITE_LIMIT_LENGTH while a query runs: no 1 GB strings or blobs


@dataclass(frozen=True)
class Rows:
    """The result of ``SQLQuery.run``: column names and typed rows (as sqlite3 returns them).

    ``truncated`` is True when the query had more than ``max_rows`` rows and only the first
    ``max_rows`` are here.
    """

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    max_rows: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def run_sqlite(text: str, connection: sqlite3.Connection | str | Path, *, max_rows: int | None = DEFAULT_MAX_ROWS,
               timeout: float | None = DEFAULT_TIMEOUT) -> Rows:
    """Run ``text`` on SQLite read-only (authorizer, value cap, ``timeout``); see ``SQLQuery.run``.
    The connection's authorizer is cleared afterwards."""
    if max_rows is not None and max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    owned = not isinstance(connection, sqlite3.Connection)
    conn = _open_read_only(connection) if owned else connection
    assert isinstance(conn, sqlite3.Connection)
    deadline = None if timeout is None else time.monotonic() + timeout
    previous_length = conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, min(previous_length, _MAX_VALUE_BYTES))
    conn.set_authorizer(_read_only_authorizer("sqlite"))
    conn.set_progress_handler((lambda: int(time.monotonic() > deadline)) if deadline else None, 10_000)
    try:
        cursor = conn.execute(text)
        columns = tuple(d[0] for d in cursor.description or ())
        fetched = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows + 1)
        cursor.close()
    except sqlite3.Error as exc:
        raise _run_error(exc, text, timeout) from None
    finally:
        conn.set_authorizer(None)
        conn.set_progress_handler(None, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, previous_length)
        if owned:
            conn.close()
    truncated = max_rows is not None and len(fetched) > max_rows
    return Rows(columns, fetched[:max_rows] if truncated else fetched, truncated, max_rows)


def _open_read_only(path: str | Path) -> sqlite3.Connection:
    file = Path(path)
    if not file.is_file():
        raise InputError("no such SQLite database file", source=str(path))
    try:
        return sqlite3.connect(file.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open SQLite database: {exc}", source=str(path)) from None


def _read_only_authorizer(dialect: str) -> Any:
    """SQLite's own access control for the run: reads and allowed functions only."""
    rules = DIALECT_RULES[get_dialect(dialect).name]
    allowed_actions = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}

    def authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if action not in allowed_actions:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and arg2 and rules.function_denied(arg2):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and arg1 and rules.table_is_system(arg1, db or ""):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


def _run_error(exc: sqlite3.Error, text: str, timeout: float | None) -> ValidationError:
    message = str(exc)
    if "interrupted" in message:
        return PolicyError(f"query ran longer than {timeout} s and was interrupted", rule="timeout", text=text, engine="sqlite")
    if "not authorized" in message or "prohibited" in message:
        return PolicyError(f"SQLite's authorizer refused the query: {message}", rule="authorizer", text=text, engine="sqlite")
    return ValidationError(f"SQLite refused the query: {message}", text=text, engine="sqlite")
