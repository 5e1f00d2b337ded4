"""The ``Database`` base class: what every engine provides, and what they share."""

from __future__ import annotations

import importlib
import re
import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from ...errors import DatabaseError, InputError
from ..schema import Schema, Table, sample_literal_ok

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

    def sampled(self, tables: Sequence[Table]) -> tuple[Table, ...]:
        """``tables`` with their columns' sample values (placeholder: the schema already carries them)."""
        return tuple(tables)

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
