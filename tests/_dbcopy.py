"""Typed copies of SQLite databases in PostgreSQL, MariaDB or DuckDB, for tests and benchmarks.

``copy_sqlite(path, target)`` copies every table of a SQLite file into a server of ``_dbservers`` (or a
``postgresql://`` / ``mysql://`` URL, or a DuckDB file) with column types taken from the values: SQLite keeps
numbers as text in many Spider columns, the copies type them as numbers.

No pytest import: ``bench/`` imports this module with ``tests/`` on its path.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote, unquote, urlsplit

from _dbservers import Server, create_database


_INT = re.compile(r"[+-]?\d+\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_INT64 = (-(2**63), 2**63 - 1)


def _affinity(declared: str) -> str:
    """SQLite's column affinity rules (https://www.sqlite.org/datatype3.html, 3.1)."""
    d = declared.upper()
    if "INT" in d:
        return "int"
    if any(word in d for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in d or not d:
        return "blob"
    if any(word in d for word in ("REAL", "FLOA", "DOUB")):
        return "float"
    return "numeric"


def _kind(declared: str, values: Iterable[Any]) -> str:
    """Column type from the values: all integers -> "int", all numbers -> "float" (text that reads as a
    number counts; ``''`` next to numbers reads as NULL), bytes -> "blob", else "text". The declared type
    decides only for a column without values, and REAL affinity makes integers "float" (as SQLite does)."""
    ints = floats = empties = 0
    for value in values:
        if value is None:
            continue
        if isinstance(value, bytes):
            return "blob"
        if isinstance(value, bool) or isinstance(value, int):
            ints += 1
        elif isinstance(value, float):
            floats += 1
        elif value == "":
            empties += 1
        elif _INT.match(value) and str(int(value)) == value and _INT64[0] <= int(value) <= _INT64[1]:
            ints += 1  # round-trips: '007' and '+5' stay text
        elif _NUMBER.match(value):
            floats += 1
        else:
            return "text"
    if ints + floats == 0:
        return "text" if empties else {"int": "int", "float": "float", "numeric": "float"}.get(_affinity(declared), "text")
    if floats or _affinity(declared) == "float":
        return "float"
    return "int"


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "int":
        return None if value == "" else int(value)
    if kind == "float":
        return None if value == "" else float(value)
    if kind == "blob":
        return value if isinstance(value, bytes) else str(value).encode()
    return value if isinstance(value, str) else str(value)


@dataclass
class _Table:
    name: str
    columns: list[str]
    kinds: list[str]
    rows: list[tuple[Any, ...]]
    primary_key: list[str]
    foreign_keys: list[tuple[list[str], str, list[str]]]  # (columns, referenced table, referenced columns)


def _read_sqlite(path: Path) -> list[_Table]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid")]
        by_lower = {n.lower(): n for n in names}
        tables = []
        for name in names:
            q = '"' + name.replace('"', '""') + '"'
            info = con.execute(f"PRAGMA table_info({q})").fetchall()  # cid, name, type, notnull, default, pk
            columns = [r[1] for r in info]
            raw = con.execute(f"SELECT * FROM {q}").fetchall()
            kinds = [_kind(r[2] or "", (row[i] for row in raw)) for i, r in enumerate(info)]
            rows = [tuple(_convert(k, v) for k, v in zip(kinds, row)) for row in raw]
            primary_key = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            col_lower = {c.lower(): c for c in columns}
            groups: dict[int, list[tuple[str, str, str | None]]] = {}
            for fk in con.execute(f"PRAGMA foreign_key_list({q})"):  # id, seq, table, from, to, ...
                groups.setdefault(fk[0], []).append((fk[2], fk[3], fk[4]))
            foreign_keys = []
            for refs in groups.values():
                target = by_lower.get(refs[0][0].lower())
                mine = [col_lower.get(r[1].lower()) for r in refs]
                if target is None or None in mine:
                    continue
                foreign_keys.append(([c for c in mine if c], target, [r[2] or "" for r in refs]))
            tables.append(_Table(name, columns, kinds, rows, primary_key, foreign_keys))
        # referenced columns: real spelling, or the referenced table's primary key when omitted
        spelled = {t.name: ({c.lower(): c for c in t.columns}, t.primary_key) for t in tables}
        for table in tables:
            fixed = []
            for mine, target, theirs in table.foreign_keys:
                lower, pk = spelled[target]
                cols = pk if not any(theirs) else [lower.get(c.lower()) for c in theirs]
                if len(cols) == len(mine) and None not in cols:
                    fixed.append((mine, target, cols))
            table.foreign_keys = fixed
        return tables
    finally:
        con.close()


def _unique(table: _Table) -> bool:
    idx = [table.columns.index(c) for c in table.primary_key]
    keys = [tuple(row[i] for i in idx) for row in table.rows]
    return bool(idx) and all(None not in k for k in keys) and len(set(keys)) == len(keys)


_TYPES = {
    "postgresql": {"int": "BIGINT", "float": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA"},
    "mariadb": {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR(255)", "blob": "LONGBLOB"},
    "duckdb": {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR", "blob": "BLOB"},
}


def _column_type(engine: str, table: _Table, i: int) -> str:
    kind = table.kinds[i]
    if engine == "mariadb" and kind == "text":
        longest = max((len(row[i]) for row in table.rows if row[i] is not None), default=0)
        return "VARCHAR(255)" if longest <= 255 else "LONGTEXT"
    return _TYPES[engine][kind]


def _q(engine: str, name: str) -> str:
    if engine == "mariadb":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _create_sql(
    engine: str,
    table: _Table,
    prefix: str = "",
    primary_key: Sequence[str] = (),
    foreign_keys: Sequence[tuple[list[str], str, list[str]]] = (),
) -> str:
    """CREATE TABLE; the constraints inline (DuckDB), referenced tables in the same schema (``prefix``)."""
    parts = [f"{_q(engine, c)} {_column_type(engine, table, i)}" for i, c in enumerate(table.columns)]
    if primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(_q(engine, c) for c in primary_key)})")
    for mine, target, theirs in foreign_keys:
        parts.append(
            f"FOREIGN KEY ({', '.join(_q(engine, c) for c in mine)}) "
            f"REFERENCES {prefix}{_q(engine, target)} ({', '.join(_q(engine, c) for c in theirs)})"
        )
    return f"CREATE TABLE {prefix}{_q(engine, table.name)} ({', '.join(parts)})"


def _constraints(engine: str, tables: Sequence[_Table], execute: Any, prefix: str = "") -> None:
    """PostgreSQL / MariaDB: primary keys where the data holds them, then foreign keys; a statement the
    engine refuses is skipped (DuckDB declares its constraints in CREATE TABLE: ``_copy_duckdb``)."""
    for table in tables:
        if _unique(table):
            cols = ", ".join(_q(engine, c) for c in table.primary_key)
            try:
                execute(f"ALTER TABLE {prefix}{_q(engine, table.name)} ADD PRIMARY KEY ({cols})")
            except Exception:  # noqa: BLE001 - e.g. MariaDB's LONGTEXT key, a collation-equal duplicate
                table.primary_key = []
        else:
            table.primary_key = []
    for table in tables:
        for i, (mine, target, theirs) in enumerate(table.foreign_keys):
            try:
                execute(
                    f"ALTER TABLE {prefix}{_q(engine, table.name)} ADD CONSTRAINT {_q(engine, f'fk_{table.name}_{i}'[:60])} "
                    f"FOREIGN KEY ({', '.join(_q(engine, c) for c in mine)}) "
                    f"REFERENCES {prefix}{_q(engine, target)} ({', '.join(_q(engine, c) for c in theirs)})"
                )
            except Exception:  # noqa: BLE001 - no unique key on the referenced columns, types differ, orphans
                pass


def _parse(url: str) -> tuple[str, dict[str, Any], str]:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    engine = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mariadb", "mariadb": "mariadb"}.get(scheme)
    if engine is None:
        raise ValueError(f"copy_sqlite: unsupported URL scheme {parts.scheme!r} (postgresql, mysql, mariadb, duckdb)")
    login = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }
    return engine, login, unquote(parts.path.lstrip("/"))


def copy_sqlite(
    sqlite_path: Path | str,
    url: str | Path | Server,
    *,
    database: str | None = None,
    schema: str | None = None,
    lower_names: bool = False,
) -> str:
    """Copy every table of a SQLite file into PostgreSQL, MariaDB or DuckDB with column types from the values.

    ``url``: a ``Server`` (the database is created by the superuser, the app user gets every privilege on it),
    a ``postgresql://`` / ``mysql://`` URL whose user may create databases, or ``duckdb:///FILE`` (or a
    ``Path``; ``duckdb:////abs/path`` as in SQLAlchemy; or an open DuckDB connection, for many copies into one
    file: opening and closing a file of hundreds of tables takes a fraction of a second each time). ``database``: the database to create, default the
    SQLite file's stem; for DuckDB the schema (default ``main``). ``schema``: the schema to create and copy
    into (PostgreSQL: inside ``database``; DuckDB: the same as ``database``; MariaDB has none, its databases
    are its schemas), so that many SQLite files make one warehouse. Tables already there are replaced. Names
    are kept exactly (quoted), primary keys are added where the data holds them and foreign keys where the
    engine accepts them (DuckDB: declared in CREATE TABLE, tables created in SQLite's order as far as the
    foreign keys allow, a key the data breaks left out; see ``_copy_duckdb``). ``lower_names=True``
    lower-cases table and column names (SQLite's names are case-insensitive, PostgreSQL folds unquoted names to lower case: Spider's gold SQL names
    ``singer.age`` for the column ``Age``). Returns the URL of the copy.
    """
    path = Path(sqlite_path)
    tables = _read_sqlite(path)
    if lower_names:
        for table in tables:
            table.name, table.columns = table.name.lower(), [c.lower() for c in table.columns]
            table.primary_key = [c.lower() for c in table.primary_key]
            table.foreign_keys = [([c.lower() for c in a], t.lower(), [c.lower() for c in b]) for a, t, b in table.foreign_keys]
    if isinstance(url, Path) or str(url).startswith("duckdb:") or type(url).__name__ == "DuckDBPyConnection":
        return _copy_duckdb(tables, url, schema if schema is not None else database)
    if isinstance(url, Server):
        name = database or path.stem
        target = create_database(url, name)
        engine, login, _ = _parse(target)
    else:
        engine, login, _ = _parse(url)
        name = database or path.stem
        target = urlsplit(url)._replace(path="/" + quote(name, safe="")).geturl()
        _create_with(engine, login, name)
    if engine == "postgresql":
        _copy_postgres(tables, login, name, schema)
    elif schema is not None:
        raise ValueError(f"copy_sqlite: MariaDB has no schemas inside a database (schema={schema!r}); give database=")
    else:
        _copy_mariadb(tables, login, name)
    return target


def _create_with(engine: str, login: dict[str, Any], name: str) -> None:
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **login) as con:
            if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                con.execute(f"CREATE DATABASE {_q(engine, name)}")
    else:
        import pymysql

        con = pymysql.connect(charset="utf8mb4", autocommit=True, **{**login, "port": login["port"] or 3306})
        try:
            con.cursor().execute(
                f"CREATE DATABASE IF NOT EXISTS {_q(engine, name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        finally:
            con.close()


def _copy_postgres(tables: list[_Table], login: dict[str, Any], name: str, schema: str | None = None) -> None:
    import psycopg
    from psycopg import sql as pgsql

    prefix = _q("postgresql", schema) + "." if schema else ""
    with psycopg.connect(dbname=name, autocommit=True, **login) as con:
        with con.transaction():
            if schema:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q('postgresql', schema)}")
            for table in tables:
                con.execute(f"DROP TABLE IF EXISTS {prefix}{_q('postgresql', table.name)} CASCADE")
                con.execute(_create_sql("postgresql", table, prefix))
                copy_sql = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
                    pgsql.Identifier(*([schema] if schema else []), table.name),
                    pgsql.SQL(", ").join(map(pgsql.Identifier, table.columns)),
                )
                with con.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in table.rows:
                        copy.write_row(tuple(v.replace("\0", "") if isinstance(v, str) else v for v in row))

        def execute(statement: str) -> None:
            con.execute(statement)

        _constraints("postgresql", tables, execute, prefix)


