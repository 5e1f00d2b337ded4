"""Coverage on real SQL: sql/sqlite accepts at least 99% of Spider's gold queries, in both engines.

Every rejected query is listed with the engines' reasons, and each must fall in a known, explained
category: a rejection nobody can explain is a grammar bug, whatever the rate.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conftest import corpus
from constrain import load_grammar
from constrain.errors import ValidationError

MIN_RATE = 0.99

# Rejections we accept, each with the reason the query is outside the grammar on purpose.
KNOWN_REJECTIONS: list[tuple[str, str]] = [
    (r"\bLIMIT\s+\d+\s+(?:UNION|INTERSECT|EXCEPT)\b",
     "LIMIT before a set operation: SQLite itself refuses it"),
]


def _gold() -> Counter[str]:
    path = corpus("spider", "train_gold.sql")
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(line.split("\t")[0] for line in lines if line.strip())


def _explain(query: str) -> str | None:
    return next((why for pattern, why in KNOWN_REJECTIONS if re.search(pattern, query)), None)


def test_spider_gold_queries_accepted_by_both_engines() -> None:
    gold = _gold()
    total = sum(gold.values())
    assert total == 8659
    g = load_grammar("sql/sqlite")
    rejected: dict[str, list[str]] = {}
    for query in gold:  # each distinct query once; rates are weighted by how often it occurs
        reasons = []
        llg = g.llg_error(query)
        if llg is not None:
            reasons.append(f"llguidance {llg.line}:{llg.column} {llg.reason}")
        try:
            g.parse(query)
        except ValidationError as exc:
            reasons.append(f"lark {exc.line}:{exc.column} {exc.reason}")
        if reasons:
            rejected[query] = reasons
    report = "\n".join(f"  x{gold[q]} {q}\n      {' | '.join(r)}\n      why: {_explain(q)}" for q, r in rejected.items())
    print(f"sql/sqlite rejects {sum(gold[q] for q in rejected)} of {total} Spider gold queries:\n{report}")

    # the engines agree on every query: a rejection by one engine only would be a grammar bug
    one_sided = [q for q, r in rejected.items() if len(r) != 2]
    assert one_sided == [], one_sided
    unexplained = [q for q in rejected if _explain(q) is None]
    assert unexplained == [], "unexplained rejections:\n" + "\n".join(unexplained)
    rate = 1 - sum(gold[q] for q in rejected) / total
    assert rate >= MIN_RATE, f"accepted {rate:.4f} < {MIN_RATE}:\n{report}"


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
def test_other_dialects_accept_the_spider_queries_written_in_plain_sql(dialect: str) -> None:
    """Spider's queries avoid SQLite-only syntax except double-quoted strings (a quoted name elsewhere)."""
    gold = _gold()
    sample = [q for i, q in enumerate(sorted(gold)) if i % 10 == 0]
    g = load_grammar(f"sql/{dialect}")
    # CAST is a reserved word in PostgreSQL and DuckDB: a table of that name must be quoted there
    rejected = [q for q in sample if not g.matches(q) and _explain(q) is None and not re.search(r"\b(?:FROM|JOIN)\s+CAST\b", q)]
    assert len(rejected) <= 0.01 * len(sample), rejected
