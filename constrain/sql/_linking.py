"""Schema linking: which tables of a large schema a question needs, described within a token budget.

Tables are ranked for a question by three signals:

- lexical retrieval (BM25, the ``bm25s`` library) over one document per table: its schema and table
  names and its column names split into words (snake_case, CamelCase, digits), catalog comments, and
  the sample values the ``Schema`` itself carries, with a small plural fold; a table whose every name
  word the question says gains ``NAME_BONUS``, and every table a share of its schema's best score;
- value matches: a literal of the question (quoted text, a run of capitalised words, a number) equal to
  a stored sample value names its column's table: the values the ``Schema`` carries, and, from a
  database, those of the ``VALUE_SHORTLIST`` best lexical hits (read lazily through ``Database.sampled``
  and cached), so which tables are read depends only on the question and the catalog;
- the foreign-key graph: the tables a hit references and the bridge tables that join two hits follow it.

``select`` then takes tables in rank order while their description fits the budget; a schema whose whole
description fits is described whole, exactly as ``Schema.describe`` writes it.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..errors import SchemaError
from .schema import Schema, Table

__all__ = ["PromptTable", "Linker", "estimate_tokens", "linker_for"]

BYTES_PER_TOKEN = 2  # estimate_tokens: measured 2.27-3.83 bytes per token on Spider schema descriptions (Qwen2.5)
MAX_BYTES_PER_TOKEN = 8  # twice the most bytes a token measured there: a longer text is not counted to know it does not fit
REPAIR_TABLES = 3  # unseen tables one refused query adds to the prompt, at most
NAME_BONUS = 0.5  # a table whose every name word the question says (``Track`` for "tracks") gains this
SCHEMA_WEIGHT = 0.3  # a table's score gains this share of the best score in its schema (one question, one database)
JOIN_HITS = 5  # the top hits whose referenced and bridge tables follow them
SAMPLED_AT_ONCE = 8  # ranked tables whose sample values are asked for together
MISSES = 8  # once this many ranked tables did not fit the budget, the rest are not tried
VALUE_SHORTLIST = 32  # the best lexical hits whose sample values a database reads for value matches

TokenCounter = Callable[[str], int]
Sampler = Callable[[Sequence[Table]], Sequence[Table]]


def _fits(text: str, budget: int, count: TokenCounter) -> bool:
    """Whether ``text`` is at most ``budget`` tokens; a text of more than ``MAX_BYTES_PER_TOKEN`` bytes a
    token of budget cannot be, and is not counted (a tokenizer reads a warehouse's whole description,
    hundreds of kilobytes, in seconds)."""
    return len(text.encode("utf-8")) <= budget * MAX_BYTES_PER_TOKEN and count(text) <= budget


def estimate_tokens(text: str) -> int:
    """A conservative token count without a tokenizer: one token per ``BYTES_PER_TOKEN`` UTF-8 bytes.
    Schema descriptions spend more bytes per token than that on the tokenizers measured (digits and
    short identifier pieces are the dense part), so the estimate over-counts rather than under-counts."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


@dataclass(frozen=True)
class PromptTable:
    """One table the prompt described: its ``table`` key, ``why`` it was chosen (``whole schema``,
    ``bm25: singer, country``, ``value 'France' in singer.country``, ``joins concert``, ``repair``) and
    the ``round`` from which the prompt held it (1 for the first prompt)."""

    table: str
    reason: str
    round: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "reason": self.reason, "round": self.round}


_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+")
_STOPWORDS = frozenset()


def _stopwords() -> frozenset[str]:
    global _STOPWORDS
    if not _STOPWORDS:
        from bm25s.stopwords import STOPWORDS_EN_PLUS  # NLTK's 179 words ("how", "did", "after"); _EN has 33

        _STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | {"many", "much", "list", "show", "find", "give", "return", "number"}
    return _STOPWORDS