def _copy_mariadb(tables: list[_Table], login: dict[str, Any], name: str) -> None:
    import pymysql

    con = pymysql.connect(database=name, charset="utf8mb4", autocommit=False, **{**login, "port": login["port"] or 3306})
    try:
        cur = con.cursor()
        cur.execute("SET SESSION foreign_key_checks = 0")
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS {_q('mariadb', table.name)}")
            cur.execute(_create_sql("mariadb", table))
            if table.rows:
                cols = ", ".join(_q("mariadb", c) for c in table.columns)
                marks = ", ".join(["%s"] * len(table.columns))
                # pymysql turns executemany of a plain INSERT ... VALUES into multi-row INSERTs (<= 1 MB each)
                cur.executemany(f"INSERT INTO {_q('mariadb', table.name)} ({cols}) VALUES ({marks})", table.rows)
        con.commit()
        cur.execute("SET SESSION foreign_key_checks = 1")

        def execute(statement: str) -> None:
            cur.execute(statement)

        _constraints("mariadb", tables, execute)
        con.commit()
    finally:
        con.close()


def _duckdb_order(tables: list[_Table]) -> list[_Table]:
    """The order to create tables in: SQLite's order (sqlite_master rowid) wherever the foreign keys allow,
    each table after the tables it references (DuckDB checks a REFERENCES clause against an existing table).
    When every table left waits for another (a cycle), the first of them in SQLite's order goes next without
    its foreign keys to the tables still to come. Self-references stay (``_copy_duckdb`` loads them in layers)."""
    order: list[_Table] = []
    done: set[str] = set()
    left = list(tables)
    while left:
        table = next((t for t in left if all(target in done or target == t.name for _, target, _ in t.foreign_keys)), None)
        if table is None:
            table = left[0]
            table.foreign_keys = [fk for fk in table.foreign_keys if fk[1] in done or fk[1] == table.name]
        left.remove(table)
        order.append(table)
        done.add(table.name)
    return order


