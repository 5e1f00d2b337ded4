"""Natural-language-to-SQL quality: execution accuracy free, under the grammar, and through ``sql.ask``.

Runs a provider (the embedded local model by default) over Spider dev questions
(``../shared/corpora/spider/dev_shared.json``; databases in ``../shared/corpora/spider/database``).
Every mode uses ``sql.ask``'s own prompt (the schema with its primary/foreign keys and a few sample
values per column), so the modes differ only in how the answer is produced:

- ``free``: unconstrained decoding (Markdown code fences stripped, nothing else repaired);
- ``grammar``: one greedy answer under the schema-bound SQLite grammar;
- ``ask k=1``: ``sql.ask(candidates=1)``: grammar, ``validate()``, up to 3 attempts with the error fed back;
- ``ask k=K``: ``sql.ask(candidates=K)``: K candidates (greedy + samples), validated, run, voted by result.

The ``ask`` modes are scored twice: with ``double_quoted_strings=True`` (the default: SQLite's ``"x"``
naming no column is read as the string ``'x'``) and ``False`` (every such word is an unknown column).
The second pass replays the first pass's model outputs (same prompts, deterministic decoding), so it
costs no decoding and has no latency of its own. ``--plain`` also runs both ``ask`` modes with the old
prompt (no keys, no sample values). ``--sweep N`` draws N candidates once per question and reports the
EX of voting over the first k of them for every k <= N (the candidate sets of smaller K are its
prefixes), to choose the default K.

An answer is correct when its result rows equal the gold rows as a multiset (columns may come in
another order). Reports EX, the share of answers that execute, p50/p95 seconds per question and
decoding tokens/s (latencies are per question with the database's schema prompt already evaluated,
as for a second question about the same database; the local model evaluates it once per database
before the clocks start). ``--limit N`` takes N questions shared evenly among all the databases, evenly
spaced within each.

``--shard I/N`` runs the I-th of N parts (whole databases, balanced by question count) and writes its
tallies to ``--save FILE``; ``--merge FILE...`` reports the parts as one run (on a 2-core machine two
one-thread shards finish the whole set in about half the time; latencies stay per question).

``--db-engine sqlite,postgres,mysql,duckdb`` (default ``sqlite``) also asks every question against a
copy of its database on each listed engine: a private PostgreSQL / MariaDB server (``tests/_dbservers.py``)
started in a temporary folder, or one DuckDB file per database, each Spider database copied once per run
with column types taken from its values (names kept as they are; ``--lower-names`` lower-cases them).
``sql.ask`` then gets that engine's ``Database`` (its dialect, grammar and prompt); free and grammar modes
run the engine's prompt and grammar and execute there. The gold rows are always the gold query's result
on the SQLite file; an engine's answer is scored on its own result rows, with engine values read as
SQLite would hold them (Decimal -> float, bool -> int, date/time -> ISO text) and, on both sides, text
that reads as a number taken as the number (the copies type Spider's numbers-as-text columns as numbers)
and floats rounded to 4 places (MySQL's AVG). ``--sweep`` and
``--plain`` stay SQLite-only, and so do the "dqs off" replays (``double_quoted_strings`` is SQLite's).
The report has a row per engine and mode with the difference to SQLite's EX in the same run (points).
``--warehouse duckdb|postgres`` also asks (ask modes) against all Spider databases as schemas of one
database, with ``schemas=["*"], schema_budget=N`` (``bench/_warehouse.py``: recall, prompt tokens, targets).

    python bench/nl2sql.py [--limit N] [--candidates K] [--sweep N] [--plain] [--model NAME|PATH] [--json]
    python bench/nl2sql.py --db-engine sqlite,postgres,mysql,duckdb --modes ask1,askK [--limit N]
    python bench/nl2sql.py --shard 1/2 --save a.json & python bench/nl2sql.py --shard 2/2 --save b.json
    python bench/nl2sql.py --warehouse duckdb --modes ask1 [--schema-budget N] [--limit N]
    python bench/nl2sql.py --merge a.json b.json [--json]
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import decimal
import importlib.util
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

# bench/ goes last on the path: bench/jsonschema.py must not shadow the jsonschema package
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [entry for entry in sys.path if entry != _HERE] + [_HERE]

import _warehouse
from _common import ROOT, Started, bench_parser, emit, percentile, print_table

from constrain import providers
from constrain.errors import ConstrainError
from constrain.providers.base import Candidate, Completion, Constraint, DeltaCallback, Message, Provider, Sampling

CORPUS = Path(os.environ.get("CONSTRAIN_CORPORA", ROOT.parent / "shared" / "corpora")) / "spider"
QUERY_SECONDS = 10.0


def spread(questions: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Up to ``limit`` questions shared evenly among the databases, evenly spaced within each database's
    questions (so not just the first, easiest ones); grouped by database for running."""
    by_db: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in questions:
        by_db[q["db_id"]].append(q)
    if limit is None or limit >= len(questions):
        chosen = questions
    else:
        dbs = sorted(by_db)
        quota = {db: limit // len(dbs) + (i < limit % len(dbs)) for i, db in enumerate(dbs)}
        chosen = []
        for db in dbs:
            items, k = by_db[db], min(quota[db], len(by_db[db]))
            chosen += [items[int((i + 0.5) * len(items) / k)] for i in range(k)]
    return sorted(chosen, key=lambda q: q["db_id"])  # stable: same database in a row reuses the prompt cache


def shard(questions: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    """The I-th of N parts of ``questions`` (``spec`` "I/N"): whole databases, the largest first, each to
    the part with the fewest questions so far."""
    if not spec:
        return questions
    index, parts = (int(x) for x in spec.split("/"))
    if not 1 <= index <= parts:
        raise SystemExit(f"--shard {spec}: I must be in 1..N")
    counts = collections.Counter(q["db_id"] for q in questions)
    load, owner = [0] * parts, {}
    for db, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        part = load.index(min(load))
        owner[db], load[part] = part, load[part] + n
    return [q for q in questions if owner[q["db_id"]] == index - 1]


def run_query(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows of ``sql`` on a read-only connection, or None when it does not execute (or runs too long)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    deadline = time.monotonic() + QUERY_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    conn.text_factory = lambda b: b.decode("utf-8", "replace")
    try:
        return conn.execute(sql).fetchall()
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return None
    finally:
        conn.close()


def same_rows(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal as multisets of rows, allowing the columns in another order (as Spider's test-suite EX does)."""

    def norm(rows: list[tuple[Any, ...]]) -> collections.Counter[tuple[Any, ...]]:
        return collections.Counter(tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows)

    if len(a) != len(b):
        return False
    if not a:
        return True
    width = len(a[0])
    if width != len(b[0]):
        return False
    target = norm(b)
    orders = itertools.permutations(range(width)) if width <= 6 else [tuple(range(width))]
    return any(norm([tuple(row[i] for i in order) for row in a]) == target for order in orders)


ENGINES = ("sqlite", "postgres", "mysql", "duckdb")
_ENGINE_ALIASES = {"postgresql": "postgres", "pg": "postgres", "mariadb": "mysql"}


def parse_engines(text: str) -> list[str]:
    """``--db-engine``'s comma-separated list, aliases resolved, order kept, SQLite first when listed (its EX
    is the reference the others are compared with)."""
    engines: list[str] = []
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        name = _ENGINE_ALIASES.get(word, word)
        if name not in ENGINES:
            raise SystemExit(f"--db-engine: unknown engine {word!r} (choose from {', '.join(ENGINES)})")
        if name not in engines:
            engines.append(name)
    if not engines:
        raise SystemExit("--db-engine: no engine given")
    return sorted(engines, key=lambda e: e != "sqlite")


def mode_key(engine: str, mode: str) -> str:
    """The tally key of ``mode`` on ``engine``: SQLite's keys are the modes themselves (as before engines)."""
    return mode if engine == "sqlite" else f"{engine}:{mode}"


def split_key(key: str) -> tuple[str, str]:
    engine, _, mode = key.rpartition(":")
    return engine or "sqlite", mode


def as_sqlite(value: Any) -> Any:
    """An engine's value as SQLite would hold it, for comparing with the gold rows read from SQLite."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def loose(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows for comparing an engine's result with SQLite's gold rows, on both sides: text that reads as a
    number becomes that number (the copies type a TEXT column of numbers, such as Spider's years, as
    numbers, as ``tests/_dbcopy.py`` types them) and floats are rounded to 4 places (MySQL's AVG is a
    DECIMAL of 4 places)."""

    def value(v: Any) -> Any:
        if isinstance(v, str):
            if _INT_TEXT.match(v) and str(int(v)) == v:
                return int(v)
            if _NUMBER_TEXT.match(v):
                v = float(v)
        return round(v, 4) if isinstance(v, float) else v

    return [tuple(value(v) for v in row) for row in rows]


def _test_servers() -> tuple[Any, Any]:
    """``tests/_dbservers.py`` (private servers) and ``tests/_dbcopy.py`` (typed SQLite copies): ``tests/`` is
    not a package, so it joins the end of the import path (bench/ runs as a script)."""
    folder = str(ROOT / "tests")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module("_dbservers"), importlib.import_module("_dbcopy")


class EngineCopies(Started):
    """The Spider databases on every engine of a run: servers started and databases copied on entry,
    one ``Database`` per (engine, database) opened on first use, everything closed, stopped and removed
    on exit (also after an error or Ctrl-C). ``load`` holds the seconds spent per engine."""

    def __init__(self, engines: Sequence[str], corpus: Path, db_ids: Sequence[str], *, lower_names: bool = False,
                 samples: int = 3) -> None:
        self.engines, self.corpus, self.db_ids, self.lower_names = list(engines), corpus, list(db_ids), lower_names
        self.samples = samples
        self.specs: dict[tuple[str, str], Any] = {}
        self.open: dict[tuple[str, str], Any] = {}
        self.servers: list[Any] = []
        self.folder: Path | None = None
        self.load: dict[str, dict[str, Any]] = {}

    def sqlite_path(self, db_id: str) -> Path:
        return self.corpus / "database" / db_id / f"{db_id}.sqlite"

    def _start(self) -> None:
        for db_id in self.db_ids:
            self.specs["sqlite", db_id] = self.sqlite_path(db_id)
        others = [e for e in self.engines if e != "sqlite"]
        if not others:
            return
        servers, copies = _test_servers()
        self.folder = Path(tempfile.mkdtemp(prefix="constrain-nl2sql-"))
        os.chmod(self.folder, 0o755)  # the servers' system users work in sub-folders of it
        for engine in others:
            t0 = time.perf_counter()
            server = None
            if engine == "postgres":
                server = servers.start_postgres(self.folder)
            elif engine == "mysql":
                server = servers.start_mariadb(self.folder)
            if server is not None:
                self.servers.append(server)
            t1 = time.perf_counter()
            per_db = {}
            for db_id in self.db_ids:
                t = time.perf_counter()
                target = server if server is not None else f"duckdb:///{self.folder / (db_id + '.duckdb')}"
                self.specs[engine, db_id] = copies.copy_sqlite(self.sqlite_path(db_id), target, database=db_id if server else None,
                                                                lower_names=self.lower_names)
                per_db[db_id] = time.perf_counter() - t
            self.load[engine] = {"start_seconds": t1 - t0, "copy_seconds": sum(per_db.values()), "databases": len(per_db),
                                 "per_database": per_db}
            print(f"{engine}: {'server up in %.1f s, ' % (t1 - t0) if server else ''}"
                  f"{len(per_db)} database(s) copied in {sum(per_db.values()):.1f} s", flush=True)

    def database(self, engine: str, db_id: str) -> Any:
        from constrain.sql import connect

        key = (engine, db_id)
        if key not in self.open:
            self.open[key] = connect(self.specs[key], samples=self.samples)
        return self.open[key]

    def close(self) -> None:
        for database in self.open.values():
            with contextlib.suppress(Exception):
                database.close()
        self.open.clear()
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                server.stop()
        self.servers.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def engine_rows(database: Any, sql: str, answer: Any = None) -> list[tuple[Any, ...]] | None:
    """``sql``'s rows on an engine, values as SQLite would hold them (None when it does not execute): the
    answer's own rows when it has them all, else a run without a row cap."""
    rows = answer.rows if answer is not None else None
    if rows is None or rows.truncated:
        try:
            rows = database.run(sql, max_rows=None, seconds=QUERY_SECONDS)
        except Exception:  # noqa: BLE001 - any refusal or driver error: the answer does not execute
            return None
    return [tuple(as_sqlite(v) for v in row) for row in rows.rows]


_FENCE = re.compile(r"```(?:sql|sqlite)?\s*(.*?)```", re.S | re.I)


def strip_fences(text: str) -> str:
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip()


class Replay(Provider):
    """Records the inner provider's outputs by request and answers the same request again from the
    record (decoding is deterministic: greedy, or seeded samples): a second scoring pass costs nothing."""

    def __init__(self, inner: Provider) -> None:
        self.inner, self.name, self.model = inner, inner.name, inner.model
        self.supports_sampling = inner.supports_sampling  # type: ignore[misc]
        self.default_candidates = inner.default_candidates  # type: ignore[misc]
        self.record: dict[Any, Any] = {}
        self.replaying = False

    @staticmethod
    def _key(messages: Sequence[Message], constraint: Constraint | None, *rest: Any) -> Any:
        return (tuple(messages), constraint.grammar.text if constraint is not None else None, *rest)

    def _lookup(self, key: Any, compute: Any) -> Any:
        if key not in self.record:  # a replayed pass that takes another path (a re-ask) decodes afresh
            try:
                self.record[key] = compute()
            except ConstrainError as exc:
                self.record[key] = exc
        value = self.record[key]
        if isinstance(value, ConstrainError):
            raise value
        return value

    def complete(self, messages: Sequence[Message], constraint: Constraint, *, max_tokens: int | None = None,
                 on_delta: DeltaCallback | None = None, sampling: Sampling | None = None) -> Completion:
        return self._lookup(self._key(messages, constraint, max_tokens, sampling),  # type: ignore[no-any-return]
                            lambda: self.inner.complete(messages, constraint, max_tokens=max_tokens, sampling=sampling))  # type: ignore[call-arg]

    async def acomplete(self, *args: Any, **kwargs: Any) -> Completion:
        return self.complete(*args, **kwargs)

    def complete_candidates(self, messages: Sequence[Message], constraint: Constraint, samplings: Sequence[Sampling], *,
                            max_tokens: int | None = None) -> list[Candidate]:
        return self._lookup(self._key(messages, constraint, max_tokens, tuple(samplings)),  # type: ignore[no-any-return]
                            lambda: self.inner.complete_candidates(messages, constraint, samplings, max_tokens=max_tokens))


LABELS = {
    "free": "free decoding",
    "grammar": "schema-bound grammar, greedy",
    "ask1": "sql.ask k=1 (validate + re-ask)",
    "askK": "sql.ask k={K} (candidates voted by result)",
}


def merge_runs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Saved parts (``--shard`` + ``--save``) as one run: tallies and counts added, latencies joined."""
    merged = parts[0]
    for part in parts[1:]:
        for key in ("tally", "speed"):
            for mode, values in part[key].items():
                merged[key].setdefault(mode, {} if key == "tally" else [0, 0.0])
                if key == "tally":
                    for name, count in values.items():
                        merged[key][mode][name] = merged[key][mode].get(name, 0) + count
                else:
                    merged[key][mode] = [a + b for a, b in zip(merged[key][mode], values)]
        for mode, values in part["latency"].items():
            merged["latency"].setdefault(mode, []).extend(values)
        for k, count in part["sweep"].items():
            merged["sweep"][k] = merged["sweep"].get(k, 0) + count
        for key in ("questions", "databases", "seconds"):
            merged["meta"][key] += part["meta"][key]
        for engine in part["meta"].get("engines", ["sqlite"]):
            if engine not in merged["meta"].setdefault("engines", ["sqlite"]):
                merged["meta"]["engines"].append(engine)
        for mode in part["meta"]["modes"]:
            if mode not in merged["meta"]["modes"]:
                merged["meta"]["modes"].append(mode)
        _warehouse.merge(merged, part)
        for engine, load in part["meta"].get("load", {}).items():
            mine = merged["meta"].setdefault("load", {}).setdefault(engine, {"start_seconds": 0.0, "copy_seconds": 0.0,
                                                                              "databases": 0, "per_database": {}})
            for key in ("start_seconds", "copy_seconds", "databases"):
                mine[key] += load[key]
            mine["per_database"].update(load["per_database"])
    return merged


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="number of questions (spread over all databases)")
    parser.add_argument("--provider", default="local", help="provider name (default: the embedded local model)")
    parser.add_argument("--model", default=None, help="model name or GGUF path for the provider")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=None, help="K of the ask k=K mode (default: the provider's default)")
    parser.add_argument("--sweep", type=int, default=0, metavar="N", help="also draw N candidates and report EX for k=1..N")
    parser.add_argument("--plain", action="store_true", help="also run the ask modes with the plain schema prompt")
    parser.add_argument("--modes", default="free,grammar,ask1,askK", help="comma-separated subset of free,grammar,ask1,askK")
    parser.add_argument("--db-engine", default="sqlite", metavar="ENGINES",
                        help="comma-separated engines to ask on: sqlite, postgres, mysql, duckdb (default: sqlite)")
    parser.add_argument("--lower-names", action="store_true", help="lower-case table and column names in the engine copies")
    parser.add_argument("--samples", type=int, default=3, help="distinct values read per column (default 3, as sql.ask): schema linking matches them all, "
                             "the prompt shows the first (schema.SHOWN_SAMPLES); 0 reads and shows none")
    parser.add_argument("--warehouse", choices=_warehouse.KINDS, default=None, help="also ask every question against the warehouse")
    parser.add_argument("--schema-budget", type=int, default=None, metavar="TOKENS", help="the warehouse prompt's schema budget (default: sql.ask's, fitted to the model's context)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the Spider corpus folder")
    parser.add_argument("--show", action="store_true", help="print every question with its answers")
    parser.add_argument("--shard", default=None, metavar="I/N", help="run only the I-th of N parts of the questions")
    parser.add_argument("--save", type=Path, default=None, metavar="FILE", help="write the run's tallies to FILE (for --merge)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="FILE", help="report saved parts as one run")
    args = parser.parse_args()
    if args.merge:
        report(merge_runs([json.loads(path.read_text()) for path in args.merge]), as_json=args.json)
        return

    from constrain.sql import ask as sql_ask
    from constrain.sql.ask import _plan, vote

    engines = parse_engines(args.db_engine)
    asked = engines + ["warehouse"] * bool(args.warehouse)  # the warehouse runs the ask modes only
    # the engine copies' servers are stopped in a ``finally``: make SIGTERM/SIGHUP (a CI timeout, a closed
    # terminal) and SIGINT (ignored when started in the background by a non-interactive shell) reach it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    questions = shard(spread(json.loads((args.corpus / "dev_shared.json").read_text()), args.limit), args.shard)
    options: dict[str, Any] = {"model": args.model}
    if args.provider == "local":
        options["max_tokens"] = args.max_tokens
    inner: Provider = providers.get(args.provider, **options)
    provider = Replay(inner)
    K = args.candidates or inner.default_candidates
    modes = [m for m in args.modes.split(",") if m]
    scored: list[str] = []  # every figure's mode name, in order: SQLite's as before, then each engine's
    if "sqlite" in engines:
        for mode in modes:
            scored.append(mode)
            if mode.startswith("ask"):
                scored.append(f"{mode}_dqs_off")
        if args.plain:
            scored += [f"{m}_plain" for m in modes if m.startswith("ask")]
    for engine in asked:
        if engine != "sqlite":
            scored += [mode_key(engine, m) for m in modes if engine != "warehouse" or m.startswith("ask")]
    tally = {m: collections.Counter() for m in scored}
    latency: dict[str, list[float]] = {m: [] for m in scored}
    speed = {m: [0, 0.0] for m in scored}
    sweep = collections.Counter()
    ks = list(range(1, args.sweep + 1)) if "sqlite" in engines else []

    def score(mode: str, database: Any, sql: str, gold: Any, line: list[str], note: str = "", answer: Any = None) -> None:
        if not sql:
            rows = None
        elif database.dialect == "sqlite":
            rows = run_query(database.path, sql)
        else:
            rows = engine_rows(database, sql, answer)
        if database.dialect == "sqlite":
            correct = rows is not None and gold is not None and same_rows(rows, gold)
        else:
            correct = rows is not None and gold is not None and same_rows(loose(rows), loose(gold))
        tally[mode]["total"] += 1
        tally[mode]["executes"] += rows is not None
        tally[mode]["correct"] += correct
        line.append(f"  {mode:14} {'ok ' if correct else 'BAD' if rows is not None else 'ERR'} {sql}{note}")

    def ask_mode(mode: str, q: dict[str, Any], database: Any, gold: Any, line: list[str], k: int, dqs: bool,
                 detail: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            answer = sql_ask(q["question"], db=database, provider=provider, run=True, max_attempts=3, max_tokens=args.max_tokens,
                             candidates=k, double_quoted_strings=dqs, **detail)
            sql = answer.sql
        except ConstrainError as exc:
            answer, sql, failure = None, "", exc
            tally[mode]["errors"] += 1
            line.append(f"  {mode}: error {type(exc).__name__}: {str(exc).splitlines()[0]}")
        elapsed = time.perf_counter() - started
        if answer is not None and any(r.startswith("schema repair") for r in answer.query.rewrites):
            tally[mode]["schema_repaired"] += 1
        if not provider.replaying:
            latency[mode].append(elapsed)
            if answer is not None:
                speed[mode][0] += answer.result.usage.output_tokens
                speed[mode][1] += elapsed
        note = f"  [{answer.vote.rule}, {answer.vote.groups and len(answer.vote.groups[0][1])}/{k}, round {answer.vote.rounds}]" if answer and answer.vote else ""
        note += "  [schema repair]" if answer is not None and any(r.startswith("schema repair") for r in answer.query.rewrites) else ""
        score(mode, database, sql, gold, line, note + ("" if provider.replaying else f"  ({elapsed:.1f} s)"), answer)
        return answer if answer is not None else failure

    by_db: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in questions:
        by_db[q["db_id"]].append(q)
    total = len(questions) * len(asked)
    n_done = 0

    def progress(line: list[str], q: dict[str, Any], engine: str, db_id: str) -> None:
        line.append(f"  {'gold':14}     {q['query']}")
        marks = " ".join(f"{split_key(entry.split()[0])[1]} {entry.split()[1]}" for entry in line[1:-1]
                         if len(entry.split()) > 1 and entry.split()[1] in ("ok", "BAD", "ERR"))
        print("\n".join(line) if args.show else f"[{n_done}/{total}] {time.perf_counter() - started:.0f} s  {engine:8} {db_id}: {marks}",
              flush=True)

    with EngineCopies(engines, args.corpus, list(by_db), lower_names=args.lower_names, samples=args.samples) as copies, \
            _warehouse.for_run(args.warehouse, args.corpus, sql_ask, modes, args.lower_names, args.schema_budget) as warehouse:
        started = time.perf_counter()
        for db_id, items in by_db.items():
            db_path = copies.sqlite_path(db_id)
            golds = [run_query(db_path, q["query"]) for q in items]  # the gold rows: always SQLite's
            for engine in asked:  # one engine at a time: the prompt cache holds its schema prompt
                if engine == "warehouse":  # a prompt of its own per question: nothing to evaluate before the clocks
                    for q, gold in zip(items, golds):
                        line = [f"{db_id} in the {args.warehouse} warehouse: {q['question']}"]
                        for mode in warehouse.modes:  # the note on retrieval follows the answer's line
                            line.append(warehouse.recorder.record(mode, q, ask_mode(
                                mode_key(engine, mode), q, warehouse.database, gold, line, 1 if mode == "ask1" else K, True, warehouse.options)))
                        n_done += 1
                        progress(line, q, engine, db_id)
                    continue
                database = copies.database(engine, db_id)
                rich = _plan("?", database, None, 3, True)
                constraint = Constraint(rich.grammar, name="sql_query")
                passes: list[tuple[str, dict[str, Any]]] = [("", {})]
                if args.plain and engine == "sqlite":
                    passes.append(("_plain", {"sample_values": 0, "keys": False}))
                for suffix, detail in passes:  # one prompt per pass: the prompt cache holds it for the database
                    if args.provider == "local":  # evaluate the schema prompt before the clocks start
                        system = rich.messages[0] if not suffix else _plan("?", db_path, "sqlite", 0, False).messages[0]
                        try:
                            inner.complete([system, Message("user", "?")], constraint, max_tokens=1)
                        except ConstrainError:
                            pass
                    for q, gold in zip(items, golds):
                        label = db_id if engine == "sqlite" else f"{db_id} on {engine}"
                        line = [f"{label}{suffix}: {q['question']}"]
                        messages = [rich.messages[0], Message("user", q["question"])]
                        for mode in modes:
                            if suffix and not mode.startswith("ask"):
                                continue
                            name = mode_key(engine, mode + suffix)
                            if mode in ("free", "grammar"):
                                con = constraint if mode == "grammar" else None
                                t0 = time.perf_counter()
                                try:
                                    completion = inner.complete(messages, con, max_tokens=args.max_tokens)  # type: ignore[arg-type]
                                    sql = strip_fences(completion.text) if con is None else completion.text
                                    raw = completion.raw
                                    if raw is not None and hasattr(raw, "decode_seconds"):
                                        speed[name][0] += raw.completion_tokens
                                        speed[name][1] += raw.decode_seconds
                                except ConstrainError as exc:
                                    sql = ""
                                    tally[name]["errors"] += 1
                                    line.append(f"  {name}: error {type(exc).__name__}: {str(exc).splitlines()[0]}")
                                latency[name].append(time.perf_counter() - t0)
                                score(name, database, sql, gold, line, f"  ({latency[name][-1]:.1f} s)")
                                continue
                            k = 1 if mode == "ask1" else K
                            ask_mode(name, q, database, gold, line, k, True, detail)
                            if not suffix and engine == "sqlite":  # the same model outputs, read with double_quoted_strings=False
                                provider.replaying = True
                                ask_mode(f"{mode}_dqs_off", q, database, gold, line, k, False, detail)
                                provider.replaying = False
                        if ks and not suffix and engine == "sqlite":  # the sweep: N candidates once, votes over every prefix
                            try:  # max_attempts=1: no repair, so a draw where nothing survives counts as wrong
                                drawn: tuple[Any, ...] = sql_ask(q["question"], db=database, provider=provider, run=True,
                                                                 candidates=args.sweep, max_tokens=args.max_tokens,
                                                                 max_attempts=1).candidates
                            except ConstrainError:
                                drawn = ()
                            for k in ks:
                                chosen, sized = vote(drawn[:k]) if drawn else (None, ())
                                winner = next((c for c in sized if chosen and c.number == chosen.winner), None)
                                sql = winner.query.text if winner is not None and winner.query is not None else ""
                                rows = run_query(db_path, sql) if sql else None
                                sweep[k] += rows is not None and gold is not None and same_rows(rows, gold)
                        n_done += 1 if not suffix else 0
                        progress(line, q, engine, db_id)
        elapsed = time.perf_counter() - started
    run = {
        "meta": {"provider": args.provider, "model": getattr(inner, "model", None), "questions": len(questions),
                 "databases": len(by_db), "candidates": K, "seconds": elapsed, "modes": scored, "ks": ks,
                 "engines": asked, "load": copies.load},
        **({"warehouse": warehouse.recorder.data} if warehouse is not None else {}),
        "tally": {m: dict(t) for m, t in tally.items()},
        "latency": latency,
        "speed": speed,
        "sweep": {str(k): sweep[k] for k in ks},
    }
    if args.save:
        args.save.write_text(json.dumps(run))
    report(run, as_json=args.json)


def report(run: dict[str, Any], *, as_json: bool) -> None:
    """Print the table (and the sweep) of one run, or of merged parts, and emit its figures."""
    meta, tally, latency, speed = run["meta"], run["tally"], run["latency"], run["speed"]
    n, K, ks = meta["questions"], meta["candidates"], meta["ks"]
    engines = meta.get("engines", ["sqlite"])
    several = engines != ["sqlite"]
    figures: dict[str, Any] = {key: meta[key] for key in ("provider", "model", "questions", "databases", "candidates", "seconds")}
    if several:
        figures["engines"] = engines
    rows_out = []
    for key in meta["modes"]:
        t = collections.Counter(tally.get(key, {}))
        if not t["total"]:
            continue
        engine, mode = split_key(key)
        name = mode if engine == "sqlite" else f"{engine}_{mode}"  # the figures' prefix
        base = mode.split("_")[0]
        total = t["total"]  # the questions asked in this mode (every one, unless parts of other runs were merged)
        figures[f"{name}_execution_accuracy"] = t["correct"] / total
        figures[f"{name}_executes"] = t["executes"] / total
        figures[f"{name}_correct"] = t["correct"]
        figures[f"{name}_errors"] = t["errors"]
        figures[f"{name}_schema_repaired"] = t["schema_repaired"]
        lat = latency.get(key, [])
        figures[f"{name}_p50_seconds"] = percentile(lat, 50) if lat else None
        figures[f"{name}_p95_seconds"] = percentile(lat, 95) if lat else None
        tokens, seconds = speed.get(key, (0, 0.0))
        figures[f"{name}_tokens_per_second"] = tokens / seconds if seconds else None
        label = LABELS[base].format(K=K)
        if "_dqs_off" in mode:
            label += ", double_quoted_strings=False"
        if mode.endswith("_plain"):
            label += ", plain schema prompt"
        row = [
            label,
            f"{t['correct']}/{total} = {t['correct'] / total:.1%}",
            f"{t['executes'] / total:.1%}",
            f"{figures[f'{name}_p50_seconds']:.1f} / {figures[f'{name}_p95_seconds']:.1f}" if lat else "(replayed)",
            f"{figures[f'{name}_tokens_per_second']:.1f}" if figures[f"{name}_tokens_per_second"] else "-",
        ]
        if several:
            reference = collections.Counter(tally.get(mode, {})) if engine != "sqlite" else None
            if reference and reference["total"]:
                diff = 100 * (t["correct"] / total - reference["correct"] / reference["total"])
                figures[f"{name}_minus_sqlite_points"] = diff
                versus = f"{diff:+.1f}"
            else:
                versus = "-"
            row = [engine, *row[:3], str(t["errors"]), *row[3:4], versus, *row[4:]]
        rows_out.append(row)
    sweep = {int(k): v for k, v in run["sweep"].items()}
    for k in ks:
        figures[f"sweep_k{k}_execution_accuracy"] = sweep[k] / n
    if "askK_execution_accuracy" in figures and "free_execution_accuracy" in figures:
        figures["askK_minus_free_points"] = 100 * (figures["askK_execution_accuracy"] - figures["free_execution_accuracy"])
    if figures.get("askK_p50_seconds") and figures.get("ask1_p50_seconds"):
        figures["askK_over_ask1_p50"] = figures["askK_p50_seconds"] / figures["ask1_p50_seconds"]
    for engine, load in meta.get("load", {}).items():
        figures[f"{engine}_start_seconds"] = load["start_seconds"]
        figures[f"{engine}_copy_seconds"] = load["copy_seconds"]
    print(f"{n} Spider dev questions over {meta['databases']} databases, provider {meta['provider']} "
          f"({meta['model']}), {meta['seconds']:.0f} s")
    if several:
        print_table(["engine", "decoding", "EX (execution accuracy)", "executes", "errors", "p50 / p95 s per question",
                     "EX vs SQLite (points)", "tokens/s"], rows_out)
        if meta.get("load"):
            print()
            print_table(["engine", "server start s", "databases copied", "copy s"],
                        [[engine, f"{load['start_seconds']:.1f}" if load["start_seconds"] > 0.05 else "-",
                          str(load["databases"]), f"{load['copy_seconds']:.1f}"] for engine, load in meta["load"].items()])
    else:
        print_table(["decoding", "EX (execution accuracy)", "executes", "p50 / p95 s per question", "tokens/s"], rows_out)
    if ks:
        print()
        print_table(["candidates k (votes over the first k of one draw)", *map(str, ks)],
                    [["EX", *(f"{sweep[k] / n:.1%}" for k in ks)]])
    _warehouse.report(run, figures)
    emit(figures, as_json=as_json)


if __name__ == "__main__":
    main()
