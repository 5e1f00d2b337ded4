"""Database schemas: the tables and columns a query may name.

A ``Schema`` comes from a live SQLite file (opened read-only), from ``CREATE TABLE`` DDL in any
dialect sqlglot reads, or from a plain ``{"table": {"column": "type"}}`` mapping. It feeds the
schema-bound grammar (``constrain.sql.grammar``), sqlglot's qualifier and prompts (``describe``).
"""

from __future__ import annotations

import sqlite3
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import InputError
from ._dialects import Dialect, get_dialect

__all__ = ["Column", "Table", "Schema"]


@dataclass(frozen=True)
class Column:
    """One column: its catalog name and declared type (``""`` when the catalog declares none)."""

    name: str
    type: str = ""


@dataclass(frozen=True)
class Table:
    """One table (or view) and its columns in catalog order."""

    name: str
    columns: tuple[Column, ...]

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Schema:
    """The tables of one database, read in one SQL dialect."""

    tables: tuple[Table, ...]
    dialect: str = "sqlite"
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
            self._by_key.setdefault(table.name, table)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def from_sqlite(cls, path: str | Path) -> Schema:
        """The tables and views of a SQLite database file, opened read-only."""
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
                    rows = conn.execute("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", (name,)).fetchall()
                except sqlite3.OperationalError as exc:  # a view over a dropped table: nothing can query it
                    warnings.warn(f"{path}: {name!r} cannot be read ({exc}); left out of the schema", stacklevel=2)
                    continue
                tables.append(Table(name, tuple(Column(col, ctype or "") for col, ctype in rows)))
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
        """The table called ``name`` (matched case-insensitively where the dialect folds case)."""
        exact = self._by_key.get(name)
        if exact is not None:
            return exact
        same = self.sql_dialect.same_identifier
        return next((t for t in self.tables if same(t.name, name)), None)

    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def column_names(self) -> list[str]:
        """Every distinct column name, in first-seen order."""
        seen: dict[str, None] = {}
        for table in self.tables:
            for column in table.columns:
                seen.setdefault(column.name, None)
        return list(seen)

    def to_sqlglot_mapping(self) -> dict[str, dict[str, str]]:
        """``{table: {column: type}}`` for sqlglot's qualifier/optimizer (untyped columns read as TEXT)."""
        return {t.name: {c.name: _sqlglot_type(c.type, self.dialect) for c in t.columns} for t in self.tables}

    def describe(self) -> str:
        """Compact ``CREATE TABLE``-like text, one table per line, for prompts."""
        quote = self.sql_dialect.quote
        lines = []
        for table in self.tables:
            cols = ", ".join(f"{quote(c.name)} {c.type}".rstrip() for c in table.columns)
            lines.append(f"CREATE TABLE {quote(table.name)} ({cols});")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.tables)

    def __iter__(self) -> Iterable[Table]:  # type: ignore[override]
        return iter(self.tables)


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
