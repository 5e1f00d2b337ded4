"""Databases: one ``Database`` object per connection, whatever the engine.

``connect(db)`` takes what users have — a packaged name (``chinook``), a SQLite path, a DuckDB file
(``*.duckdb``, ``duckdb:///path``), a database URL in SQLAlchemy's form (``postgresql://user:pw@host/db``,
``mysql://…``, ``mariadb://…``, ``sqlite:///path``; a plain scheme picks the driver this project installs,
``+driver`` forms work too) or an existing SQLAlchemy ``Engine`` — and returns the engine's ``Database``:
its ``dialect``, its ``schema`` (tables, columns, keys and comments, read once from the catalog),
``sampled(tables)`` (those tables with a few sample values per column, read lazily and cached in memory and
on disk: ``_samples``), ``explain(sql)`` (the engine's own compiler as the last judge of a query) and ``run(sql)`` (read-only
on the engine itself, with a server-side time limit, rolled back).

What differs between engines is data and a few hooks in small subclasses (``constrain/sql/databases/``: one module per engine family).
Passwords never leave the object: ``url`` and ``repr`` hide them, and every error message is scrubbed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from ...errors import DatabaseError, InputError
from ._base import DEFAULT_CONNECT_SECONDS, DEFAULT_QUERY_SECONDS, DEFAULT_SAMPLES, Database, import_driver
from ._duckdb import DuckDBDatabase
from ._server import MySQLDatabase, PostgresDatabase, _ServerDatabase
from ._sqlite import SQLiteDatabase

__all__ = ["Database", "connect", "DEFAULT_QUERY_SECONDS", "DEFAULT_CONNECT_SECONDS", "DuckDBDatabase",
           "MySQLDatabase", "PostgresDatabase", "SQLiteDatabase"]


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
    if isinstance(db, Database):
        return db
    if not isinstance(db, (str, os.PathLike)):
        return from_engine(db, samples=samples)
    text = os.fspath(db)
    if "://" in text:
        return from_url(text, samples=samples, connect_seconds=connect_seconds)
    path = Path(text).expanduser()
    if path.suffix.lower() in (".duckdb", ".ddb"):
        if not path.is_file():
            raise InputError("no such DuckDB database file", source=text)
        return DuckDBDatabase(path, samples=samples)
    from ..._databases import resolve_database

    return SQLiteDatabase(resolve_database(text), samples=samples)


_SERVER_CLASSES: tuple[type[_ServerDatabase], ...] = (PostgresDatabase, MySQLDatabase)


def from_url(text: str, *, samples: int = DEFAULT_SAMPLES, connect_seconds: float = DEFAULT_CONNECT_SECONDS) -> Database:
    """The database a SQLAlchemy-style URL names; a plain scheme gets the driver this project installs."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError

    try:
        url = sa.engine.make_url(text)
    except ArgumentError:
        raise InputError(f"not a database URL: {_hide_password(text)!r}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise InputError("sqlite:/// needs a database file path")
        return SQLiteDatabase(url.database, samples=samples)
    if backend == "duckdb":
        if not url.database or url.database == ":memory:":
            raise InputError("duckdb:/// needs a database file path")
        if not Path(url.database).is_file():
            raise InputError("no such DuckDB database file", source=url.database)
        return DuckDBDatabase(url.database, samples=samples)
    cls = next((c for c in _SERVER_CLASSES if backend in c.sqlalchemy_names), None)
    if cls is None:
        known = ", ".join(sorted({n for c in _SERVER_CLASSES for n in c.sqlalchemy_names} | {"sqlite", "duckdb"}))
        raise InputError(f"unsupported database scheme {backend!r} (supported: {known})")
    shown = url.render_as_string(hide_password=True)
    if not driver:
        import_driver(cls.driver_module, cls.extra, shown)
        url = url.set(drivername=f"{backend}+{cls.default_driver}")
    try:
        engine = sa.create_engine(url, connect_args=cls.connect_args(connect_seconds), pool_pre_ping=True)
        cls.prepare(engine)
    except ModuleNotFoundError as exc:
        raise DatabaseError(f"the driver {exc.name!r} is not installed: pip install \"constrain-cfg[{cls.extra}]\"",
                            reason="driver", database=shown) from None
    except ArgumentError as exc:
        raise InputError(f"cannot use the database URL {shown!r}: {exc}") from None
    password = url.password
    return cls(engine, samples=samples, secrets=(str(password),) if password else ())


def from_engine(engine: Any, *, samples: int = DEFAULT_SAMPLES) -> Database:
    """The ``Database`` over an application's own SQLAlchemy ``Engine`` (not disposed by ``close()``)."""
    name = getattr(getattr(engine, "dialect", None), "name", None)
    if name is None or not hasattr(engine, "url"):
        raise InputError(f"db must be a path, a URL, a Database or a SQLAlchemy Engine, got {type(engine).__name__}")
    cls = next((c for c in _SERVER_CLASSES if name in c.sqlalchemy_names), None)
    if cls is not None:
        return cls(engine, samples=samples, owned=False)
    if name == "sqlite" and engine.url.database:
        return SQLiteDatabase(engine.url.database, samples=samples)
    if name == "duckdb" and engine.url.database:
        return DuckDBDatabase(engine.url.database, samples=samples)
    raise InputError(f"unsupported SQLAlchemy dialect {name!r} (supported: postgresql, mysql, mariadb, sqlite, duckdb)")


def _hide_password(text: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
