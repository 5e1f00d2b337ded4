"""The ``Database`` base class: what every engine provides, and what they share."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
from pathlib import Path
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from ...errors import DatabaseError, InputError
from ..schema import Schema, Table, sample_literal_ok
from ._samples import SampleFile, Values, catalog_fingerprint, default_directory, disk_bytes

DEFAULT_QUERY_SECONDS = 5.0  # a query's time limit on the engine
DEFAULT_CONNECT_SECONDS = 10.0  # an unreachable host is an error after this long
DEFAULT_SAMPLES = 3  # distinct values per column read for prompts
EVERY_SCHEMA = "*"  # in use_schemas: every schema of the database but the engine's own


class Database(ABC):
    """One connection to one database (see the module doc). Use as a context manager, or ``close()``."""

    dialect: ClassVar[str]
    # the pip extra that installs this engine's driver
    extra: ClassVar[str] = ""
    # whether tables of other schemas (namespaces) than the connection's current one can be read
    has_schemas: ClassVar[bool] = True
    # the engine's own schemas, which "*" leaves out (lower case), and prefixes of such names
    system_schemas: ClassVar[frozenset[str]] = frozenset({"information_schema"})
    system_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, samples: int = DEFAULT_SAMPLES, secrets: tuple[str, ...] = ()) -> None:
        if samples < 0:
            raise InputError(f"samples must be >= 0, got {samples}")
        self.samples = samples
        self._secrets = tuple(s for s in secrets if s)
        self.schemas: tuple[str, ...] = ()
        self._schema: Schema | None = None
        self._lock = threading.Lock()
        self._samples_lock = threading.Lock()
        self._sample_file: SampleFile | None = None  # the disk cache of the current catalog
        self._sample_file_for: Schema | None = None
        self._file_read = False
        self._sampled: dict[str, Values] = {}  # table key -> its columns' values, for the current catalog

    # -- what every engine provides ----------------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """Where the database is, as a URL or path, with any password replaced by ``***``."""

    @abstractmethod
    def _reflect(self) -> Schema:
        """The schema read from the catalog: names, types, keys and comments (no sample values)."""

    @abstractmethod
    def _read_samples(self, tables: Sequence[Table]) -> dict[str, Values]:
        """Up to ``self.samples`` distinct non-null values per column of each table (keyed by ``Table.key``),
        each read bounded in time; a column whose read fails or times out is left out."""

    @property
    @abstractmethod
    def _identity(self) -> dict[str, Any]:
        """What names this database for the sample cache: engine, host, port, database, user or file; never
        a secret."""

    def _catalog_extra(self) -> dict[str, Any]:
        """Hook: more of the catalog's state than its tables (a file's size and modification time)."""
        return {}

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
        """The tables and views of the database, read from its catalog once and kept: names, types, keys and
        comments, no sample values (``sampled`` reads those for the tables a prompt shows)."""
        with self._lock:
            if self._schema is None:
                self._schema = self._reflect()
            return self._schema

    def sampled(self, tables: Sequence[Table]) -> tuple[Table, ...]:
        """``tables`` (same order) with up to ``samples`` distinct values per column, read for these tables
        only, on first use, then kept in memory and on disk (keyed by the catalog's state, so a new process
        starts warm; see ``_samples``). With ``samples=0``, ``tables`` as they are."""
        tables = tuple(tables)
        if not self.samples or not tables:
            return tables
        schema = self.schema
        with self._samples_lock:
            cache = self._cache_for(schema)
            missing = [t for t in {t.key: t for t in tables}.values() if t.key not in self._sampled]
            if missing and not self._file_read:
                self._sampled = {**cache.read(), **self._sampled}
                self._file_read = True
                missing = [t for t in missing if t.key not in self._sampled]
            if missing:
                fresh = self._read_samples(missing)
                read = {t.key: fresh.get(t.key, {}) for t in missing}
                self._sampled.update(read)
                cache.write(read)
            return tuple(t.with_samples(self._sampled[t.key]) for t in tables)

    def _cache_for(self, schema: Schema) -> SampleFile:
        """The disk cache of ``schema``'s catalog state (a new one, and an empty memory, when it changed)."""
        if self._sample_file is None or self._sample_file_for is not schema:
            identity = json.dumps({"dialect": self.dialect, "samples": self.samples, **self._identity}, sort_keys=True, default=str)
            key = hashlib.sha256(f"{identity}\0{catalog_fingerprint(schema.tables, self._catalog_extra())}".encode("utf-8")).hexdigest()
            self._sample_file, self._sample_file_for = SampleFile(default_directory(), key, disk_bytes()), schema
            self._sampled, self._file_read = {}, False
        return self._sample_file

    def use_schemas(self, names: Sequence[str]) -> None:
        """Also read the tables of these schemas (PostgreSQL schemas, MySQL databases, DuckDB schemas); a
        query names them ``schema.table``. The connection's current schema is always read. ``"*"`` reads
        every schema but the engine's own (``information_schema``, ``pg_catalog``, ``mysql``, ...): a
        warehouse with one schema per source database."""
        names = tuple(dict.fromkeys(str(n) for n in names if str(n)))
        if names and not self.has_schemas and names != (EVERY_SCHEMA,):
            raise InputError(f"{self.dialect} databases have no schemas to add ({', '.join(names)})")
        with self._lock:
            if names != self.schemas:
                self.schemas, self._schema = names, None

    def _wanted_schemas(self, current: str, found: Sequence[str]) -> list[str]:
        """The schemas to read besides ``current``: those named, with ``"*"`` standing for every one of
        ``found`` (the database's schemas) that is not the engine's own."""
        wanted: dict[str, None] = {}
        for name in self.schemas:
            if name != EVERY_SCHEMA:
                wanted[name] = None
                continue
            for schema in found:
                if not self._is_system_schema(schema):
                    wanted[schema] = None
        wanted.pop(current, None)
        return list(wanted)

    def _is_system_schema(self, name: str) -> bool:
        """Whether ``name`` is one of the engine's own schemas (its catalog, statistics, users)."""
        return name.lower() in self.system_schemas or name.lower().startswith(self.system_prefixes)

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


def import_driver(module: str, extra: str, where: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DatabaseError(f"the driver {module!r} is not installed: pip install \"constrain-cfg[{extra}]\"",
                            reason="driver", database=where) from None


def milliseconds(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, int(seconds * 1000))


def sample_value(value: Any) -> Any:
    """A value fit for a prompt's sample comment (text and numbers; ``Decimal`` as a float), else None."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        value = float(value)
    return value if sample_literal_ok(value) else None


_QUOTED = re.compile(r"""["'`]([^"'`\n]{1,128})["'`]""")


def quoted_name_offset(message: str, text: str) -> int | None:
    """The offset in ``text`` of the first name the engine's message quotes that the text holds."""
    for found in _QUOTED.finditer(message):
        name = found.group(1)
        match = re.search(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])", text)
        if match:
            return match.start()
    return None


class FileDatabase(Database):
    """A database in one local file (SQLite, DuckDB): its sample cache is keyed by the file, and the
    catalog's state includes the file's size and modification time."""

    path: Path

    @property
    def _identity(self) -> dict[str, Any]:
        return {"file": str(self.path.resolve())}

    def _catalog_extra(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
