"""The Spider warehouse of ``bench/nl2sql.py --warehouse duckdb|postgres``: every Spider database as a schema
of one database, and the figures of asking the dev questions against it (issue #21, point 5).

- DuckDB: one file, a schema per Spider database, built with ``tests/_dbcopy.py`` (typed copies loaded through
  NDJSON + ``read_json``) and cached under ``constrain.local.cache_dir()/bench/warehouse``, keyed by the corpus
  files (names, sizes, times), the loader's source and ``LOADER_VERSION``: a second run opens it at once.
- PostgreSQL: database ``spider`` on a private server (``tests/_dbservers.py``) started in a temporary
  folder, a schema per Spider database; built on every run (the server is the run's own).

``sql.ask`` gets ``schemas=["*"]`` when the installed ``Database`` reads every schema with it, else every
schema's name; and ``schema_budget=`` only when the installed ``ask`` takes it (the run says when not: the
prompt then describes every table). An answer is scored as the per-database answers are (its rows against
the gold rows read from SQLite); ``Recorder`` adds retrieval recall (the gold query's tables, read with
sqlglot, all among the prompt's tables of the question's schema), how often the prompt held a table of the
same name from another schema, and the prompt tokens per question (the largest prompt of its requests).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from _common import Started

ROOT = Path(__file__).resolve().parent.parent
LOADER_VERSION = 1  # bump when the warehouse's content changes for the same corpus and loader source
POSTGRES_DATABASE = "spider"
KINDS = ("duckdb", "postgres")
TARGET_EX_POINTS = 5.0  # warehouse EX at most this many points below the per-database EX
TARGET_P50_RATIO = 2.0  # warehouse p50 seconds at most this multiple of the per-database p50
TARGET_RECALL = 0.95


def test_helpers() -> tuple[Any, Any]:
    """``tests/_dbservers.py`` and ``tests/_dbcopy.py`` (``tests/`` is no package: it joins the import path)."""
    folder = str(ROOT / "tests")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("_dbservers"), importlib.import_module("_dbcopy")


def spider_databases(corpus: Path) -> list[str]:
    """The Spider databases that have their SQLite file (``database/<db>/<db>.sqlite``), sorted."""
    folder = corpus / "database"
    return sorted(p.name for p in folder.iterdir() if (p / f"{p.name}.sqlite").is_file())


def sqlite_path(corpus: Path, db_id: str) -> Path:
    return corpus / "database" / db_id / f"{db_id}.sqlite"


def warehouse_key(corpus: Path, db_ids: Sequence[str], lower_names: bool) -> str:
    """Changes when a corpus file, the loader's source or ``LOADER_VERSION`` does."""
    digest = hashlib.sha256(f"{LOADER_VERSION} {lower_names}".encode())
    digest.update((ROOT / "tests" / "_dbcopy.py").read_bytes())
    for db_id in db_ids:
        stat = sqlite_path(corpus, db_id).stat()
        digest.update(f"\n{db_id} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cache_folder() -> Path | None:
    """Where built warehouses are kept (the user cache the local model also uses); None when
    ``CONSTRAIN_CACHE_DIR=off``."""
    if os.environ.get("CONSTRAIN_CACHE_DIR") == "off":
        return None
    from constrain.local import cache_dir

    return cache_dir() / "bench" / "warehouse"


def build_duckdb(file: Path, corpus: Path, db_ids: Sequence[str], *, lower_names: bool = False) -> dict[str, float]:
    """Copy every database of ``db_ids`` into ``file``, a schema each, through one connection; seconds per database."""
    import duckdb

    _, copies = test_helpers()
    seconds = {}
    con = duckdb.connect(str(file))
    try:
        for db_id in db_ids:
            started = time.perf_counter()
            copies.copy_sqlite(sqlite_path(corpus, db_id), con, schema=db_id, lower_names=lower_names)
            seconds[db_id] = time.perf_counter() - started
    finally:
        con.close()
    return seconds


def cached_duckdb(corpus: Path, db_ids: Sequence[str], scratch: Path, *, lower_names: bool = False) -> tuple[Path, bool, dict[str, float]]:
    """The warehouse file from the cache, else built (into the cache, or ``scratch`` without one):
    (file, whether it came from the cache, seconds per database built)."""
    folder = cache_folder() or scratch
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"spider-{warehouse_key(corpus, db_ids, lower_names)}.duckdb"
    if file.is_file():
        return file, True, {}
    partial = folder / f".{file.stem}-{os.getpid()}.duckdb"
    partial.unlink(missing_ok=True)
    try:
        seconds = build_duckdb(partial, corpus, db_ids, lower_names=lower_names)
        os.replace(partial, file)  # whole or absent: a run stopped halfway leaves no warehouse behind
    finally:
        partial.unlink(missing_ok=True)
    for stale in folder.glob("spider-*.duckdb"):  # about 0.5 GB each: keep the current one only
        if stale != file:
            stale.unlink(missing_ok=True)
    return file, False, seconds


def build_postgres(server: Any, corpus: Path, db_ids: Sequence[str], *, lower_names: bool = False) -> tuple[str, dict[str, float]]:
    """Database ``spider`` on ``server`` with a schema per database of ``db_ids``: (its URL, seconds per database)."""
    servers, copies = test_helpers()
    url = servers.create_database(server, POSTGRES_DATABASE)
    seconds = {}
    for db_id in db_ids:
        started = time.perf_counter()
        copies.copy_sqlite(sqlite_path(corpus, db_id), url, database=POSTGRES_DATABASE, schema=db_id, lower_names=lower_names)
        seconds[db_id] = time.perf_counter() - started
    return url, seconds


def open_every_schema(spec: str | Path, names: Sequence[str], samples: int = 3) -> tuple[Any, list[str]]:
    """A ``Database`` reading every schema of the warehouse and the ``schemas=`` that does it: ``["*"]``
    when the installed ``Database`` reads every non-system schema with it, else ``names``."""
    from constrain.errors import ConstrainError
    from constrain.sql import connect

    database = connect(spec, samples=samples, schemas=["*"])
    try:
        if {t.schema for t in database.schema.tables} >= set(names):
            return database, ["*"]
    except ConstrainError:
        pass
    database.close()
    return connect(spec, samples=samples, schemas=names), list(names)


class Warehouse(Started):
    """The warehouse of a run: built (or taken from the cache) and opened on entry, with its catalog read
    before any clock starts; the server stopped and temporary files removed on exit."""

    def __init__(self, kind: str, corpus: Path, ask: Callable[..., Any], modes: Sequence[str], *,
                 lower_names: bool = False, schema_budget: int | None = None) -> None:
        if kind not in KINDS:
            raise SystemExit(f"--warehouse: unknown kind {kind!r} (choose from {', '.join(KINDS)})")
        self.kind, self.corpus, self.ask, self.lower_names, self.budget = kind, corpus, ask, lower_names, schema_budget
        self.modes = [m for m in modes if m.startswith("ask")]
        if not self.modes:
            raise SystemExit("--warehouse asks through sql.ask: give an ask mode (--modes ask1 or askK)")
        self.db_ids = spider_databases(corpus)
        self.folder: Path | None = None
        self.server: Any = None
        self.database: Any = None
        self.schemas: list[str] = []
        self.load: dict[str, Any] = {}
        self.options: dict[str, Any] = {}
        self.recorder = Recorder(kind, self.modes, self.load, schema_budget, False)

    def _start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="constrain-warehouse-"))
        os.chmod(self.folder, 0o755)  # the server's system user works in a sub-folder of it
        started = time.perf_counter()
        if self.kind == "duckdb":
            spec, cached, per_db = cached_duckdb(self.corpus, self.db_ids, self.folder, lower_names=self.lower_names)
            self.load.update(file=str(spec), cached=cached, start_seconds=0.0)
        else:
            servers, _ = test_helpers()
            self.server = servers.start_postgres(self.folder)
            self.load["start_seconds"] = time.perf_counter() - started
            spec, per_db = build_postgres(self.server, self.corpus, self.db_ids, lower_names=self.lower_names)
            cached = False
        self.load.update(databases=len(self.db_ids), build_seconds=sum(per_db.values()))
        opened = time.perf_counter()
        self.database, self.schemas = open_every_schema(spec, self.db_ids)
        tables = self.database.schema.tables
        self.load.update(catalog_seconds=time.perf_counter() - opened, tables=len(tables),
                         columns=sum(len(t.columns) for t in tables), every_schema_star=self.schemas == ["*"])
        built = "taken from the cache" if cached else f"built in {self.load['build_seconds']:.1f} s"
        server = f"server up in {self.load['start_seconds']:.1f} s, " if self.server is not None else ""
        print(f"warehouse {self.kind}: {server}{len(self.db_ids)} schemas, {len(tables)} tables, "
              f"{self.load['columns']} columns {built}; catalog read in {self.load['catalog_seconds']:.1f} s "
              f"(schemas={'[*]' if self.load['every_schema_star'] else 'every schema by name: the installed Database reads no [*]'})",
              flush=True)
        self.options = {"schemas": self.schemas}  # sql.ask's keyword arguments
        if self.budget is not None and budget_supported(self.ask):
            self.options["schema_budget"] = self.budget
        self.recorder.data["budget_supported"] = "schema_budget" in self.options
        print(f"warehouse: sql.ask(..., schemas={'[*]' if self.schemas == ['*'] else f'[{len(self.schemas)} names]'}, "
              + (f"schema_budget={self.budget})" if "schema_budget" in self.options else
                 "no schema_budget): the installed sql.ask takes none, every prompt describes every table"), flush=True)

    def close(self) -> None:
        if self.database is not None:
            with contextlib.suppress(Exception):
                self.database.close()
            self.database = None
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop()
            self.server = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def for_run(kind: str | None, corpus: Path, ask: Callable[..., Any], modes: Sequence[str], lower_names: bool,
            schema_budget: int | None) -> Any:
    """The run's ``Warehouse`` (a context manager), or ``nullcontext()`` (None) when ``kind`` is None."""
    if kind is None:
        return contextlib.nullcontext()
    return Warehouse(kind, corpus, ask, modes, lower_names=lower_names, schema_budget=schema_budget)


