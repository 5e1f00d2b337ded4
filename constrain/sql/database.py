"""Databases: one ``Database`` object per connection, whatever the engine.

``connect(db)`` takes what users have — a packaged name (``chinook``), a SQLite path, a DuckDB file
(``*.duckdb``, ``duckdb:///path``), a database URL in SQLAlchemy's form (``postgresql://user:pw@host/db``,
``mysql://…``, ``mariadb://…``, ``sqlite:///path``; a plain scheme picks the driver this project installs,
``+driver`` forms work too) or an existing SQLAlchemy ``Engine`` — and returns the engine's ``Database``:
its ``dialect``, its ``schema`` (tables, columns, keys, comments and a few sample values per column, read
once), ``explain(sql)`` (the engine's own compiler as the last judge of a query) and ``run(sql)`` (read-only
on the engine itself, with a server-side time limit, rolled back).

What differs between engines is data and a few hooks in small subclasses (``constrain.sql._engines``).
Passwords never leave the object: ``url`` and ``repr`` hide them, and every error message is scrubbed.
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

from ..errors import DatabaseError, InputError
from .schema import Schema

__all__ = ["Database", "connect", "DEFAULT_QUERY_SECONDS", "DEFAULT_CONNECT_SECONDS"]

DEFAULT_QUERY_SECONDS = 5.0  # a query's time limit on the engine
DEFAULT_CONNECT_SECONDS = 10.0  # an unreachable host is an error after this long
DEFAULT_SAMPLES = 3  # distinct values per column read for prompts


class Database(ABC):
    """One connection to one database (see the module doc). Use as a context manager, or ``close()``."""

    dialect: ClassVar[str]
    # the pip extra that installs this engine's driver
    extra: ClassVar[str] = ""
    # whether tables of other schemas (namespaces) than the connection's current one can be read
    has_schemas: ClassVar[bool] = True

    def __init__(self, *, samples: int = DEFAULT_SAMPLES, secrets: tuple[str, ...] = ()) -> None:
        if samples < 0:
            raise InputError(f"samples must be >= 0, got {samples}")
        self.samples = samples
        self._secrets = tuple(s for s in secrets if s)
        self.schemas: tuple[str, ...] = ()
        self._schema: Schema | None = None
        self._lock = threading.Lock()

    # -- what every engine provides ----------------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """Where the database is, as a URL or path, with any password replaced by ``***``."""

    @abstractmethod
    def _reflect(self) -> Schema:
        """The schema read from the catalog (with ``self.samples`` values per column)."""

    @abstractmethod
    def explain(self, sql: str) -> None:
        """Compile ``sql`` with the engine (``EXPLAIN``, read-only): a ``ValidationError`` with the engine's
        message, located in ``sql`` where the engine says where, when it refuses the query."""

    @abstractmethod
    def run(self, sql: str, *, max_rows: int | None = None, seconds: float | None = DEFAULT_QUERY_SECONDS) -> Any:
        """Run ``sql`` read-only (rolled back) within ``seconds`` (cancelled on the engine past it:
        ``PolicyError(rule="timeout")``); ``Rows`` of at most ``max_rows`` (``Rows.truncated`` says when
        it cut). An engine error is a ``ValidationError`` with the engine's message."""

    def close(self) -> None:
        """Release the connection (idempotent)."""

    # -- shared -------------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        """The tables and views of the database, read from its catalog once and kept."""
        with self._lock:
            if self._schema is None:
                self._schema = self._reflect()
            return self._schema

    def use_schemas(self, names: Sequence[str]) -> None:
        """Also read the tables of these schemas (PostgreSQL schemas, MySQL databases, DuckDB schemas); a
        query names them ``schema.table``. The connection's current schema is always read."""
        names = tuple(dict.fromkeys(str(n) for n in names if str(n)))
        if names and not self.has_schemas:
            raise InputError(f"{self.dialect} databases have no schemas to add ({', '.join(names)})")
        with self._lock:
            if names != self.schemas:
                self.schemas, self._schema = names, None

    def scrub(self, message: str) -> str:
        """``message`` with every secret this object knows (passwords) replaced by ``***``."""
        for secret in self._secrets:
            if len(secret) >= 6:
                message = message.replace(secret, "***")
            else:  # a short one only where it stands alone: "ab" must not eat every "ab" of a message
                message = re.sub(r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])", "***", message)
        return message

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def connect(
    db: str | os.PathLike[str] | Database | Any,
    *,
    schemas: Sequence[str] = (),
    samples: int = DEFAULT_SAMPLES,
    connect_seconds: float = DEFAULT_CONNECT_SECONDS,
) -> Database:
    """The ``Database`` for ``db``: a ``Database`` (returned as is), a SQLAlchemy ``Engine``, a URL
    (``postgresql://``, ``mysql://``, ``mariadb://``, ``duckdb:///``, ``sqlite:///``, with ``+driver`` or
    without), a ``.duckdb`` file, a SQLite file, or a packaged name (``chinook``). ``schemas`` names
    schemas to read besides the connection's current one (their tables are ``schema.table``)."""
    database = _open(db, samples, connect_seconds)
    if schemas:
        database.use_schemas(schemas)
    return database


def _open(db: str | os.PathLike[str] | Database | Any, samples: int, connect_seconds: float) -> Database:
    from . import _engines

    if isinstance(db, Database):
        return db
    if not isinstance(db, (str, os.PathLike)):
        return _engines.from_engine(db, samples=samples)
    text = os.fspath(db)
    if "://" in text:
        return _engines.from_url(text, samples=samples, connect_seconds=connect_seconds)
    path = Path(text).expanduser()
    if path.suffix.lower() in (".duckdb", ".ddb"):
        if not path.is_file():
            raise InputError("no such DuckDB database file", source=text)
        return _engines.DuckDBDatabase(path, samples=samples)
    from .._databases import resolve_database

    return _engines.SQLiteDatabase(resolve_database(text), samples=samples)