def _key_rows(table: _Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    idx = [table.columns.index(c) for c in columns]
    return [tuple(row[i] for i in idx) for row in table.rows]


def _duckdb_foreign_keys(table: _Table, kept: dict[str, tuple[_Table, list[str]]]) -> list[tuple[list[str], str, list[str]]]:
    """The foreign keys of ``table`` DuckDB accepts and its data satisfies: the referenced table is created
    (``kept``: name -> table and the primary key it kept; ``table`` itself included), the referenced columns
    are that primary key (DuckDB wants them in the key's order: both sides are reordered), the column types
    are equal, and every value with no NULL in it is a key of the referenced table (the converted values,
    as DuckDB compares them)."""
    result = []
    for mine, target, theirs in table.foreign_keys:
        if target not in kept:
            continue
        parent, pk = kept[target]
        if not pk or len(set(theirs)) != len(theirs) or sorted(theirs) != sorted(pk):
            continue
        pairs = dict(zip(theirs, mine))
        mine = [pairs[c] for c in pk]
        if any(table.kinds[table.columns.index(m)] != parent.kinds[parent.columns.index(t)] for m, t in zip(mine, pk)):
            continue
        keys = set(_key_rows(parent, pk))
        if all(None in values or values in keys for values in _key_rows(table, mine)):
            result.append((mine, target, list(pk)))
    return result


def _layers(table: _Table, self_keys: list[tuple[list[str], str, list[str]]]) -> list[list[tuple[Any, ...]]] | None:
    """Rows in layers for self-referencing foreign keys (DuckDB checks a row against the rows already in the
    table, not against the rows of the same INSERT): each row after the rows it references. None when a row
    references itself or the references go round (no order can load them)."""
    pk = [table.columns.index(c) for c in table.primary_key]
    by_key = {tuple(row[i] for i in pk): n for n, row in enumerate(table.rows)}
    refs = [[table.columns.index(c) for c in mine] for mine, _, _ in self_keys]
    parents = [
        [by_key[v] for v in (tuple(row[i] for i in idx) for idx in refs) if None not in v]
        for row in table.rows
    ]
    depth: list[int | None] = [None] * len(table.rows)
    for start in range(len(table.rows)):
        stack, visiting = [start], set()
        while stack:
            n = stack[-1]
            if depth[n] is not None:
                stack.pop()
                continue
            waiting = [p for p in parents[n] if depth[p] is None]
            if not waiting:
                depth[n] = 1 + max((depth[p] for p in parents[n]), default=-1)  # type: ignore[type-var]
                visiting.discard(n)
                stack.pop()
            elif n in visiting or any(p in visiting for p in waiting):
                return None  # a row on its own path: a self-reference or a cycle in the data
            else:
                visiting.add(n)
                stack.extend(waiting)
    layers: list[list[tuple[Any, ...]]] = [[] for _ in range(1 + max((d for d in depth if d is not None), default=-1))]
    for row, d in zip(table.rows, depth):
        layers[d].append(row)  # type: ignore[index]
    return layers


def _drop_duckdb(con: Any, names: Sequence[str], prefix: str) -> None:
    """Drop the tables that are there, referencing tables first (DuckDB refuses to drop a table another
    table's foreign key references, CASCADE or not)."""
    left = list(names)
    while left:
        failed: list[str] = []
        error: Exception | None = None
        for name in left:
            try:
                con.execute(f"DROP TABLE IF EXISTS {prefix}{_q('duckdb', name)}")
            except Exception as exc:  # noqa: BLE001 - still referenced by a table dropped later in this pass
                failed.append(name)
                error = exc
        if len(failed) == len(left):
            raise RuntimeError(f"copy_sqlite: cannot replace DuckDB tables {failed}: {error}") from error
        left = failed


def _copy_duckdb(tables: list[_Table], url: Any, schema: str | None) -> str:
    """Create each table with its primary key and foreign keys in the CREATE TABLE statement (DuckDB cannot
    add them to an existing table) in ``_duckdb_order``, then load it before the next one. A constraint the
    data breaks is left out for that table only (checked on the converted values first; should DuckDB still
    refuse the CREATE or the load, the table is made again with fewer constraints)."""
    import duckdb

    opened = not isinstance(url, duckdb.DuckDBPyConnection)  # closed here when opened here
    if not opened:
        con = url
        file = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
        target = f"duckdb:///{file}"
    else:
        file, target = (str(url), f"duckdb:///{url}") if isinstance(url, Path) else (url[len("duckdb:///") :], url)
        con = duckdb.connect(file)
    prefix = ""
    try:
        if schema:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q('duckdb', schema)}")
            prefix = _q("duckdb", schema) + "."
        _drop_duckdb(con, [t.name for t in reversed(tables)], prefix)
        kept: dict[str, tuple[_Table, list[str]]] = {}
        with tempfile.TemporaryDirectory(prefix="constrain-duckdb-") as tmp:
            for n, table in enumerate(_duckdb_order(tables)):
                name = prefix + _q("duckdb", table.name)
                pk = list(table.primary_key) if _unique(table) else []
                kept[table.name] = (table, pk)
                fks = _duckdb_foreign_keys(table, kept)
                own = [fk for fk in fks if fk[1] == table.name]
                layers = _layers(table, own) if own else [table.rows]
                if layers is None:
                    fks = [fk for fk in fks if fk[1] != table.name]
                    layers = [table.rows]
                # fewer and fewer constraints until DuckDB takes the table and its rows
                attempts = [(pk, fks, layers), (pk, [], [table.rows]), ([], [], [table.rows])]
                for attempt, (pk, fks, layers) in enumerate(attempts):
                    if attempt and attempts[attempt - 1][:2] == (pk, fks):
                        continue
                    try:
                        con.execute(_create_sql("duckdb", table, prefix, pk, fks))
                        for k, rows in enumerate(layers):
                            _load_duckdb(con, name, table, rows, Path(tmp) / f"t{n}_{k}.json")
                        break
                    except duckdb.Error:
                        con.execute(f"DROP TABLE IF EXISTS {name}")
                        if attempt == len(attempts) - 1:
                            raise
                kept[table.name] = (table, pk)
                table.primary_key, table.foreign_keys = pk, fks
    finally:
        if opened:
            con.close()
    return target


def _load_duckdb(con: Any, name: str, table: _Table, rows: list[tuple[Any, ...]], ndjson: Path) -> None:
    """Newline-delimited JSON + read_json: row-by-row executemany is orders of magnitude slower."""
    if not rows:
        return
    keys = [f"c{i}" for i in range(len(table.columns))]
    with ndjson.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in zip(keys, row)}, ensure_ascii=False))
            out.write("\n")
    types = {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR", "blob": "VARCHAR"}
    columns = ", ".join(f"'{k}': '{types[kind]}'" for k, kind in zip(keys, table.kinds))
    select = ", ".join(f"unhex({k})" if kind == "blob" else k for k, kind in zip(keys, table.kinds))
    literal = str(ndjson).replace("'", "''")
    con.execute(
        f"INSERT INTO {name} SELECT {select} FROM "
        f"read_json('{literal}', format = 'newline_delimited', columns = {{{columns}}})"
    )
