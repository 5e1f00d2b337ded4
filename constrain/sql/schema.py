"""Database schemas: the tables and columns a query may name.

A ``Schema`` comes from a live SQLite file (opened read-only), from ``CREATE TABLE`` DDL in any
dialect sqlglot reads, or from a plain ``{"table": {"column": "type"}}`` mapping. It feeds the
schema-bound grammar (``constrain.sql.grammar``), sqlglot's qualifier and prompts (``describe``).
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import InputError
from ._dialects import Dialect, get_dialect

__all__ = ["Column", "ForeignKey", "Table", "Schema"]

SAMPLE_CHARS = 40  # a sample value longer than this is cut (with "...") in prompts
# A prompt shows this many of a column's sample values, for text columns only: a number's type says what it
# looks like. Spider dev, sql.ask k=2 (docs/benchmarks.md): 326/493 right with three values of every column,
# 323 with one of each text column, for 0.54x the schema tokens. The values read stay three: schema
# linking matches a question's literals against all of them (recall 96.2% at 4,000 tokens; 95.3% with one).
SHOWN_SAMPLES = 1
_SAMPLE_SECONDS = 0.5  # reading one table's sample values stops after this long


@dataclass(frozen=True)
class Column:
    """One column: its catalog name and declared type (``""`` when the catalog declares none), and a few
    distinct values read from the data (``Schema.from_sqlite(..., samples=N)``) for prompts."""

    name: str
    type: str = ""
    samples: tuple[Any, ...] = field(default=(), compare=False)
    comment: str = field(default="", compare=False)


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of a table reference ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    ref_schema: str = ""  # the referenced table's schema, when it is not the connection's current one

    @property
    def ref_key(self) -> str:
        """The referenced table as ``Table.key`` names it."""
        return f"{self.ref_schema}.{self.ref_table}" if self.ref_schema else self.ref_table


@dataclass(frozen=True)
class Table:
    """One table (or view), its columns in catalog order, its primary key and foreign keys (when known)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default=(), compare=False)
    foreign_keys: tuple[ForeignKey, ...] = field(default=(), compare=False)
    comment: str = field(default="", compare=False)
    # the schema (namespace) holding the table when it is not the connection's current one ("" when it is)
    schema: str = ""

    @property
    def key(self) -> str:
        """How the schema and its errors name the table: ``name``, or ``schema.name`` outside the current schema."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def with_samples(self, values: Mapping[str, tuple[Any, ...]]) -> Table:
        """This table with each named column's sample values replaced by ``values[name]``."""
        columns = tuple(replace(c, samples=values.get(c.name, c.samples)) for c in self.columns)
        return replace(self, columns=columns)


