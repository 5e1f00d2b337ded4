"""DuckDB, through its own module: ``duckdb_engine``'s reflection fails under SQLAlchemy 2.1 (it asks
DuckDB for ``pg_catalog.pg_collation``; measured with duckdb 2.0.1 and duckdb_engine 0.17)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from ...errors import DatabaseError, PolicyError, ValidationError
from ..schema import Column, ForeignKey, Schema, Table
from ._base import DEFAULT_QUERY_SECONDS, DEFAULT_SAMPLES, FileDatabase, import_driver, sample_value
from ._samples import Values

_SAMPLE_SECONDS = 0.5  # reading one column's sample values stops after this long


class DuckDBDatabase(FileDatabase):
    """A DuckDB file, opened ``read_only=True`` with ``enable_external_access=false`` (no file, URL or
    extension access); a query past its time limit is interrupted inside DuckDB."""

    dialect = "duckdb"
    extra = "duckdb"
    system_schemas = frozenset({"information_schema", "pg_catalog"})

    def __init__(self, path: str | Path, *, samples: int = DEFAULT_SAMPLES) -> None:
        super().__init__(samples=samples)
        duckdb = import_driver("duckdb", self.extra, str(path))
        self.path = Path(path)
        try:
            self._conn = duckdb.connect(str(self.path), read_only=True, config={"enable_external_access": False})
            self._conn.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            raise DatabaseError(f"cannot open DuckDB database: {exc}", reason="connection", database=str(path)) from None
        self._duckdb = duckdb

    @property
    def url(self) -> str:
        return f"duckdb:///{self.path}"

    def close(self) -> None:
        self._conn.close()

    def _cursor(self) -> Any:
        return self._conn.cursor()  # one per query: DuckDB cursors may run on different threads

    def _execute(self, sql: str, *, seconds: float | None, max_rows: int | None, prefix: int = 0) -> tuple[tuple[str, ...], list[tuple[Any, ...]], bool]:
        cursor = self._cursor()
        timer = threading.Timer(seconds, cursor.interrupt) if seconds is not None else None
        started = time.monotonic()
        try:
            if timer is not None:
                timer.start()
            cursor.execute(sql)
            columns = tuple(d[0] for d in cursor.description or ())
            fetched = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows + 1)
        except self._duckdb.Error as exc:
            text = sql[prefix:]
            if isinstance(exc, self._duckdb.InterruptException) or (seconds is not None and time.monotonic() - started >= seconds and "interrupt" in str(exc).lower()):
                raise PolicyError(f"query ran longer than {seconds} s and was interrupted", rule="timeout",
                                  text=text, engine="duckdb") from None
            raise _located(f"DuckDB refuses the query: {str(exc).splitlines()[0]}", text, _duckdb_position(str(exc), prefix),
                           "duckdb") from None
        finally:
            if timer is not None:
                timer.cancel()
            cursor.close()
        truncated = max_rows is not None and len(fetched) > max_rows
        return columns, fetched[:max_rows] if truncated else fetched, truncated

    def explain(self, sql: str) -> None:
        self._execute("EXPLAIN " + sql, seconds=DEFAULT_QUERY_SECONDS, max_rows=0, prefix=len("EXPLAIN "))

    def run(self, sql: str, *, max_rows: int | None = None, seconds: float | None = DEFAULT_QUERY_SECONDS) -> Any:
        from .._run import Rows

        if max_rows is not None and max_rows < 0:
            raise ValueError(f"max_rows must be >= 0, got {max_rows}")
        columns, rows, truncated = self._execute(sql, seconds=seconds, max_rows=max_rows)
        return Rows(columns, rows, truncated, max_rows)

    def _reflect(self) -> Schema:
        cursor = self._cursor()
        try:
            current = cursor.execute("SELECT current_schema()").fetchone()[0]
            found = [r[0] for r in cursor.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() ORDER BY oid").fetchall()]
            wanted = [current, *self._wanted_schemas(current, found)]
            where = "database_name = current_database() AND schema_name IN (SELECT unnest(?)) AND NOT internal"
            order = cursor.execute(  # creation order, as the other engines list them
                f"SELECT schema_name, table_name, table_oid FROM duckdb_tables() WHERE {where} UNION ALL "
                f"SELECT schema_name, view_name, view_oid FROM duckdb_views() WHERE {where} ORDER BY 3",
                [wanted, wanted]).fetchall()
            comments = {(r[0], r[1]): r[2] for r in cursor.execute(
                f"SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE {where}", [wanted]).fetchall()}
            columns: dict[tuple[str, str], list[Column]] = {}
            for namespace, table, name, kind, comment in cursor.execute(
                f"SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() WHERE {where} "
                "ORDER BY table_oid, column_index", [wanted]
            ).fetchall():
                columns.setdefault((namespace, table), []).append(Column(name, kind, comment=comment or ""))
            keys: dict[tuple[str, str], tuple[str, ...]] = {}
            foreign: dict[tuple[str, str], list[ForeignKey]] = {}
            for namespace, table, kind, names, ref_table, ref_names in cursor.execute(
                "SELECT schema_name, table_name, constraint_type, constraint_column_names, referenced_table, "
                "referenced_column_names FROM duckdb_constraints() WHERE database_name = current_database() "
                "AND schema_name IN (SELECT unnest(?)) AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')", [wanted]
            ).fetchall():
                if kind == "PRIMARY KEY":
                    keys[(namespace, table)] = tuple(names)
                elif ref_table:  # DuckDB references tables of the same schema
                    ref_schema = "" if namespace == current else namespace
                    foreign.setdefault((namespace, table), []).append(
                        ForeignKey(tuple(names), ref_table, tuple(ref_names or ()), ref_schema))
        except self._duckdb.Error as exc:
            raise DatabaseError(f"cannot read the catalog: {exc}", reason="catalog", database=self.url) from None
        finally:
            cursor.close()
        tables = [Table(name, tuple(columns[(namespace, name)]), keys.get((namespace, name), ()),
                        tuple(foreign.get((namespace, name), ())), comment=comments.get((namespace, name)) or "",
                        schema="" if namespace == current else namespace)
                  for namespace, name, _ in order if columns.get((namespace, name))]
        if not tables:
            raise DatabaseError("the database has no tables or views to query", reason="catalog", database=self.url)
        return Schema(tuple(tables), "duckdb", default_schema=current)

    def _read_samples(self, tables: Sequence[Table]) -> dict[str, Values]:
        return {table.key: self._samples_of(table) for table in tables}

    def _samples_of(self, table: Table) -> dict[str, tuple[Any, ...]]:
        values: dict[str, tuple[Any, ...]] = {}
        q_table = ".".join('"' + part.replace('"', '""') + '"' for part in (table.schema, table.name) if part)
        for column in table.columns:
            q_col = '"' + column.name.replace('"', '""') + '"'
            try:
                _, rows, _ = self._execute(f"SELECT DISTINCT {q_col} FROM {q_table} WHERE {q_col} IS NOT NULL LIMIT {self.samples * 2}",
                                           seconds=_SAMPLE_SECONDS, max_rows=None)
            except (ValidationError, PolicyError):
                continue
            values[column.name] = tuple(v for v in (sample_value(r[0]) for r in rows) if v is not None)[: self.samples]
        return values


def _duckdb_position(message: str, prefix: int) -> tuple[int, int] | None:
    """(line, 0-based column) of the error in the query: DuckDB echoes the failing line (``LINE n: ...``)
    with carets under the error; ``prefix`` characters were sent before the query on its first line."""
    lines = message.splitlines()
    for i, line in enumerate(lines[:-1]):
        echo = re.match(r"LINE (\d+): ", line)
        if echo and "^" in lines[i + 1]:
            if line[echo.end():].startswith("..."):
                return None
            column = lines[i + 1].index("^") - echo.end()
            if int(echo.group(1)) == 1:
                column -= prefix
            return (int(echo.group(1)), column) if column >= 0 else None
    return None


def _located(message: str, text: str, where: tuple[int, int] | None, engine: str) -> ValidationError:
    if where is None:
        return ValidationError(message, text=text, engine=engine)
    line, column = where
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or column > len(lines[line - 1]):
        return ValidationError(message, text=text, engine=engine)
    offset = sum(len(part) + 1 for part in lines[: line - 1]) + column
    return ValidationError(message, text=text, engine=engine, line=line, column=column + 1,
                           offset=len(text[:offset].encode("utf-8")))
