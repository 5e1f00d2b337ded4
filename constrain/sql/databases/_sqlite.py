"""SQLite: the standard library's driver, the file opened read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from ...errors import InputError, ValidationError
from ..schema import Schema, Table, _sample_values
from ._base import DEFAULT_QUERY_SECONDS, DEFAULT_SAMPLES, FileDatabase
from ._samples import Values


class SQLiteDatabase(FileDatabase):
    """A SQLite file, opened read-only (``mode=ro``); while a query runs, SQLite's authorizer allows reads only."""

    dialect = "sqlite"
    has_schemas = False

    def __init__(self, path: str | Path, *, samples: int = DEFAULT_SAMPLES) -> None:
        super().__init__(samples=samples)
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("no such SQLite database file", source=str(path))

    @property
    def url(self) -> str:
        return str(self.path)

    def _reflect(self) -> Schema:
        return Schema.from_sqlite(self.path)

    def _read_samples(self, tables: Sequence[Table]) -> dict[str, Values]:
        from .._run import _open_read_only

        conn = _open_read_only(self.path)
        try:
            return {t.key: _sample_values(conn, t.name, t.column_names(), self.samples) for t in tables}
        finally:
            conn.close()

    def explain(self, sql: str) -> None:
        from .._run import _open_read_only

        conn = _open_read_only(self.path)
        try:
            conn.execute("EXPLAIN " + sql).close()
        except sqlite3.Error as exc:
            raise ValidationError(f"SQLite refuses the query: {exc}", text=sql, engine="sqlite") from None
        finally:
            conn.close()

    def run(self, sql: str, *, max_rows: int | None = None, seconds: float | None = DEFAULT_QUERY_SECONDS) -> Any:
        from .._run import run_sqlite

        return run_sqlite(sql, self.path, max_rows=max_rows, timeout=seconds)