def fold(word: str) -> str:
    """A word's plural folded away: ``countries`` -> ``country``, ``matches`` -> ``match``, ``singers`` -> ``singer``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """``text`` as lower-case folded words, identifiers split at ``_``, case changes and digits."""
    return [fold(w.lower()) for w in _WORD.findall(text)]


def _literal(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).split()).casefold()
    return text or None


MIN_BARE_VALUE = 3  # an unquoted capitalised word this short ("TV", "US") matches too many stored codes
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|‘([^’]+)’|“([^”]+)”")
_CAPITALISED = re.compile(r"\b[A-Z][\w'.-]*(?:\s+(?:of|de|la|the|and|&)?\s*[A-Z][\w'.-]*)*")


def literals(question: str) -> list[str]:
    """The question's candidate values: quoted text, runs of capitalised words (and each word of a run of
    at least ``MIN_BARE_VALUE`` characters), leaving out a run's leading stopwords (a sentence's "What",
    "Return"); normalised as stored values are compared (case-folded, spaces collapsed). Bare numbers are
    not values here: a question's "more than 2", "older than 30", "after 1950" are thresholds, and matched
    against every table's sample values they put unrelated tables first (Spider dev over the 838-table
    warehouse: recall 96.3% -> 98.2%, first table of the question's database 346 -> 356 of 493)."""
    found: dict[str, None] = {}
    for match in _QUOTED.finditer(question):
        found.setdefault(next(g for g in match.groups() if g), None)
    stop = _stopwords()
    for match in _CAPITALISED.finditer(question):
        parts = match.group(0).rstrip(".'").split()
        while parts and parts[0].lower() in stop:  # "What", "Return", "List": a sentence's first word
            parts.pop(0)
        if len(parts) > 1 or (parts and len(parts[0]) >= MIN_BARE_VALUE):
            found.setdefault(" ".join(parts), None)
        for part in parts:
            word = part.rstrip(".'")
            if word.lower() not in stop and len(word) >= MIN_BARE_VALUE:
                found.setdefault(word, None)
    out = [_literal(v) for v in found]
    return [v for v in out if v]


def _value_index(tables: Iterable[tuple[int, Table]]) -> dict[str, list[tuple[int, str]]]:
    """Each stored sample value (normalised as ``literals`` are) -> the (table position, column) holding it."""
    index: dict[str, list[tuple[int, str]]] = {}
    for i, table in tables:
        for column in table.columns:
            for sample in column.samples:
                key = _literal(sample)
                if key is not None and (i, column.name) not in index.get(key, ()):
                    index.setdefault(key, []).append((i, column.name))
    return index


class Linker:
    """The ranking index of one ``Schema``: BM25 over per-table documents, the stored values, the
    foreign-key graph. Build once per schema (``linker_for``), then ``rank`` any number of questions."""

    def __init__(self, schema: Schema) -> None:
        import bm25s

        self.schema = schema
        self.tables = schema.tables
        self.position = {t.key: i for i, t in enumerate(self.tables)}
        documents = [self._document(t) for t in self.tables]
        self.terms = [set(d) for d in documents]
        self.names = [set(words(t.name)) - _stopwords() for t in self.tables]
        self.retriever = bm25s.BM25()
        self.retriever.index(documents, show_progress=False)
        self.values = _value_index(enumerate(self.tables))
        self.references: list[set[int]] = [set() for _ in self.tables]
        self.referenced_by: list[set[int]] = [set() for _ in self.tables]
        for i, table in enumerate(self.tables):
            for fk in table.foreign_keys:
                target = schema.find(fk.ref_table, fk.ref_schema or table.schema)
                j = self.position.get(target.key) if target is not None else None
                if j is not None and j != i:
                    self.references[i].add(j)
                    self.referenced_by[j].add(i)

    @staticmethod
    def _document(table: Table) -> list[str]:
        tokens = words(table.schema) + words(table.name) * 2 + words(table.comment)
        for column in table.columns:
            tokens += words(column.name) + words(column.comment)
            tokens += [w for sample in column.samples if isinstance(sample, str) for w in words(sample)]
        stop = _stopwords()
        return [w for w in tokens if w not in stop] or ["_"]

    def rank(self, question: str, sampled: Sampler | None = None) -> list[tuple[Table, str]]:
        """The tables that bear on ``question``, most relevant first, each with why; tables with no
        signal at all are left out. ``sampled`` (a database's lazy reader of sample values): the values
        of the ``VALUE_SHORTLIST`` best lexical hits are read and matched too, besides those the schema
        carries; which tables are read depends only on the question and the catalog."""
        stop = _stopwords()
        query = [w for w in words(question) if w not in stop and w in self.retriever.vocab_dict]
        n = len(self.tables)
        lexical = [0.0] * n
        if query:
            scores = self.retriever.get_scores(query)
            top = float(scores.max())
            if top > 0:
                lexical = [float(s) / top for s in scores]
        score = list(lexical)
        asked = set(query)
        for i, name in enumerate(self.names):
            if lexical[i] > 0 and name and name <= asked:
                score[i] += NAME_BONUS
        why: dict[int, str] = {}
        for i in range(n):
            if lexical[i] > 0:
                why[i] = "bm25: " + ", ".join(dict.fromkeys(w for w in query if w in self.terms[i]))
        values = self.values
        if sampled is not None:
            shortlist = sorted((i for i in range(n) if lexical[i] > 0), key=lambda i: (-lexical[i], i))[:VALUE_SHORTLIST]
            read = _value_index(zip(shortlist, sampled([self.tables[i] for i in shortlist])))
            values = {key: list(dict.fromkeys(self.values.get(key, []) + read.get(key, []))) for key in {*self.values, *read}}
        for value in literals(question):
            seen: set[int] = set()
            for i, column in values.get(value, ()):
                if i in seen:
                    continue
                seen.add(i)
                score[i] += 1.0
                why[i] = f"value {value!r} in {self.tables[i].key}.{column}"
        best_in_schema: dict[str, float] = {}
        for i, table in enumerate(self.tables):
            best_in_schema[table.schema] = max(best_in_schema.get(table.schema, 0.0), score[i])
        final = [s + SCHEMA_WEIGHT * best_in_schema[t.schema] if s > 0 else 0.0 for s, t in zip(score, self.tables)]
        hits = sorted((i for i in range(n) if final[i] > 0), key=lambda i: (-final[i], i))
        ordered: dict[int, str] = {}
        for rank, i in enumerate(hits):
            if i not in ordered:
                ordered[i] = why[i]
            if rank >= JOIN_HITS:
                continue
            for j in self._joins(i, ordered):
                ordered.setdefault(j, f"joins {self.tables[i].key}")
        return [(self.tables[i], reason) for i, reason in ordered.items()]

    def _joins(self, i: int, placed: dict[int, str]) -> list[int]:
        """What follows hit ``i``: the tables it references, and bridges between it and a placed table."""
        out = sorted(self.references[i])
        for bridge in sorted(self.referenced_by[i]):
            if any(p != i and (p in self.references[bridge] or p in self.referenced_by[bridge]) for p in placed):
                out.append(bridge)
        return out

    def unseen(self, error: SchemaError, shown: Iterable[str]) -> list[Table]:
        """The tables outside ``shown`` (table keys) that a ``SchemaError`` points into: an unknown
        table whose name (or a near name) exists unseen, or an unknown column that only unseen tables have."""
        held = set(shown)
        same = self.schema.sql_dialect.same_identifier
        name = error.name
        found: list[Table] = []
        if error.reason.startswith("unknown table"):
            bare = name.rsplit(".", 1)[-1]
            found = [t for t in self.tables if same(t.name, bare) or t.key in error.suggestions]
        elif error.reason.startswith("unknown column"):
            column = name.rsplit(".", 1)[-1]
            owners = [t for t in self.tables if any(same(c, column) for c in t.column_names())]
            if not any(t.key in held for t in owners):
                found = owners
        return [t for t in found if t.key not in held][:REPAIR_TABLES]