@dataclass(frozen=True)
class Schema:
    """The tables of one database, read in one SQL dialect."""

    tables: tuple[Table, ...]
    dialect: str = "sqlite"
    # the connection's current schema (public, main, the MySQL database): ``public.album`` names ``album``
    default_schema: str = field(default="", compare=False)
    _by_key: dict[str, Table] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dialect", get_dialect(self.dialect).name)
        for table in self.tables:
            if not isinstance(table, Table):
                raise InputError(f"schema tables must be Table objects, got {type(table).__name__}")
            if not table.name:
                raise InputError("a schema table has an empty name")
            if not table.columns:
                raise InputError(f"table {table.name!r} has no columns; every SQL table has at least one")
            for column in table.columns:
                if not column.name:
                    raise InputError(f"table {table.name!r} has a column with an empty name")
            self._by_key.setdefault(table.key, table)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def from_sqlite(cls, path: str | Path, *, samples: int = 0) -> Schema:
        """The tables and views of a SQLite database file, opened read-only, with their primary and
        foreign keys; ``samples`` > 0 also reads that many distinct non-null values per column (for
        ``describe(samples=True)``; each table's read is bounded in time)."""
        file = Path(path)
        if not file.is_file():
            raise InputError("no such SQLite database file", source=str(path))
        uri = file.resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open SQLite database: {exc}", source=str(path)) from None
        try:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
            ).fetchall()
            tables = []
            for (name,) in names:
                try:
                    conn.execute("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", (name,)).fetchall()
                except sqlite3.OperationalError as exc:  # a view over a dropped table: nothing can query it
                    warnings.warn(f"{path}: {name!r} cannot be read ({exc}); left out of the schema", stacklevel=2)
                    continue
                tables.append(_sqlite_table(conn, name, samples))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a readable SQLite database: {exc}", source=str(path)) from None
        finally:
            conn.close()
        return cls(tuple(tables), "sqlite")

    @classmethod
    def from_ddl(cls, text: str, dialect: str = "sqlite") -> Schema:
        """The tables created by the ``CREATE TABLE`` statements in ``text`` (other statements are skipped).

        A ``CREATE TABLE`` statement that sqlglot cannot read raises ``InputError`` naming where it starts.
        """
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError, TokenError
        from sqlglot.tokens import TokenType

        info = get_dialect(dialect)
        reader = sqlglot.Dialect.get_or_raise(info.sqlglot_name)
        try:
            tokens = reader.tokenize(text)
        except TokenError as exc:
            raise InputError(f"cannot tokenize DDL as {info.name}: {exc}") from None
        tables: list[Table] = []
        for statement in _statements(tokens, TokenType.SEMICOLON):
            if not _is_create_table(statement, TokenType):
                continue
            try:
                parsed = reader.parser().parse(statement, text)
            except ParseError as exc:
                detail = exc.errors[0] if exc.errors else {}
                where = f"line {detail.get('line', statement[0].line)}, column {detail.get('col', '?')}"
                reason = detail.get("description") or str(exc).splitlines()[0]
                raise InputError(f"cannot read CREATE TABLE at {where}: {reason}") from None
            for node in parsed:
                if isinstance(node, exp.Create) and isinstance(node.this, exp.Schema):
                    tables.append(_table_from_create(node.this, info))
        if not tables:
            raise InputError(f"no CREATE TABLE statement found in the DDL ({info.name})")
        return cls(tuple(tables), info.name)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Mapping[str, str] | Sequence[str]], dialect: str = "sqlite") -> Schema:
        """``{"table": {"column": "type", ...}}`` (or ``{"table": ["column", ...]}`` without types)."""
        if not isinstance(mapping, Mapping):
            raise InputError(f"schema mapping must be a dict of tables, got {type(mapping).__name__}")
        tables = []
        for name, columns in mapping.items():
            if isinstance(columns, Mapping):
                cols = tuple(Column(str(c), str(t or "")) for c, t in columns.items())
            elif isinstance(columns, (list, tuple)):
                cols = tuple(Column(str(c)) for c in columns)
            else:
                raise InputError(f"columns of table {name!r} must be a dict or a list, got {type(columns).__name__}")
            tables.append(Table(str(name), cols))
        return cls(tuple(tables), dialect)

    # -- lookup -------------------------------------------------------------------------------------
    @property
    def sql_dialect(self) -> Dialect:
        return get_dialect(self.dialect)

    def table(self, name: str) -> Table | None:
        """The table whose ``key`` is ``name`` (matched case-insensitively where the dialect folds case)."""
        exact = self._by_key.get(name)
        if exact is not None:
            return exact
        same = self.sql_dialect.same_identifier
        return next((t for t in self.tables if same(t.key, name)), None)

    def find(self, name: str, qualifier: str = "") -> Table | None:
        """The table a query names as ``qualifier.name`` (or ``name``): unqualified, or qualified by the
        current schema, it is a table of the current schema; else a table of schema ``qualifier``."""
        same = self.sql_dialect.same_identifier
        current = not qualifier or (self.default_schema and same(self.default_schema, qualifier))
        if current:
            exact = self._by_key.get(name)
            if exact is not None and not exact.schema:
                return exact
            return next((t for t in self.tables if not t.schema and same(t.name, name)), None)
        return next((t for t in self.tables if t.schema and same(t.schema, qualifier) and same(t.name, name)), None)

    def quoted(self, table: Table) -> str:
        """``table`` as a query of this dialect names it: its schema qualifier, when it has one, then its name."""
        quote = self.sql_dialect.quote
        return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)

    def table_names(self) -> list[str]:
        return [t.key for t in self.tables]

    def column_names(self) -> list[str]:
        """Every distinct column name, in first-seen order."""
        seen: dict[str, None] = {}
        for table in self.tables:
            for column in table.columns:
                seen.setdefault(column.name, None)
        return list(seen)

    def to_sqlglot_mapping(self) -> dict[str, dict[str, str]]:
        """``{table: {column: type}}`` for sqlglot's qualifier/optimizer (untyped columns read as TEXT)."""
        return {t.key: {c.name: _sqlglot_type(c.type, self.dialect) for c in t.columns} for t in self.tables}

    def describe(self, *, keys: bool = False, samples: bool = False) -> str:
        """``CREATE TABLE``-like text for prompts: compact, one table per line; with ``keys`` the primary
        and foreign keys, with ``samples`` a comment of up to ``SHOWN_SAMPLES`` sample values after each
        non-key column that holds text (one column per line then; values cut at ``SAMPLE_CHARS``)."""
        quote = self.sql_dialect.quote
        lines = []
        for table in self.tables:
            if not keys and not samples:
                cols = ", ".join(f"{quote(c.name)} {c.type}".rstrip() for c in table.columns)
                lines.append(f"CREATE TABLE {self.quoted(table)} ({cols});")
                continue
            if table.comment:
                lines.append(f"-- {_one_line(table.comment)}")
            lines.append(f"CREATE TABLE {self.quoted(table)} (")
            lines += _column_lines(table, quote, keys, samples)
            lines.append(");")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.tables)

    def __iter__(self) -> Iterable[Table]:  # type: ignore[override]
        return iter(self.tables)


