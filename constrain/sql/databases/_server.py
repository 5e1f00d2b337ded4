"""PostgreSQL and MySQL/MariaDB, reached through SQLAlchemy: its URLs, connection pool and ``Inspector``."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar, Sequence

from ...errors import DatabaseError, PolicyError, ValidationError
from ..schema import Column, ForeignKey, Schema, Table
from ._base import DEFAULT_QUERY_SECONDS, DEFAULT_SAMPLES, EVERY_SCHEMA, Database, milliseconds, quoted_name_offset, sample_value
from ._samples import Values

_SAMPLE_SECONDS = 0.5  # reading one column's sample values stops after this long on the server


class _ServerDatabase(Database):
    """PostgreSQL and MySQL/MariaDB: SQLAlchemy for the URL, the connection pool and the catalog
    (``Inspector``); each query runs in its own read-only transaction with a server-side time limit,
    then is rolled back."""

    # SQLAlchemy dialect names this class serves, and the driver a plain scheme gets
    sqlalchemy_names: ClassVar[tuple[str, ...]] = ()
    default_driver: ClassVar[str] = ""
    driver_module: ClassVar[str] = ""
    @classmethod
    def connect_args(cls, connect_seconds: float) -> dict[str, Any]:
        """The driver's arguments that bound the time to connect."""
        return {"connect_timeout": max(1, round(connect_seconds))}

    @classmethod
    def prepare(cls, engine: Any) -> None:
        """Hook: what a new engine needs before its first connection."""
    # environment variables the driver reads a password from (scrubbed from messages like the URL's)
    password_variables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, engine: Any, *, samples: int = DEFAULT_SAMPLES, secrets: tuple[str, ...] = (), owned: bool = True) -> None:
        password = engine.url.password
        from_env = tuple(os.environ.get(name, "") for name in self.password_variables)
        super().__init__(samples=samples, secrets=secrets + from_env + ((str(password),) if password else ()))
        self.engine = engine
        self._owned = owned

    @property
    def url(self) -> str:
        return str(self.engine.url.render_as_string(hide_password=True))

    @property
    def _identity(self) -> dict[str, Any]:
        url = self.engine.url
        return {"backend": url.get_backend_name(), "host": url.host, "port": url.port, "database": url.database,
                "user": url.username}

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()

    # hooks --------------------------------------------------------------------------------------
    def _begin(self, conn: Any, seconds: float | None) -> None:
        """Make the connection's transaction read-only, with ``seconds`` as the engine's time limit."""
        raise NotImplementedError

    def _is_timeout(self, orig: BaseException) -> bool:
        raise NotImplementedError

    def _error_offset(self, orig: BaseException, sent: str, prefix: int) -> int | None:
        """Where in the query (a character offset) the engine says its error is, when it says."""
        return quoted_name_offset(str(orig), sent[prefix:])

    def _message(self, orig: BaseException) -> str:
        return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__

    # the work -----------------------------------------------------------------------------------
    def _connection(self) -> Any:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise self._connect_error(exc.orig or exc) from None
        except SQLAlchemyError as exc:
            raise DatabaseError(self.scrub(str(exc).splitlines()[0]), reason="connection", database=self.url) from None

    def _connect_error(self, orig: BaseException) -> DatabaseError:
        message = self.scrub(" ".join(str(orig).split()))
        lowered = message.lower()
        reason = "authentication" if ("password" in lowered or "access denied" in lowered or "authentication" in lowered) else "connection"
        return DatabaseError(f"cannot connect: {message}", reason=reason, database=self.url)

    def _execute(self, sql: str, *, seconds: float | None, max_rows: int | None, prefix: int = 0) -> tuple[tuple[str, ...], list[tuple[Any, ...]], bool]:
        from sqlalchemy.exc import DBAPIError

        with self._connection() as conn:
            try:
                self._begin(conn, seconds)
                result = conn.exec_driver_sql(_no_placeholders(sql))
                columns = tuple(result.keys()) if result.returns_rows else ()
                fetched = [tuple(r) for r in (result.fetchall() if max_rows is None else result.fetchmany(max_rows + 1))] if result.returns_rows else []
                result.close()
            except DBAPIError as exc:
                conn.rollback()
                raise self._query_error(exc.orig or exc, sql, prefix, seconds) from None
            conn.rollback()
        truncated = max_rows is not None and len(fetched) > max_rows
        return columns, fetched[:max_rows] if truncated else fetched, truncated

    def _query_error(self, orig: BaseException, sent: str, prefix: int, seconds: float | None) -> ValidationError:
        text = sent[prefix:]
        if self._is_timeout(orig):
            return PolicyError(f"query ran longer than {seconds} s and was cancelled by the server", rule="timeout",
                               text=text, engine=self.dialect)
        message = self.scrub(self._message(orig))
        offset = self._error_offset(orig, sent, prefix)
        where: dict[str, Any] = {}
        if offset is not None and 0 <= offset <= len(text):
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            where = {"line": line, "column": column, "offset": len(text[:offset].encode("utf-8"))}
        return ValidationError(f"{self.display_name} refuses the query: {message}", text=text, engine=self.dialect, **where)

    display_name: ClassVar[str] = ""

    def explain(self, sql: str) -> None:
        self._execute("EXPLAIN " + sql, seconds=DEFAULT_QUERY_SECONDS, max_rows=0, prefix=len("EXPLAIN "))

    def run(self, sql: str, *, max_rows: int | None = None, seconds: float | None = DEFAULT_QUERY_SECONDS) -> Any:
        from .._run import Rows

        if max_rows is not None and max_rows < 0:
            raise ValueError(f"max_rows must be >= 0, got {max_rows}")
        columns, rows, truncated = self._execute(sql, seconds=seconds, max_rows=max_rows)
        return Rows(columns, rows, truncated, max_rows)

    # the catalog --------------------------------------------------------------------------------
    def _reflect(self) -> Schema:
        import sqlalchemy as sa
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        try:
            with self._connection() as conn:
                inspector = sa.inspect(conn)
                current = inspector.default_schema_name or ""
                found = inspector.get_schema_names() if EVERY_SCHEMA in self.schemas else []
                tables = self._read_catalog(conn, inspector, current, self._wanted_schemas(current, found))
                conn.rollback()
        except DBAPIError as exc:
            raise self._connect_error(exc.orig or exc) if exc.connection_invalidated else DatabaseError(
                f"cannot read the catalog: {self.scrub(self._message(exc.orig or exc))}", reason="catalog", database=self.url) from None
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read the catalog: {self.scrub(str(exc).splitlines()[0])}", reason="catalog",
                                database=self.url) from None
        if not tables:
            raise DatabaseError("the database has no tables or views to query", reason="catalog", database=self.url)
        return Schema(tuple(tables), self.dialect, default_schema=current)

    def _read_catalog(self, conn: Any, inspector: Any, current: str, others: list[str]) -> list[Table]:
        """The tables of the current schema and of ``others``: the Inspector's bulk (``get_multi_*``) reads,
        a few queries per schema."""
        from sqlalchemy.engine.reflection import ObjectKind

        kinds = ObjectKind.TABLE | ObjectKind.VIEW | ObjectKind.MATERIALIZED_VIEW
        tables: list[Table] = []
        for namespace in (None, *others):
            names = inspector.get_table_names(schema=namespace) + inspector.get_view_names(schema=namespace)
            columns = inspector.get_multi_columns(schema=namespace, kind=kinds)
            keys = inspector.get_multi_pk_constraint(schema=namespace, kind=ObjectKind.TABLE)
            foreign = inspector.get_multi_foreign_keys(schema=namespace, kind=ObjectKind.TABLE)
            comments = inspector.get_multi_table_comment(schema=namespace, kind=kinds)
            tables += self._tables(namespace or "", current, names, columns, keys, foreign, comments)
        return tables

    def _tables(self, namespace: str, current: str, names: list[str], columns: dict[Any, Any], keys: dict[Any, Any],
                foreign: dict[Any, Any], comments: dict[Any, Any]) -> list[Table]:
        """The ``Table`` records of one schema from the Inspector's bulk answers (keyed (schema, table))."""
        outside = "" if namespace in ("", current) else namespace
        by_name = {key[1]: key for key in columns}
        tables = []
        for name in names:
            key = by_name.get(name)
            if key is None or not columns[key]:
                continue
            cols = tuple(Column(c["name"], self._type_name(c["type"]), comment=c.get("comment") or "") for c in columns[key])
            pk = tuple((keys.get(key) or {}).get("constrained_columns") or ())
            fks = tuple(ForeignKey(tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]),
                                   "" if fk.get("referred_schema") in (None, "", current) else fk["referred_schema"])
                        for fk in foreign.get(key, ()) if fk.get("referred_table"))
            comment = (comments.get(key) or {}).get("text") or ""
            tables.append(Table(name, cols, pk, fks, comment=comment, schema=outside))
        return tables

    def _type_name(self, kind: Any) -> str:
        try:
            return str(kind.compile(dialect=self.engine.dialect))
        except Exception:  # a type SQLAlchemy cannot render for this dialect: its class name says enough
            return type(kind).__name__.upper()

    def _read_samples(self, tables: Sequence[Table]) -> dict[str, Values]:
        """Each table's columns' values, one time-bounded read per column; one read-only transaction per
        table unless a read fails (the transaction is then rolled back and begun again)."""
        from sqlalchemy.exc import DBAPIError

        out: dict[str, Values] = {}
        with self._connection() as conn:
            for table in tables:
                values: Values = {}
                q_table = f"{self.quote(table.schema)}.{self.quote(table.name)}" if table.schema else self.quote(table.name)
                begun = False
                for column in table.columns:
                    q_col = self.quote(column.name)
                    try:
                        if not begun:
                            self._begin(conn, _SAMPLE_SECONDS)
                            begun = True
                        rows = conn.exec_driver_sql(_no_placeholders(
                            f"SELECT DISTINCT {q_col} FROM {q_table} WHERE {q_col} IS NOT NULL LIMIT {self.samples * 2}"
                        )).fetchall()
                    except DBAPIError:
                        conn.rollback()
                        begun = False
                        continue
                    values[column.name] = tuple(v for v in (sample_value(r[0]) for r in rows) if v is not None)[: self.samples]
                conn.rollback()
                out[table.key] = values
        return out

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'