_LINKERS: dict[int, tuple[weakref.ref[Schema], Linker]] = {}
_LOCK = threading.Lock()


def linker_for(schema: Schema) -> Linker:
    """The ``Linker`` of this very ``Schema`` object, built once while it lives."""
    with _LOCK:
        entry = _LINKERS.get(id(schema))
        if entry is not None and entry[0]() is schema:
            return entry[1]
    linker = Linker(schema)
    with _LOCK:
        for key in [k for k, (ref, _) in _LINKERS.items() if ref() is None]:
            del _LINKERS[key]
        _LINKERS[id(schema)] = (weakref.ref(schema), linker)
    return linker


def describe(schema: Schema, tables: Sequence[Table], keys: bool, samples: bool, leading: Sequence[str] = ()) -> str:
    """``tables`` described as ``schema.describe`` writes them, in the schema's order; with ``leading``
    (schema names), the tables of those schemas first, schema by schema in that order."""
    order = {t.key: i for i, t in enumerate(schema.tables)}
    place = {name: i for i, name in enumerate(leading)}
    chosen = sorted(tables, key=lambda t: (place.get(t.schema, len(place)), order.get(t.key, len(order))))
    return Schema(tuple(chosen), schema.dialect, schema.default_schema).describe(keys=keys, samples=samples)


def fit(schema: Schema, ranked: Sequence[tuple[Table, str]], budget: int, count: TokenCounter, keys: bool,
        samples: bool, round: int = 1, sampled: Sampler = tuple) -> tuple[str, tuple[PromptTable, ...]]:
    """Take ``ranked`` tables in order while their description fits ``budget`` tokens (a table that does
    not fit is passed over for the smaller ones after it, up to ``MISSES`` of them); the text is counted
    whole at the end, so the budget holds whatever the counter does at the seams between tables.

    The text groups the tables by schema, the schema of the best hit first (then by each schema's best
    rank): questions about one source then start their prompts alike, so a model server's prompt cache
    reuses what it evaluated for the last one."""
    chosen: list[Table] = []
    reasons: list[PromptTable] = []
    used = misses = 0
    for start in range(0, len(ranked), SAMPLED_AT_ONCE):
        if misses >= MISSES:
            break
        batch = ranked[start:start + SAMPLED_AT_ONCE]
        tables = tuple(sampled([t for t, _ in batch])) if samples else tuple(t for t, _ in batch)
        for table, (_, reason) in zip(tables, batch):
            cost = count(describe(schema, [table], keys, samples)) + 1
            if used + cost > budget:
                misses += 1
                if misses >= MISSES:
                    break
                continue
            chosen.append(table)
            reasons.append(PromptTable(table.key, reason, round))
            used += cost
    leading = list(dict.fromkeys(t.schema for t in chosen))
    text = describe(schema, chosen, keys, samples, leading)
    while chosen and count(text) > budget:
        chosen.pop()
        reasons.pop()
        text = describe(schema, chosen, keys, samples, leading)
    return text, tuple(reasons)