def budget_supported(ask: Callable[..., Any]) -> bool:
    return "schema_budget" in inspect.signature(ask).parameters


def gold_tables(sql: str) -> set[str] | None:
    """The tables a gold query reads (lower case, CTE names left out); None when sqlglot cannot read it."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return None
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes}


def split_table(name: str) -> tuple[str, str]:
    """``"concert_singer.singer"`` -> ("concert_singer", "singer"), lower case; an unqualified name has schema ""."""
    schema, _, table = name.rpartition(".")
    return schema.strip('"').lower(), table.strip('"').lower()


def retrieval(db_id: str, gold: set[str], prompt_tables: Sequence[dict[str, Any]], rounds: int | None = None) -> tuple[bool, bool]:
    """(every gold table is among the prompt's tables of schema ``db_id``, the prompt held a table named as a
    gold table from another schema); ``rounds``: only the tables of those prompt rounds (1 = retrieval alone)."""
    held = [split_table(str(entry["table"])) for entry in prompt_tables
            if rounds is None or int(entry.get("round", 1)) <= rounds]
    mine = {table for schema, table in held if schema == db_id.lower()}
    others = {table for schema, table in held if schema != db_id.lower()}
    return gold <= mine, bool(gold & others)


def prompt_tokens(answer: Any) -> int:
    """The largest prompt of the answer's requests, in tokens (a repair round's prompt holds more tables)."""
    return max((attempt.usage.input_tokens for attempt in answer.result.attempts), default=0)


class Recorder:
    """Counts per warehouse mode, as plain data (``run["warehouse"]``) for ``--save`` / ``--merge``."""

    def __init__(self, kind: str, modes: Sequence[str], load: dict[str, Any], budget: int | None, budget_taken: bool) -> None:
        self.data: dict[str, Any] = {"kind": kind, "load": load, "schema_budget": budget, "budget_supported": budget_taken,
                                     "modes": {mode: _empty() for mode in modes}}

    def record(self, mode: str, q: dict[str, Any], answer: Any) -> str:
        """Count ``answer`` to question ``q`` (or the ``ConstrainError`` ask raised: its ``prompt_tables`` count
        toward recall too); a note for the question's report line."""
        counts = self.data["modes"][mode]
        counts["asked"] += 1
        if isinstance(answer, Exception):
            counts["failed"] += 1
            attempts = getattr(answer, "attempts", ())
            held = getattr(answer, "prompt_tables", ())
            if not attempts or not held:
                return f"  {'':14}     no answer: retrieval not known"
            counts["prompt_tokens"].append(max(a.usage.input_tokens for a in attempts))
            tables = [p.to_dict() for p in held]
        else:
            counts["prompt_tokens"].append(prompt_tokens(answer))
            tables = answer.to_dict().get("prompt_tables")
        gold = gold_tables(q["query"])
        if tables is None:
            counts["unlinked"] += 1
            return f"  {'':14}     prompt {counts['prompt_tokens'][-1]} tokens (the Answer lists no prompt_tables)"
        if gold is None:
            counts["gold_unread"] += 1
            return f"  {'':14}     prompt {counts['prompt_tokens'][-1]} tokens, {len(tables)} tables (gold SQL unread)"
        recalled, same_named = retrieval(q["db_id"], gold, tables, rounds=1)
        counts["linked"] += 1
        counts["recalled"] += recalled
        counts["recalled_with_repairs"] += retrieval(q["db_id"], gold, tables)[0]
        counts["same_named"] += same_named
        missing = sorted(gold - {t for s, t in (split_table(str(e["table"])) for e in tables) if s == q["db_id"].lower()})
        return (f"  {'':14}     {'no answer, ' if isinstance(answer, Exception) else ''}prompt {counts['prompt_tokens'][-1]} tokens, {len(tables)} tables, "
                f"recall {'ok' if recalled else 'MISS ' + ', '.join(missing)}{', same-named table elsewhere' if same_named else ''}")