class PostgresDatabase(_ServerDatabase):
    """PostgreSQL (psycopg 3): ``BEGIN READ ONLY`` and ``SET LOCAL statement_timeout`` around each query."""

    dialect = "postgres"
    extra = "postgres"
    system_prefixes = ("pg_",)  # pg_catalog, pg_toast, pg_temp_N
    display_name = "PostgreSQL"
    sqlalchemy_names = ("postgresql",)
    default_driver = "psycopg"
    driver_module = "psycopg"
    password_variables = ("PGPASSWORD",)

    def _begin(self, conn: Any, seconds: float | None) -> None:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds(seconds)}")

    def _is_timeout(self, orig: BaseException) -> bool:
        return getattr(orig, "sqlstate", None) == "57014"  # query_canceled

    def _message(self, orig: BaseException) -> str:
        diag = getattr(orig, "diag", None)
        primary = getattr(diag, "message_primary", None)
        return primary or super()._message(orig)

    def _error_offset(self, orig: BaseException, sent: str, prefix: int) -> int | None:
        position = getattr(getattr(orig, "diag", None), "statement_position", None)
        if position and str(position).isdigit():
            return int(position) - 1 - prefix
        return super()._error_offset(orig, sent, prefix)


class MySQLDatabase(_ServerDatabase):
    """MySQL and MariaDB (PyMySQL): ``START TRANSACTION READ ONLY`` after the server's statement time limit
    (MariaDB ``max_statement_time``, MySQL ``max_execution_time``)."""

    dialect = "mysql"
    extra = "mysql"
    system_schemas = frozenset({"information_schema", "mysql", "performance_schema", "sys"})
    display_name = "MySQL"
    sqlalchemy_names = ("mysql", "mariadb")
    default_driver = "pymysql"
    driver_module = "pymysql"

    @classmethod
    def connect_args(cls, connect_seconds: float) -> dict[str, Any]:
        # PyMySQL's connect_timeout covers the TCP connection only: a host that accepts and never greets
        # would hang the handshake, so reads are bounded too until the connection is up (see prepare)
        seconds = max(1, round(connect_seconds))
        return {"connect_timeout": seconds, "read_timeout": seconds}

    @classmethod
    def prepare(cls, engine: Any) -> None:
        import sqlalchemy as sa

        def unbounded_reads(dbapi_connection: Any, record: Any) -> None:
            # a query's time is bounded on the server (max_statement_time); a client read timeout would
            # abandon a query the server still runs
            if hasattr(dbapi_connection, "_read_timeout"):
                dbapi_connection._read_timeout = None

        sa.event.listen(engine, "connect", unbounded_reads)

    def _begin(self, conn: Any, seconds: float | None) -> None:
        if getattr(self.engine.dialect, "is_mariadb", False):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {0 if seconds is None else max(seconds, 0.001):.3f}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds(seconds)}")
        # the session too: a DDL statement commits the transaction it is in and would run outside it
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        conn.exec_driver_sql("START TRANSACTION READ ONLY")

    def _read_catalog(self, conn: Any, inspector: Any, current: str, others: list[str]) -> list[Table]:
        """``information_schema`` in four queries for every schema at once: SQLAlchemy's MySQL Inspector reads
        one ``SHOW CREATE TABLE`` per table."""
        from ._mysql_catalog import read_catalog

        return read_catalog(conn, self.engine.dialect, current, others, self._type_name)

    def _is_timeout(self, orig: BaseException) -> bool:
        code = orig.args[0] if getattr(orig, "args", None) else None
        return code in (1969, 3024)  # MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT

    def _message(self, orig: BaseException) -> str:
        args = getattr(orig, "args", ())
        if len(args) >= 2 and isinstance(args[1], str):
            return f"({args[0]}) {args[1]}"
        return super()._message(orig)

    def _error_offset(self, orig: BaseException, sent: str, prefix: int) -> int | None:
        near = re.search(r"near '(.{1,80}?)' at line", str(orig), re.DOTALL)
        if near:
            found = sent.find(near.group(1)[:40], prefix)
            return found - prefix if found >= 0 else None
        return super()._error_offset(orig, sent, prefix)

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"


def _no_placeholders(sql: str) -> str:
    """``sql`` for a driver with the ``format``/``pyformat`` parameter style (psycopg, PyMySQL): SQLAlchemy
    always passes parameters, so the driver reads every ``%`` as a placeholder; ``%%`` is a literal one."""
    return sql.replace("%", "%%")