class SchemaPrompt:
    """What one question's system prompt describes of ``schema``, and why: the whole schema when its
    description fits ``budget`` tokens (or there is no budget), else the top of the question's ranking.
    ``add`` grows it by tables a refused query pointed into, keeping the budget."""

    def __init__(self, schema: Schema, question: str, budget: int | None, count: TokenCounter, keys: bool,
                 samples: bool, sampled: Sampler = tuple) -> None:
        self.schema, self.budget, self.count = schema, budget, count
        self.keys, self.samples, self.sampled = keys, samples, sampled
        self.linker: Linker | None = None
        # without sample values the description is shorter: when even that exceeds the budget, no
        # table's values need reading to know the schema is linked
        if not budget or _fits(schema.describe(keys=keys, samples=False), budget, count):
            whole = Schema(tuple(sampled(schema.tables)) if samples else schema.tables, schema.dialect, schema.default_schema)
            text = whole.describe(keys=keys, samples=samples)
            if not budget or count(text) <= budget:
                self.text = text
                self.tables = tuple(PromptTable(t.key, "whole schema") for t in schema.tables)
                return
        self.linker = linker_for(schema)
        ranked = self.linker.rank(question, sampled if samples else None)
        self.text, self.tables = fit(schema, ranked, budget, count, keys, samples, 1, sampled)

    @property
    def keys_held(self) -> set[str]:
        return {p.table for p in self.tables}

    def unseen(self, error: SchemaError) -> list[Table]:
        """The tables the prompt left out that ``error`` points into (none when the schema is whole)."""
        return [] if self.linker is None else self.linker.unseen(error, self.keys_held)

    def add(self, tables: Sequence[Table], round: int) -> list[Table]:
        """Describe ``tables`` from round ``round`` on; to keep the budget, the prompt's lowest-ranked
        tables make room. Returns the tables added."""
        assert self.budget
        earlier = {p.table: p for p in self.tables}
        ranked = [(t, "repair") for t in tables if t.key not in earlier]
        ranked += [(t, p.reason) for p in self.tables if (t := self.schema.table(p.table)) is not None]
        text, held = fit(self.schema, ranked, self.budget, self.count, self.keys, self.samples, round, self.sampled)
        self.text, self.tables = text, tuple(earlier.get(p.table, p) for p in held)
        return [t for t in tables if t.key in self.keys_held and t.key not in earlier]

    def qualify(self, text: str, error: SchemaError, dialect: str) -> tuple[str, str] | None:
        """An unknown table written bare (``FROM city``) when the prompt showed exactly one table of that
        name, in another schema (``world_1.city``): the query with that schema written before it (and a
        note saying so), else None. A model that read ``world_1.city`` and wrote ``city`` meant it."""
        if not error.reason.startswith("unknown table") or not error.name:
            return None
        same = self.schema.sql_dialect.same_identifier
        shown = [t for p in self.tables if (t := self.schema.table(p.table)) is not None
                 and t.schema and same(t.name, error.name)]
        if len(shown) != 1:
            return None
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import SqlglotError

        from ._dialects import get_dialect

        name = get_dialect(dialect).sqlglot_name
        try:
            root = sqlglot.parse_one(text, read=name)
        except SqlglotError:
            return None
        ctes = {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}
        bare = [node for node in root.find_all(exp.Table)
                if not node.db and same(node.name, error.name) and node.name.lower() not in ctes]
        if not bare:
            return None
        for node in bare:
            node.set("db", exp.to_identifier(shown[0].schema))
        try:
            fixed = root.sql(dialect=name, normalize_functions=False)
        except SqlglotError:
            return None
        return f"unknown table {error.name!r}: the prompt's table of that name is {shown[0].key}", fixed

    def describe(self, tables: Sequence[Table]) -> str:
        shown = tuple(self.sampled(tables)) if self.samples else tuple(tables)
        return describe(self.schema, shown, self.keys, self.samples)
