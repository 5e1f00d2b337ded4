"""MySQL/MariaDB's catalog from ``information_schema``: three queries for every schema read, where
SQLAlchemy's Inspector sends one ``SHOW CREATE TABLE`` per table (1,000 round trips for 1,000 tables).

Types come out as the Inspector gives them (``VARCHAR(160) CHARACTER SET utf8mb3 COLLATE ...``, the prompt
depends on it): each column is written as ``SHOW CREATE TABLE`` writes it — its ``COLUMN_TYPE``, then its
character set and collation where either differs from the table's (MariaDB 10.11 writes both then) — and
read by SQLAlchemy's own column parser (which keeps a doubled backquote of a name doubled: the name here
is the catalog's).
A view's columns carry no character set, as ``DESCRIBE`` (which the Inspector reads for views) shows none.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..schema import Column, ForeignKey, Table

_TABLE_TYPES = {"BASE TABLE": False, "VIEW": True, "SYSTEM VIEW": True}  # type -> is a view


def read_catalog(conn: Any, dialect: Any, current: str, others: Sequence[str], type_name: Callable[[Any], str]) -> list[Table]:
    """The tables and views of ``current`` and ``others``, in the Inspector's order: each schema's tables by
    name, then its views by name."""
    wanted = [current, *others]
    marks = ", ".join(["%s"] * len(wanted))
    params = tuple(wanted)

    listed = conn.exec_driver_sql(
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_TYPE, t.TABLE_COMMENT, t.TABLE_COLLATION, c.CHARACTER_SET_NAME "
        "FROM information_schema.TABLES t LEFT JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION "
        f"WHERE t.TABLE_SCHEMA IN ({marks})", params).fetchall()
    kinds = {(r[0], r[1]): (_TABLE_TYPES[r[2]], r[3] or "", r[4], r[5]) for r in listed if r[2] in _TABLE_TYPES}

    parser = dialect._tabledef_parser
    from sqlalchemy.dialects.mysql.reflection import ReflectedState

    columns: dict[tuple[str, str], list[Column]] = {}
    for schema, table, name, column_type, charset, collation, comment in conn.exec_driver_sql(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        params,
    ).fetchall():
        kind = kinds.get((schema, table))
        if kind is None:
            continue
        is_view, _, table_collation, table_charset = kind
        line = f"  `{name.replace('`', '``')}` {column_type}"
        if not is_view and charset and (charset != table_charset or collation != table_collation):
            line += f" CHARACTER SET {charset} COLLATE {collation}"
        state = ReflectedState()
        parser._parse_column(line, state)
        kind_name = type_name(state.columns[-1]["type"]) if state.columns else column_type.upper()
        columns.setdefault((schema, table), []).append(Column(name, kind_name, comment=comment or ""))

    primary: dict[tuple[str, str], list[str]] = {}
    foreign: dict[tuple[str, str, str], tuple[list[str], str, str, list[str]]] = {}
    for schema, table, constraint, column, ref_schema, ref_table, ref_column in conn.exec_driver_sql(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, "
        f"REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA IN ({marks}) "
        "AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL) "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
        params,
    ).fetchall():
        if ref_table is None:
            primary.setdefault((schema, table), []).append(column)
        else:
            entry = foreign.setdefault((schema, table, constraint), ([], ref_schema or schema, ref_table, []))
            entry[0].append(column)
            entry[3].append(ref_column)
    keys: dict[tuple[str, str], list[ForeignKey]] = {}
    for (schema, table, _), (sources, ref_schema, ref_table, targets) in foreign.items():
        keys.setdefault((schema, table), []).append(
            ForeignKey(tuple(sources), ref_table, tuple(targets), "" if ref_schema == current else ref_schema))

    tables = []
    for schema in wanted:
        names = sorted((t for s, t in kinds if s == schema), key=lambda t: (kinds[(schema, t)][0], t))
        for name in names:
            key = (schema, name)
            if not columns.get(key):
                continue
            is_view, comment, _, _ = kinds[key]
            tables.append(Table(name, tuple(columns[key]), tuple(primary.get(key, ())), tuple(keys.get(key, ())),
                                comment="" if is_view else comment, schema="" if schema == current else schema))
    return tables