def _empty() -> dict[str, Any]:
    return {"asked": 0, "failed": 0, "linked": 0, "unlinked": 0, "gold_unread": 0, "recalled": 0, "recalled_with_repairs": 0,
            "same_named": 0, "prompt_tokens": []}


def merge(merged: dict[str, Any], part: dict[str, Any]) -> None:
    """Add ``part``'s warehouse counts to ``merged``'s (both whole runs as ``--save`` writes them)."""
    if "warehouse" not in part:
        return
    if "warehouse" not in merged:
        merged["warehouse"] = part["warehouse"]
        return
    for mode, counts in part["warehouse"]["modes"].items():
        mine = merged["warehouse"]["modes"].setdefault(mode, _empty())
        for key, value in counts.items():
            mine[key] = mine[key] + value


def _nearest(values: Sequence[int], pct: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5))) - 1]


def report(run: dict[str, Any], figures: dict[str, Any]) -> None:
    """Print the warehouse's section (load, budget, recall, prompt tokens, the targets) and add its figures."""
    data = run.get("warehouse")
    if not data:
        return
    load = data["load"]
    figures.update({f"warehouse_{key}": load.get(key) for key in ("start_seconds", "build_seconds", "catalog_seconds", "tables", "cached")})
    figures["warehouse_kind"] = data["kind"]
    figures["warehouse_schema_budget"] = data["schema_budget"] if data["budget_supported"] else None
    print(f"\nwarehouse ({data['kind']}): {load['databases']} schemas, {load['tables']} tables, {load['columns']} columns; "
          f"{'from the cache' if load.get('cached') else 'built in %.1f s' % load['build_seconds']}, "
          f"catalog read in {load['catalog_seconds']:.1f} s")
    if data["budget_supported"] and data["schema_budget"] is not None:
        print(f"schema_budget={data['schema_budget']} tokens")
    else:
        print("schema_budget: NOT PASSED (the installed sql.ask takes no schema_budget, or none was given): "
              "every prompt describes the whole warehouse")
    rows = []
    for mode, counts in data["modes"].items():
        if not counts["asked"]:
            continue
        name = f"warehouse_{mode}"
        tokens = counts["prompt_tokens"]
        linked = counts["linked"]
        recall = counts["recalled"] / linked if linked else None
        figures[f"{name}_recall"] = recall
        figures[f"{name}_recall_with_repairs"] = counts["recalled_with_repairs"] / linked if linked else None
        figures[f"{name}_same_named_share"] = counts["same_named"] / linked if linked else None
        figures[f"{name}_prompt_tokens_p50"] = _nearest(tokens, 50) if tokens else None
        figures[f"{name}_prompt_tokens_max"] = max(tokens) if tokens else None
        points = figures.get(f"{name}_minus_sqlite_points")
        mine, theirs = figures.get(f"{name}_p50_seconds"), figures.get(f"{mode}_p50_seconds")
        ratio = mine / theirs if mine and theirs else None
        figures[f"{name}_p50_over_sqlite"] = ratio
        checks = {"ex": None if points is None else points >= -TARGET_EX_POINTS,  # None: not measured
                  "p50": None if ratio is None else ratio <= TARGET_P50_RATIO,
                  "recall": None if recall is None else recall >= TARGET_RECALL}
        for key, met in checks.items():
            figures[f"{name}_target_{key}_met"] = met
        verdict = {key: "ok" if met else "MISSED" for key, met in checks.items()}
        rows.append([
            mode,
            f"{points:+.1f} ({verdict['ex']})" if points is not None else "-",
            f"{ratio:.2f}x ({verdict['p50']})" if ratio is not None else "-",
            f"{counts['recalled']}/{linked} = {recall:.1%} ({verdict['recall']})" if linked else
            f"not measured: {counts['unlinked']} answer(s) without prompt_tables, {counts['failed']} failed",
            f"{counts['recalled_with_repairs'] / linked:.1%}" if linked else "-",
            f"{counts['same_named']}/{linked}" if linked else "-",
            f"{figures[f'{name}_prompt_tokens_p50']} / {figures[f'{name}_prompt_tokens_max']}" if tokens else "-",
        ])
    if rows:
        from _common import print_table

        print_table([f"mode (targets: EX >= -{TARGET_EX_POINTS:g} points, p50 <= {TARGET_P50_RATIO:g}x, recall >= {TARGET_RECALL:.0%})",
                     "EX vs per-database (points)", "p50 vs per-database", "retrieval recall (round 1)",
                     "recall with repair rounds", "prompt held a same-named table of another schema",
                     "prompt tokens p50 / max"], rows)
