"""Reading a large catalog: 1,000 synthetic tables on SQLite, DuckDB, PostgreSQL and MariaDB.

Each table has 5 columns (a primary key, text, a decimal, a date, and a foreign key to the previous table
in every third table) and 4 rows. Two layouts: every table in the connection's own schema, and a
warehouse of 50 schemas read with ``use_schemas(["*"])`` (not SQLite, which has no schemas). Figures per
engine and layout, each the median of 3 runs in a new process with an empty cache folder:
  schema      - ``connect(...)`` and ``Database.schema``: the catalog (names, types, keys, comments);
  cold        - ``Database.sampled`` of 20 tables spread over the catalog (their sample values read);
  warm memory - the same call again on the same ``Database``;
  warm disk   - the same call on a new ``Database`` (its catalog read first, not timed): the disk cache.

PostgreSQL and MariaDB are private servers started by ``tests/_dbservers.py`` (their binaries must be
installed); an engine whose server or driver is missing is skipped with a note.

    python bench/catalog.py [--json] [--tables 1000] [--engines sqlite,duckdb,postgres,mysql]
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from _common import ROOT, bench_parser, emit, fmt_seconds, print_table

COLUMNS = 5
ROWS = 4
SCHEMAS = 50  # the warehouse layout
SAMPLED = 20  # tables whose sample values a prompt would show
RUNS = 3
ENGINES = ("sqlite", "duckdb", "postgres", "mysql")


def _tables(count: int, schemas: int) -> Iterator[tuple[str, str, int]]:
    """(schema or "", table name, index within its schema) of the synthetic catalog."""
    per_schema = -(-count // schemas)
    for i in range(count):
        yield (f"s{i // per_schema:02d}" if schemas > 1 else ""), f"t{i:04d}", i % per_schema


def _ddl(engine: str, count: int, schemas: int) -> list[str]:
    quote = "`" if engine == "mysql" else '"'
    text = "VARCHAR(40)" if engine != "sqlite" else "TEXT"
    statements = []
    if schemas > 1:
        for s in sorted({schema for schema, _, _ in _tables(count, schemas)}):
            statements.append(f"CREATE {'DATABASE' if engine == 'mysql' else 'SCHEMA'} {s}")
    previous = ""
    for schema, name, index in _tables(count, schemas):
        full = f"{quote}{schema}{quote}.{quote}{name}{quote}" if schema else f"{quote}{name}{quote}"
        reference = f" REFERENCES {previous}(id)" if index % 3 == 2 and previous else ""
        statements.append(f"CREATE TABLE {full} (id INTEGER PRIMARY KEY, name {text}, amount NUMERIC(10,2), "
                          f"created DATE, parent_id INTEGER{reference})")
        rows = ", ".join(f"({r}, 'item {r} of {name}', {r}.25, '2024-01-0{r}', {r if reference else 'NULL'})"
                         for r in range(1, ROWS + 1))
        statements.append(f"INSERT INTO {full} VALUES {rows}")
        previous = full
    return statements


def build_sqlite(folder: Path, count: int) -> str:
    path = folder / "catalog.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(";\n".join(_ddl("sqlite", count, 1)) + ";")
    conn.close()
    return str(path)


def build_duckdb(folder: Path, count: int, schemas: int) -> str:
    import duckdb

    path = folder / f"catalog-{schemas}.duckdb"
    conn = duckdb.connect(str(path))
    for statement in _ddl("duckdb", count, schemas):
        conn.execute(statement)
    conn.close()
    return f"duckdb:///{path}"


def build_server(server: Any, engine: str, count: int, schemas: int) -> str:
    """A database of the synthetic tables on ``server``; its URL for the app user."""
    servers, _ = _test_modules()
    name = f"catalog{schemas}"
    url = servers.create_database(server, name if schemas == 1 or engine != "mysql" else "s00")
    script = ";\n".join(_ddl(engine, count, schemas)) + ";"
    if engine == "mysql":
        if schemas > 1:
            script = script.replace("CREATE DATABASE s00;\n", "")
        server.admin_sql(script + "\nGRANT SELECT ON *.* TO 'app'@'127.0.0.1';", database=url.rsplit("/", 1)[1])
    else:
        grants = "".join(f"GRANT USAGE ON SCHEMA {s} TO app; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO app;"
                         for s in sorted(({s for s, _, _ in _tables(count, schemas)} - {""}) | {"public"}))
        server.admin_sql(script + "\n" + grants, database=name)
    return url


def _test_modules() -> tuple[Any, Any]:
    folder = str(ROOT / "tests")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("_dbservers"), importlib.import_module("_dbcopy")


# -- one measurement, in its own process --------------------------------------------------------------
def measure(url: str, schemas: list[str]) -> dict[str, Any]:
    from constrain.sql import connect

    for driver in ("duckdb", "sqlalchemy", "psycopg", "pymysql"):  # the catalog read is timed, not the imports
        with contextlib.suppress(ImportError):
            importlib.import_module(driver)
    start = time.perf_counter()
    db = connect(url, schemas=schemas)
    tables = db.schema.tables
    figures: dict[str, Any] = {"schema_s": time.perf_counter() - start, "tables": len(tables)}
    step = max(1, len(tables) // SAMPLED)
    chosen = tables[::step][:SAMPLED]
    for key in ("cold_s", "warm_memory_s"):
        start = time.perf_counter()
        sampled = db.sampled(chosen)
        figures[key] = time.perf_counter() - start
    figures["values"] = sum(len(c.samples) for t in sampled for c in t.columns)
    db.close()
    with connect(url, schemas=schemas) as again:
        again.schema
        start = time.perf_counter()
        again.sampled(chosen)
        figures["warm_disk_s"] = time.perf_counter() - start
    return figures


def run_cold(url: str, schemas: list[str]) -> dict[str, Any]:
    """``measure`` in a new process with an empty cache folder."""
    cache = tempfile.mkdtemp(prefix="constrain-catalog-cache-")
    try:
        env = {**os.environ, "CONSTRAIN_CACHE_DIR": cache}
        done = subprocess.run([sys.executable, __file__, "--child", url, *[f"--schema={s}" for s in schemas]],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"measurement failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def median_of(url: str, schemas: list[str]) -> dict[str, Any]:
    runs = [run_cold(url, schemas) for _ in range(RUNS)]
    keys = ("schema_s", "cold_s", "warm_memory_s", "warm_disk_s")
    return {"tables": runs[0]["tables"], "values": runs[0]["values"], **{k: statistics.median(r[k] for r in runs) for k in keys}}


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--child", help=argparse_hidden())
    parser.add_argument("--schema", action="append", default=[], help=argparse_hidden())
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.schema)))
        return
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    folder = Path(tempfile.mkdtemp(prefix="constrain-catalog-"))
    os.chmod(folder, 0o755)
    rows, figures, notes = [], {"tables": args.tables, "sampled_tables": SAMPLED, "runs": RUNS}, []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        for engine in engines:
            layouts = _layouts(engine, folder, args.tables, stack)
            while True:
                try:
                    layout, url, schemas = next(layouts)
                except StopIteration:
                    break
                except Exception as exc:  # a missing server or driver: the other engines still run
                    notes.append(f"{engine}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
                    break
                result = median_of(url, schemas)
                key = f"{engine}_{layout.replace(' ', '_')}"
                figures.update({f"{key}_{k}": v for k, v in result.items()})
                rows.append([engine, layout, result["tables"], fmt_seconds(result["schema_s"]), fmt_seconds(result["cold_s"]),
                             fmt_seconds(result["warm_memory_s"]), fmt_seconds(result["warm_disk_s"])])
                print(f"{engine} {layout}: {result}", file=sys.stderr, flush=True)
    print_table(["engine", "layout", "tables", "schema", f"sampled {SAMPLED} cold", "warm (memory)", "warm (disk)"], rows)
    for note in notes:
        print(note)
    figures["notes"] = notes
    emit(figures, as_json=args.json)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def _layouts(engine: str, folder: Path, count: int, stack: contextlib.ExitStack) -> Iterator[tuple[str, str, list[str]]]:
    """(layout, URL, schemas to read) of each layout, built when reached; a server's database is dropped
    after its measurement (on MariaDB, "*" would read the other layout's database too)."""
    if engine == "sqlite":
        yield "1 schema", build_sqlite(folder, count), []
        return
    if engine == "duckdb":
        yield "1 schema", build_duckdb(folder, count, 1), []
        yield f"{SCHEMAS} schemas", build_duckdb(folder, count, SCHEMAS), ["*"]
        return
    servers, _ = _test_modules()
    server = (servers.start_postgres if engine == "postgres" else servers.start_mariadb)(folder)
    stack.callback(server.stop)
    for schemas in (1, SCHEMAS):
        started = time.perf_counter()
        url = build_server(server, engine, count, schemas)
        print(f"{engine}: {schemas} schema(s) built in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        yield (f"{schemas} schema{'s' if schemas > 1 else ''}", url, ["*"] if schemas > 1 else [])
        if engine == "mysql":
            names = ["catalog1"] if schemas == 1 else sorted({s for s, _, _ in _tables(count, schemas)})
            server.admin_sql("".join(f"DROP DATABASE `{name}`;" for name in names))
        else:
            server.admin_sql(f"DROP DATABASE catalog{schemas};")


if __name__ == "__main__":
    main()