def _sqlite_table(conn: sqlite3.Connection, name: str, samples: int) -> Table:
    info = conn.execute("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", (name,)).fetchall()
    primary_key = tuple(col for col, _, pk in sorted(info, key=lambda r: r[2]) if pk)
    foreign_keys: dict[int, tuple[list[str], str, list[str | None]]] = {}
    try:
        for fk_id, _, ref_table, source, target in conn.execute(
            'SELECT id, seq, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq', (name,)
        ):
            entry = foreign_keys.setdefault(fk_id, ([], ref_table, []))
            entry[0].append(source)
            entry[2].append(target)
    except sqlite3.Error:
        foreign_keys = {}
    keys = []
    for sources, ref_table, targets in foreign_keys.values():
        if any(t is None for t in targets):  # REFERENCES t without columns: t's primary key
            ref = conn.execute("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (ref_table,)).fetchall()
            targets = [r[0] for r in ref] if len(ref) == len(sources) else targets
        keys.append(ForeignKey(tuple(sources), ref_table, tuple(t or "" for t in targets)))
    values = _sample_values(conn, name, [col for col, _, _ in info], samples) if samples > 0 else {}
    columns = tuple(Column(col, ctype or "", values.get(col, ())) for col, ctype, _ in info)
    return Table(name, columns, primary_key, tuple(keys))


def _sample_values(conn: sqlite3.Connection, table: str, columns: list[str], n: int) -> dict[str, tuple[Any, ...]]:
    """Up to ``n`` distinct non-null values per column (text and numbers only), within a time bound."""
    deadline = time.monotonic() + _SAMPLE_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    out: dict[str, tuple[Any, ...]] = {}
    try:
        for col in columns:
            q_col, q_table = '"' + col.replace('"', '""') + '"', '"' + table.replace('"', '""') + '"'
            try:
                rows = conn.execute(
                    f"SELECT DISTINCT {q_col} FROM {q_table} WHERE {q_col} IS NOT NULL LIMIT ?", (n * 2,)
                ).fetchall()
            except (sqlite3.Error, ValueError):  # interrupted, or undecodable text
                break
            kept = [v for (v,) in rows if sample_literal_ok(v)]
            out[col] = tuple(kept[:n])
    finally:
        conn.set_progress_handler(None, 0)
    return out


def sample_literal_ok(value: Any) -> bool:
    """Whether a stored value can stand in a prompt's sample comment: text with something in it, or a number."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and bool(value.strip()))


def _column_lines(table: Table, quote: Any, keys: bool, samples: bool) -> list[str]:
    single_fk = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1} if keys else {}
    pk = table.primary_key if keys else ()
    items: list[tuple[str, str]] = []  # (definition, comment)
    for column in table.columns:
        text = f"{quote(column.name)} {column.type}".rstrip()
        if len(pk) == 1 and column.name == pk[0]:
            text += " PRIMARY KEY"
        fk = single_fk.get(column.name)
        if fk is not None:
            text += f" REFERENCES {_ref(fk, quote)}({quote(fk.ref_columns[0])})"
        is_key = column.name in pk or fk is not None
        textual = any(isinstance(v, str) for v in column.samples)
        values = column.samples[:SHOWN_SAMPLES]
        shown = ", ".join(_sample_literal(v) for v in values) if samples and textual and not is_key else ""
        note = _one_line(column.comment)
        items.append((text, "; ".join(part for part in (note, f"e.g. {shown}" if shown else "") if part)))
    if len(pk) > 1:
        items.append((f"PRIMARY KEY ({', '.join(quote(c) for c in pk)})", ""))
    if keys:
        for fk in table.foreign_keys:
            if len(fk.columns) > 1:
                items.append((f"FOREIGN KEY ({', '.join(quote(c) for c in fk.columns)}) REFERENCES "
                              f"{_ref(fk, quote)}({', '.join(quote(c) for c in fk.ref_columns)})", ""))
    lines = []
    for i, (text, comment) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        lines.append(f"  {text}{sep}" + (f"  -- {comment}" if comment else ""))
    return lines


def _ref(fk: ForeignKey, quote: Any) -> str:
    return f"{quote(fk.ref_schema)}.{quote(fk.ref_table)}" if fk.ref_schema else quote(fk.ref_table)


def _one_line(text: str, limit: int = 120) -> str:
    """A catalog comment on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _sample_literal(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= SAMPLE_CHARS else value[: SAMPLE_CHARS - 3] + "..."
        text = " ".join(text.split())  # one line
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(round(value, 4))
    return str(value)


def _statements(tokens: list, semicolon: object) -> Iterable[list]:
    current: list = []
    for token in tokens:
        if token.token_type == semicolon:
            if current:
                yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


def _is_create_table(statement: list, token_type: type) -> bool:
    if not statement or statement[0].token_type != token_type.CREATE:  # type: ignore[attr-defined]
        return False
    return any(t.token_type == token_type.TABLE for t in statement[1:6])  # type: ignore[attr-defined]


def _table_from_create(schema_node: object, dialect: Dialect) -> Table:
    from sqlglot import exp

    assert isinstance(schema_node, exp.Schema)
    table_name = schema_node.this.name
    columns = []
    for item in schema_node.expressions:
        if isinstance(item, exp.ColumnDef):
            kind = item.args.get("kind")
            columns.append(Column(item.name, kind.sql(dialect=dialect.sqlglot_name) if kind is not None else ""))
        elif isinstance(item, exp.Identifier):  # a column declared without a type: CREATE TABLE t (a, b)
            columns.append(Column(item.name, ""))
    return Table(table_name, tuple(columns))


def _sqlglot_type(declared: str, dialect: str) -> str:
    from sqlglot import exp
    from sqlglot.errors import ParseError

    if not declared.strip():
        return "TEXT"
    try:
        return exp.DataType.build(declared, dialect=get_dialect(dialect).sqlglot_name).sql()
    except (ParseError, ValueError):
        return "UNKNOWN"
