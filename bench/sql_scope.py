"""What a scope-sound schema-bound grammar would cost: Spider gold queries by the shape of their scopes.

A context-free grammar can only keep every column reference in scope (so that SQLite's EXPLAIN never
says "no such column: T2.name") by branching on the FROM clause before the SELECT list is written:
one copy of the expression rules per scope (the tables in FROM and their aliases). This script
measures, on Spider's gold queries whose database is present, how many such a grammar would admit
if its scopes were limited to single tables, to joins along declared foreign keys, or to any joins of
up to N tables, and how many scopes each limit needs per database (the grammar's size grows with it).
Only the scope of names is classified (correlated means a qualified reference to an outer block's
table; an unqualified outer reference is not detected); the other errors a grammar cannot see
(aggregates in WHERE, UNION arity, function arity) would narrow each family further.

    python bench/sql_scope.py [--max-join N] [--json]
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
from collections import Counter
from pathlib import Path

import sqlglot
from _common import ROOT, bench_parser, emit, print_table
from sqlglot import exp

SPIDER = ROOT.parent / "shared" / "corpora" / "spider"


def _foreign_keys(path: Path) -> set[frozenset[str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        edges = set()
        for table in tables:
            for row in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
                if row[2].lower() != table.lower():
                    edges.add(frozenset((table.lower(), row[2].lower())))
        return edges
    finally:
        conn.close()


def _tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0].lower() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        conn.close()


def _connected(tables: list[str], edges: set[frozenset[str]]) -> bool:
    seen, todo = {tables[0]}, [tables[0]]
    while todo:
        current = todo.pop()
        for other in tables:
            if other not in seen and frozenset((current, other)) in edges:
                seen.add(other)
                todo.append(other)
    return seen == set(tables)


def _classify(query: str, edges: set[frozenset[str]], max_join: int) -> str:
    """The narrowest scope family that admits every SELECT block of the query."""
    try:
        tree = sqlglot.parse_one(query, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return "unparsed"
    worst = "single"
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from") or select.args.get("from_")
        sources = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
        if any(not isinstance(s, exp.Table) for s in sources):
            return "derived table"
        names = [s.name.lower() for s in sources]
        own = {s.alias_or_name.lower() for s in sources} | set(names)
        inner = {id(c) for sub in select.find_all(exp.Select) if sub is not select for c in sub.find_all(exp.Column)}
        for column in select.find_all(exp.Column):
            if id(column) not in inner and column.table and column.table.lower() not in own:
                return "correlated"
        if len(names) <= 1:
            continue
        if len(names) > max_join:
            return f"join of more than {max_join}"
        if _connected(names, edges):
            worst = "foreign-key join" if worst == "single" else worst
        else:
            worst = "other join"
    return worst


def _scope_counts(tables: list[str], edges: set[frozenset[str]], max_join: int) -> tuple[int, int]:
    """Scopes (ordered table sequences, as FROM lists them) along foreign keys, and over any tables."""
    fk = any_ = 0
    for k in range(1, max_join + 1):
        for seq in itertools.permutations(tables, k):
            any_ += 1
            fk += k == 1 or _connected(list(seq), edges)
    return fk, any_


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-join", type=int, default=3, help="largest join a scope may hold (default 3)")
    args = parser.parse_args()
    by_db: dict[str, list[str]] = {}
    for line in (SPIDER / "train_gold.sql").read_text(encoding="utf-8").splitlines():
        query, db = line.split("\t")
        by_db.setdefault(db, []).append(query)
    kinds: Counter[str] = Counter()
    fk_scopes, any_scopes = [], []
    for db, queries in sorted(by_db.items()):
        path = SPIDER / "database" / db / f"{db}.sqlite"
        if not path.exists():
            continue
        edges = _foreign_keys(path)
        fk, any_ = _scope_counts(_tables(path), edges, args.max_join)
        fk_scopes.append(fk)
        any_scopes.append(any_)
        kinds.update(_classify(q, edges, args.max_join) for q in queries)
    total = sum(kinds.values())
    single = kinds["single"]
    fk_join = single + kinds["foreign-key join"]
    any_join = fk_join + kinds["other join"]
    figures = {
        "queries": total,
        "single_table_scopes": single / total,
        "foreign_key_scopes": fk_join / total,
        "any_join_scopes": any_join / total,
        "correlated": kinds["correlated"] / total,
        "derived_tables": kinds["derived table"] / total,
        "larger_joins": kinds[f"join of more than {args.max_join}"] / total,
        "max_join": args.max_join,
        "databases": len(fk_scopes),
        "foreign_key_scopes_per_database_median": statistics.median(fk_scopes),
        "foreign_key_scopes_per_database_max": max(fk_scopes),
        "any_join_scopes_per_database_median": statistics.median(any_scopes),
        "any_join_scopes_per_database_max": max(any_scopes),
    }
    print(f"{total} Spider gold queries whose database is present; scopes of up to {args.max_join} tables\n")
    print_table(
        ["a grammar whose scopes are", "admits", "scopes per database (median / max)"],
        [
            ["single tables", f"{single} ({single / total:.1%})", "= tables"],
            ["single tables + joins along foreign keys", f"{fk_join} ({fk_join / total:.1%})",
             f"{figures['foreign_key_scopes_per_database_median']:g} / {figures['foreign_key_scopes_per_database_max']}"],
            ["single tables + any joins", f"{any_join} ({any_join / total:.1%})",
             f"{figures['any_join_scopes_per_database_median']:g} / {figures['any_join_scopes_per_database_max']}"],
        ],
    )
    print("\nnot admitted by any of them: " + ", ".join(
        f"{kind} {kinds[kind]}" for kind in ("correlated", "derived table", f"join of more than {args.max_join}", "unparsed")
    ))
    emit(figures, as_json=args.json)


if __name__ == "__main__":
    main()
