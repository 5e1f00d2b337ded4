"""``constrain.sql.ask``: a question about a database in, a validated query and its typed rows out.

With ``candidates=K`` > 1 the model drafts K queries under the schema-bound grammar (the greedy one and
K-1 samples at ``temperature``, distinct seeds); each goes through ``validate()`` (grammar, sqlglot,
policy, scope, SQLite's compiler) and each valid one runs read-only (row cap, time limit). Candidates
whose results are equal form a group (rows as a multiset; in order when the query has ``ORDER BY``)
and the largest group wins; a tie goes to a non-empty result, then to the candidate the model found
most likely (its log-probability when the provider reports one, else the greedy candidate first).
A draft refused with a ``SchemaError`` that proposes exactly one change (``fix``: the join a foreign key
gives, or the alias that has the column) is repaired and validated again, the change recorded in
``query.rewrites`` (``schema_repairs``). Only when no candidate survives does a repair round run (up to ``max_attempts`` - 1 of them): the most
likely failure goes back to the model with its error (the re-ask, decoded greedily) and K-1 fresh
samples of the first prompt are drawn at ``REDRAW_TEMPERATURE``; the vote then counts every candidate
so far. Fresh samples are there because a small model fed its refused query tends to write it again:
measured on the embedded 0.5B model (docs/benchmarks.md, NL2SQL), re-asks alone repaired none of the questions
where every first-round candidate failed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Generator, Sequence

from ..errors import ConstrainError, GenerationError, InputError, SchemaError, TruncatedError
from ..generate import Attempt, Result, _feedback, _resolve_provider, agenerate, generate
from ..grammar import Grammar
from ..providers.base import Candidate as _Drawn
from ..providers.base import DEFAULT_TEMPERATURE, Constraint, DeltaCallback, Message, Provider, Sampling, Usage
from .grammar import grammar as sql_grammar
from .policy import Policy
from .schema import Schema, Table
from ._dialects import get_dialect
from ._linking import PromptTable, SchemaPrompt, TokenCounter, estimate_tokens
from .databases import DEFAULT_QUERY_SECONDS, Database, connect
from .validate import DEFAULT_MAX_ROWS, DEFAULT_POLICY, Rows, SQLQuery, validate

DatabaseSpec = Schema | Database | str | os.PathLike[str] | Any  # Any: an application's SQLAlchemy Engine

__all__ = ["Answer", "Candidate", "PromptTable", "Vote", "ask", "aask", "DEFAULT_MAX_ROWS", "DEFAULT_SCHEMA_BUDGET",
           "DEFAULT_TEMPERATURE", "REDRAW_TEMPERATURE"]

SYSTEM_PROMPT = """You translate questions into one read-only {dialect} SQL query for this database:

{schema}

Use only the tables and columns above. Answer by calling the tool; its input is the query alone."""

# how the prompt names each dialect (SQLite's stays as measured: "sqlite")
DIALECT_NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL", "duckdb": "DuckDB"}
REDRAW_TEMPERATURE = 1.0  # the fresh samples of a repair round: hotter, to leave the failed drafts' track
MAX_SCHEMA_REPAIRS = 3  # changes proposed by SchemaError.fix applied to one query, at most
SAMPLE_VALUES = 3  # distinct values read per column: linking matches them all, a prompt shows schema.SHOWN_SAMPLES
# the schema part of the prompt, in tokens: the largest Spider database (~3,500 by the estimate) and
# Chinook fit whole; a warehouse of many databases is linked (bench/linking.py)
DEFAULT_SCHEMA_BUDGET = 4000
CONTEXT_RESERVE = 256  # prompt tokens besides the schema: the instructions, the question, the chat template
ANSWER_ROOM = 512  # context kept for the answer, at most (``max_tokens`` when it asks for less)


@dataclass(frozen=True)
class Candidate:
    """One drafted query and its verdict: ``error`` is None when it validated and ran; ``signature``
    identifies its result (equal results, equal signatures); ``votes`` is the size of its group;
    ``round`` is 1 for the first K, then the repair round that drew it; ``reask`` marks the one drawn
    from the conversation that fed a failure back."""

    number: int
    raw: str
    temperature: float
    seed: int | None
    error: ConstrainError | None
    query: SQLQuery | None = field(default=None, repr=False)
    rows: Rows | None = field(default=None, repr=False)
    signature: str | None = None
    logprob: float | None = None
    usage: Usage = field(default_factory=Usage)
    elapsed: float = 0.0
    votes: int = 0
    round: int = 1
    reask: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def attempt(self) -> Attempt:
        return Attempt(self.number, self.raw, self.error, self.usage, self.elapsed,
                       finish_reason=None if self.error is not None else "stop")

    def to_dict(self) -> dict[str, Any]:
        error = None
        if self.error is not None:
            error = {"type": type(self.error).__name__, "message": str(self.error).splitlines()[0]}
        return {
            "number": self.number,
            "sql": self.query.text if self.query is not None else self.raw,
            "raw": self.raw,
            "temperature": self.temperature,
            "seed": self.seed,
            "ok": self.ok,
            "error": error,
            "signature": self.signature,
            "rows": len(self.rows.rows) if self.rows is not None else None,
            "logprob": self.logprob,
            "votes": self.votes,
            "round": self.round,
            "reask": self.reask,
        }


@dataclass(frozen=True)
class Vote:
    """How the answer was chosen: ``groups`` maps each result signature to its candidates' numbers
    (largest group first); ``winner`` is a candidate number; ``rule`` says which rule decided
    (``unanimous``, ``only one ran``, ``majority``, ``tie: non-empty``, ``tie: most likely``); ``rounds``
    is 1, or more when repair rounds ran."""

    groups: tuple[tuple[str, tuple[int, ...]], ...]
    winner: int | None
    rule: str
    rounds: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [{"signature": s, "candidates": list(n)} for s, n in self.groups],
                "winner": self.winner, "rule": self.rule, "rounds": self.rounds}


@dataclass(frozen=True)
class Answer:
    """The validated ``query`` (``SQLQuery``), its ``rows`` when run, and the generation ``result`` (attempts,
    usage); with several candidates, every ``candidates`` entry and the ``vote`` that chose;
    ``prompt_tables``: the tables the prompt described, why and from which round (``tables`` of the
    query are those it names)."""

    question: str
    query: SQLQuery
    rows: Rows | None
    result: Result[SQLQuery]
    candidates: tuple[Candidate, ...] = ()
    vote: Vote | None = None
    prompt_tables: tuple[PromptTable, ...] = ()

    @property
    def sql(self) -> str:
        return self.query.text

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "question": self.question,
            "sql": self.query.text,
            "dialect": self.query.dialect,
            "tables": list(self.query.tables),
            "columns": list(self.query.columns),
            "rewritten": self.query.rewritten,
            "rewrites": list(self.query.rewrites),
            "rows": None,
        }
        if self.rows is not None:
            record["rows"] = {"columns": list(self.rows.columns), "rows": [list(r) for r in self.rows.rows],
                              "truncated": self.rows.truncated}
        record.update({k: v for k, v in self.result.to_dict().items() if k in ("provider", "model", "usage", "attempts", "elapsed")})
        if self.candidates:
            record["candidates"] = [c.to_dict() for c in self.candidates]
            record["vote"] = self.vote.to_dict() if self.vote is not None else None
        record["prompt_tables"] = [p.to_dict() for p in self.prompt_tables]
        return record


@dataclass(frozen=True)
class _Plan:
    schema: Schema
    database: Database | None
    dialect: str
    grammar: Grammar
    messages: list[Message]
    owned: bool = False  # the database was opened for this question (closed after it)
    prompt: SchemaPrompt | None = None

    def with_schema_text(self) -> _Plan:
        """This plan with its system message describing what ``prompt`` holds now."""
        assert self.prompt is not None
        system = SYSTEM_PROMPT.format(dialect=DIALECT_NAMES.get(self.dialect, self.dialect), schema=self.prompt.text)
        return replace(self, messages=[Message("system", system)] + self.messages[1:])


def _fitted_budget(provider: Provider, budget: int | None, max_tokens: int | None) -> int | None:
    """``budget``, lowered for a provider that knows its model's context window (the embedded model) so
    that the schema, the rest of the prompt (``CONTEXT_RESERVE``) and the answer (``max_tokens``, at most
    ``ANSWER_ROOM``) fit in it; no budget (the whole schema, asked for) stays so."""
    window = provider.context_tokens
    if not budget or window is None:
        return budget
    room = min(max_tokens or ANSWER_ROOM, ANSWER_ROOM)
    return max(1, min(budget, window - CONTEXT_RESERVE - room))


def _token_counter(provider: Provider | str | None) -> TokenCounter:
    """The provider's own tokenizer when it has one at hand (the embedded model), else ``estimate_tokens``."""
    from ..local import Local

    if isinstance(provider, Local):
        return lambda text: len(provider.load().tokenize(text))
    return estimate_tokens


def _plan(question: str, db: DatabaseSpec, dialect: str | None, sample_values: int, keys: bool,
          schemas: Sequence[str] = (), schema_budget: int | None = None,
          count: TokenCounter = estimate_tokens) -> _Plan:
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if sample_values < 0:
        raise InputError(f"sample_values must be >= 0, got {sample_values}")
    if schema_budget is not None and schema_budget < 0:
        raise InputError(f"schema_budget must be >= 0 tokens (0 or None: the whole schema), got {schema_budget}")
    database: Database | None = None
    if isinstance(db, Schema):
        schema = db
    else:
        database = connect(db, samples=sample_values, schemas=schemas)
        schema = database.schema
    info = get_dialect(dialect or schema.dialect)
    if database is not None and info.name != database.dialect:
        raise InputError(f"dialect {dialect!r} does not match the database, which is {database.dialect}")
    sampled = database.sampled if database is not None else tuple
    prompt = SchemaPrompt(schema, question, schema_budget, count, keys, sample_values > 0, sampled)
    plan = _Plan(schema, database, info.name, sql_grammar(info.name, schema=schema),
                 [Message("system", ""), Message("user", question)], owned=database is not db, prompt=prompt)
    return plan.with_schema_text()


class _Checker:
    """The loop's validator: validate (and, with ``run``, execute) each output, so that a query that fails
    at run time (a misused aggregate, a type error) is fed back to the model like any other error."""

    def __init__(self, plan: _Plan, policy: Policy | None, run: bool, max_rows: int | None,
                 double_quoted_strings: bool, query_seconds: float | None = DEFAULT_QUERY_SECONDS,
                 schema_repairs: bool = True, tables_in_feedback: bool = True) -> None:
        if run and plan.database is None:
            raise InputError("run=True needs a database (db=PATH, URL or Database), not a Schema")
        self.plan, self.dialect, self.policy, self.run, self.max_rows = plan, plan.dialect, policy, run, max_rows
        self.double_quoted_strings = double_quoted_strings
        self.query_seconds = query_seconds
        self.schema_repairs = schema_repairs
        self.rows: dict[str, Rows] = {}
        # a query refused for naming what only tables the prompt left out have: those tables, by query text
        self.unseen: dict[str, list[Table]] = {}
        self.tables_in_feedback = tables_in_feedback  # one candidate: the feedback itself describes them

    def validate(self, text: str) -> SQLQuery:
        """``repaired``; a ``SchemaError`` that points into tables the prompt left out is remembered (and,
        with ``tables_in_feedback``, carries their description to the model)."""
        try:
            return self.repaired(text)
        except SchemaError as exc:
            raise self.pointed(exc, text) from None

    def pointed(self, error: SchemaError, text: str) -> SchemaError:
        prompt = self.plan.prompt
        fed = {t.key for tables in self.unseen.values() for t in tables} if self.tables_in_feedback else set()
        tables = [t for t in prompt.unseen(error) if t.key not in fed] if prompt is not None else []
        if not tables:
            return error
        if not self.tables_in_feedback:
            self.unseen[text] = tables
            return error
        assert prompt is not None and prompt.budget
        while len(tables) > 1 and prompt.count(prompt.describe(tables)) > prompt.budget:
            tables.pop()
        self.unseen[text] = tables
        names = ", ".join(t.key for t in tables)
        described = SchemaError(f"{error.reason}; the schema above left out {names}, described here", name=error.name,
                                fix=error.fix, text=error.text, offset=error.offset, line=error.line,
                                column=error.column, engine=error.engine)
        described.suggestions = error.suggestions
        described.args = (f"{described}\n{prompt.describe(tables)}",)
        return described

    def prompt_tables(self, attempts: Sequence[Attempt]) -> tuple[PromptTable, ...]:
        """The tables the prompt held: the first prompt's, then those a refused attempt's feedback described."""
        held = self.plan.prompt.tables if self.plan.prompt is not None else ()
        listed = {p.table for p in held}
        for attempt in attempts:  # a table once, from the round whose feedback first described it
            added = [t.key for t in self.unseen.get(attempt.raw, ()) if t.key not in listed]
            held += tuple(PromptTable(key, "repair", attempt.number + 1) for key in added)
            listed.update(added)
        return held

    def repaired(self, text: str) -> SQLQuery:
        """``validate()``; with ``schema_repairs``, a ``SchemaError`` that proposes exactly one change (its
        ``fix``, or the qualifier of the one table of an unknown bare name the prompt showed) is repaired
        and the result validated again, up to ``MAX_SCHEMA_REPAIRS`` changes, each recorded in
        ``rewrites``; when the repairs do not lead to a valid query, the first error stands."""
        check = functools.partial(validate, dialect=self.dialect, schema=self.plan.schema, policy=self.policy,
                                  db=self.plan.database, double_quoted_strings=self.double_quoted_strings)
        try:
            return check(text)
        except SchemaError as exc:
            first = exc
            fixed = self.fix_of(exc, text)
            if not self.schema_repairs or fixed is None:
                raise
        notes: list[str] = []
        for _ in range(MAX_SCHEMA_REPAIRS):
            note, current = fixed
            notes.append("schema repair: " + note)
            try:
                query = check(current)
            except SchemaError as exc:
                fixed = self.fix_of(exc, current)
                if fixed is None:
                    break
                continue
            except ConstrainError:
                break
            return replace(query, original_text=text, rewritten=True, rewrites=tuple(notes) + query.rewrites)
        raise first

    def fix_of(self, error: SchemaError, text: str) -> tuple[str, str] | None:
        """The one change a refusal proposes, as (what changed, the changed query): the validator's own
        ``fix``, else the schema of the one table the prompt showed under an unknown bare name."""
        if error.fix is not None:
            return str(error).splitlines()[0].split(": ", 1)[-1].split("; did you mean")[0], error.fix
        prompt = self.plan.prompt
        return prompt.qualify(text, error, self.dialect) if prompt is not None else None

    def __call__(self, text: str) -> SQLQuery:
        query = self.validate(text)
        if self.run:
            assert self.plan.database is not None
            self.rows[text] = query.run(self.plan.database, max_rows=self.max_rows, timeout=self.query_seconds)
        return query

    def answer(self, question: str, result: Result[SQLQuery]) -> Answer:
        return Answer(question, result.value, self.rows.get(result.raw) if self.run else None, result,
                      prompt_tables=self.prompt_tables(result.attempts))

    def judge(self, number: int, sampling: Sampling, drawn: _Drawn, round: int = 1, reask: bool = False) -> Candidate:
        """One candidate's verdict: the grammar, ``validate()``, then a read-only run; nothing runs that
        ``validate()`` refused."""
        if isinstance(drawn, ConstrainError):
            raw = getattr(drawn, "partial", "") or getattr(drawn, "text", "") or ""
            return Candidate(number, raw, sampling.temperature, sampling.seed, drawn, round=round, reask=reask)
        error: ConstrainError | None = None
        query = rows = None
        if drawn.finish_reason == "length":
            error = TruncatedError("the candidate stopped at the token limit before the grammar was complete",
                                   partial=drawn.text)
        else:
            try:
                self.plan.grammar.validate(drawn.text)
                query = self(drawn.text)
                rows = self.rows.get(drawn.text)
            except ConstrainError as exc:
                error = exc
        return Candidate(
            number, drawn.text, sampling.temperature, sampling.seed, error, query if error is None else None,
            rows if error is None else None,
            _signature(query, rows) if error is None and query is not None and rows is not None else None,
            drawn.logprob, drawn.usage, drawn.elapsed, round=round, reask=reask,
        )


def _signature(query: SQLQuery, rows: Rows) -> str:
    """Equal results, equal signatures: the rows as a multiset (in order when the query has ORDER BY)."""
    ordered = query.expression.args.get("order") is not None
    values = [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows.rows]
    shown = [repr(r) for r in values] if ordered else sorted(repr(r) for r in values)
    payload = repr((len(rows.columns), ordered, rows.truncated, shown)).encode("utf-8", "replace")
    return hashlib.sha256(payload).hexdigest()[:16]


def _likelihood(candidate: Candidate) -> tuple[float, int]:
    """Larger is more likely: the log-probability when known; the earlier (greedy-first) candidate wins ties."""
    return (candidate.logprob if candidate.logprob is not None else 0.0, -candidate.number)


def vote(candidates: Sequence[Candidate]) -> tuple[Vote, tuple[Candidate, ...]]:
    """Group the candidates that ran by result signature; the largest group wins, then a non-empty
    result, then the group holding the most likely candidate. Returns the vote and the candidates with
    their group sizes filled in."""
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.ok and c.signature is not None:
            groups.setdefault(c.signature, []).append(c)
    sized = tuple(
        replace(c, votes=len(groups[c.signature]) if c.ok and c.signature in groups else 0)
        for c in candidates
    )
    rounds = max((c.round for c in candidates), default=1)
    if not groups:
        return Vote((), None, "no candidate ran", rounds), sized

    def key(members: list[Candidate]) -> tuple[int, bool, tuple[float, int]]:
        nonempty = members[0].rows is not None and len(members[0].rows.rows) > 0
        return (len(members), nonempty, max(_likelihood(m) for m in members))

    ranked = sorted(groups.values(), key=key, reverse=True)
    best = ranked[0]
    if len(ranked) == 1:
        rule = "unanimous" if len(best) > 1 else "only one ran"
    elif len(ranked[1]) < len(best):
        rule = "majority"
    elif key(ranked[1])[1] != key(best)[1]:
        rule = "tie: non-empty"
    else:
        rule = "tie: most likely"
    winner = max(best, key=_likelihood)
    listed = tuple((g[0].signature or "", tuple(m.number for m in g)) for g in ranked)
    return Vote(listed, winner.number, rule, rounds), sized


class _Ask:
    """What ``ask`` and ``aask`` share: the plan, the provider, the candidates' samplings, the verdicts."""

    def __init__(self, question: str, db: DatabaseSpec, provider: Provider | str | None,
                 dialect: str | None, policy: Policy | None, run: bool, max_rows: int | None, double_quoted_strings: bool,
                 candidates: int | None, temperature: float, seed: int, sample_values: int, keys: bool,
                 query_seconds: float | None, schema_repairs: bool, schemas: Sequence[str] = (),
                 schema_budget: int | None = DEFAULT_SCHEMA_BUDGET, max_tokens: int | None = None) -> None:
        self.question = question
        self.provider = _resolve_provider(provider)
        self.plan = _plan(question, db, dialect, sample_values, keys, schemas,
                          _fitted_budget(self.provider, schema_budget, max_tokens), _token_counter(self.provider))
        if candidates is None:
            candidates = self.provider.default_candidates if self.plan.database is not None else 1
        if candidates < 1:
            raise InputError(f"candidates must be at least 1, got {candidates}")
        if candidates > 1 and self.plan.database is None:
            raise InputError("candidates > 1 compare the candidates' results, so they need a database (db=PATH, URL or Database), not a Schema")
        if temperature < 0:
            raise InputError(f"temperature must be >= 0, got {temperature}")
        self.k = candidates if self.provider.supports_sampling else 1
        self.run, self.seed = run, seed
        self.fed_back: set[str] = set()
        self.samplings = [Sampling(0.0, None)] + [Sampling(temperature, seed + i) for i in range(1, self.k)]
        # candidates run even without run=True: the vote compares their results
        self.checker = _Checker(self.plan, policy, run or self.k > 1, max_rows, double_quoted_strings,
                                query_seconds, schema_repairs, tables_in_feedback=self.k == 1)
        self.constraint = Constraint(self.plan.grammar, name="sql_query")
        self.started = time.perf_counter()

    def decide(self, earlier: tuple[Candidate, ...], samplings: Sequence[Sampling], drawn: Sequence[_Drawn],
               round: int = 1, reask: bool = False) -> tuple[tuple[Candidate, ...], Vote]:
        """Judge ``drawn`` (numbered after ``earlier``) and vote over every candidate so far."""
        judged = [self.checker.judge(len(earlier) + i + 1, s, d, round, reask) for i, (s, d) in enumerate(zip(samplings, drawn))]
        chosen, sized = vote(earlier + tuple(judged))
        return sized, chosen

    def repair_round(self, candidates: tuple[Candidate, ...], round: int) -> tuple[list[Message], list[Sampling]]:
        """Round ``round``'s two requests: the re-ask conversation (the most likely failure and what was
        wrong) and the samplings of K-1 fresh drafts of the first prompt. When a failure named what only
        tables the prompt left out have, the prompt of both describes those tables from this round on."""
        self.add_unseen(candidates, round)
        # a failure already fed back would be re-asked into the same answer: the next most likely one
        fresh_failures = [c for c in candidates if c.raw not in self.fed_back] or list(candidates)
        worst = max(fresh_failures, key=_likelihood)
        assert worst.error is not None
        self.fed_back.add(worst.raw)
        base = self.seed + (round - 1) * self.k
        return (self.plan.messages + _feedback(worst.raw, worst.error),
                [Sampling(REDRAW_TEMPERATURE, base + i) for i in range(1, self.k)])

    def add_unseen(self, candidates: tuple[Candidate, ...], round: int) -> None:
        prompt = self.plan.prompt
        if prompt is None or prompt.linker is None:
            return
        pointed: dict[str, Table] = {}
        for c in sorted((c for c in candidates if c.round == round - 1), key=_likelihood, reverse=True):
            for table in self.checker.unseen.get(c.raw, ()):
                pointed.setdefault(table.key, table)
        if pointed and prompt.add(list(pointed.values()), round):
            self.plan = self.plan.with_schema_text()

    def close(self) -> None:
        """Close the database when it was opened for this question."""
        if self.plan.owned and self.plan.database is not None:
            self.plan.database.close()

    def budget_left(self, candidates: tuple[Candidate, ...], max_total_tokens: int | None) -> bool:
        return max_total_tokens is None or sum(c.usage.total_tokens for c in candidates) < max_total_tokens

    def answer(self, candidates: tuple[Candidate, ...], chosen: Vote) -> Answer:
        winner = next(c for c in candidates if c.number == chosen.winner)
        assert winner.query is not None
        result: Result[SQLQuery] = Result(
            value=winner.query, raw=winner.raw, attempts=tuple(c.attempt() for c in candidates),
            grammar=self.plan.grammar, provider=getattr(self.provider, "name", type(self.provider).__name__),
            model=self.provider.model, elapsed=time.perf_counter() - self.started,
        )
        return Answer(self.question, winner.query, winner.rows if self.run else None, result, candidates, chosen,
                      self.plan.prompt.tables if self.plan.prompt is not None else ())

    def failed(self, candidates: tuple[Candidate, ...], rounds: int) -> GenerationError:
        attempts = [c.attempt() for c in candidates]
        last = str(attempts[-1].error).splitlines()[0] if attempts and attempts[-1].error else "none"
        return GenerationError(
            f"no valid query: none of {len(candidates)} candidates ({rounds} round{'s' if rounds > 1 else ''}) "
            f"validated and ran; last error: {last}",
            attempts=attempts, prompt_tables=self.plan.prompt.tables if self.plan.prompt is not None else (),
        )


    def rounds(self, max_attempts: int, max_total_tokens: int | None) -> Generator[_Requests, list[list[_Drawn]], Answer]:
        """The candidate rounds, written once for ``ask`` and ``aask``: yields each round's requests
        (messages and samplings), receives what each drew, and returns the answer."""
        (drawn,) = yield [(self.plan.messages, self.samplings)]
        judged, chosen = self.decide((), self.samplings, drawn)
        for round in range(2, max_attempts + 1):
            if chosen.winner is not None or not self.budget_left(judged, max_total_tokens):
                break
            conversation, fresh = self.repair_round(judged, round)
            reasked, drawn = yield [(conversation, _GREEDY), (self.plan.messages, fresh)]
            judged, chosen = self.decide(judged, _GREEDY, reasked, round, reask=True)
            judged, chosen = self.decide(judged, fresh, drawn, round)
        if chosen.winner is None:
            raise self.failed(judged, chosen.rounds)
        return self.answer(judged, chosen)


_GREEDY = [Sampling(0.0, None)]
_Requests = list[tuple[list[Message], list[Sampling]]]


def ask(
    question: str,
    *,
    db: DatabaseSpec,
    provider: Provider | str | None = None,
    run: bool = False,
    dialect: str | None = None,
    policy: Policy | None = DEFAULT_POLICY,
    max_attempts: int = 3,
    max_tokens: int | None = 512,
    max_total_tokens: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    on_delta: DeltaCallback | None = None,
    double_quoted_strings: bool = True,
    candidates: int | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int = 0,
    sample_values: int = SAMPLE_VALUES,
    keys: bool = True,
    query_seconds: float | None = DEFAULT_QUERY_SECONDS,
    schema_repairs: bool = True,
    schemas: Sequence[str] = (),
    schema_budget: int | None = DEFAULT_SCHEMA_BUDGET,
) -> Answer:
    """Answer ``question`` with one query over ``db``: a ``Database`` (``constrain.sql.connect``), anything
    ``connect`` takes (a packaged name like ``"chinook"``, a SQLite or DuckDB path, a database URL such as
    ``postgresql://user:pw@host/db``, a SQLAlchemy ``Engine``), or a ``Schema`` (no database: the query is
    checked but cannot run). The schema-bound grammar of the database's dialect (``dialect`` defaults to
    it) constrains the model; ``constrain.sql.validate`` checks the output (syntax, unknown names, the
    read-only policy, the engine's own EXPLAIN) and re-asks on failure; ``run=True`` executes it
    read-only and returns typed rows (at most ``max_rows``; ``Rows.truncated`` says when it cut) — a
    query the engine refuses at run time is fed back to the model like any other error.
    ``double_quoted_strings`` is passed to ``validate`` (SQLite's ``"x"`` read as a string).

    ``candidates`` (default: the provider's ``default_candidates``, 1 for a ``Schema``) drafts that many
    queries, the greedy one and samples at ``temperature`` (seeds ``seed+1``...), validates and runs each
    (``query_seconds`` each) and answers with the largest group of equal results (see the module doc);
    up to ``max_attempts`` - 1 repair rounds (a re-ask and K-1 fresh samples each) run only when no
    candidate survives. With one candidate, the re-ask loop makes ``max_attempts`` requests. ``on_delta``
    streams only with one candidate. The prompt describes the schema with its keys (``keys``) and
    ``sample_values`` distinct values per column. ``schema_repairs``: an output whose ``SchemaError``
    proposes exactly one change (the join a foreign key gives for a column of a table the query did not
    join, or the qualifier of the table in the query that has the column) is repaired and validated
    again; the change is listed in ``answer.query.rewrites`` and the model's text stays in the audit.
    ``schemas`` names schemas to read besides the connection's current one (``schema.table`` in queries).

    ``schema_budget`` bounds the schema part of the prompt, in tokens (counted by the embedded model's
    own tokenizer, else estimated conservatively): a schema whose description fits is described whole;
    a larger one is linked to the question (BM25 over table and column names, comments and sample
    values; values of the question found in a column; the tables that join the hits) and only the top
    of that ranking is described. ``None`` or 0 describe the whole schema always. The validator still
    knows every table: a query may name one the prompt left out, and a refusal that points into such
    tables (an unknown table or column that only they have) is answered with those tables described.
    ``answer.prompt_tables`` lists what the prompt held and why."""
    job = _Ask(question, db, provider, dialect, policy, run, max_rows, double_quoted_strings, candidates,
               temperature, seed, sample_values, keys, query_seconds, schema_repairs, schemas, schema_budget, max_tokens)
    try:
        return _ask(job, max_attempts, max_tokens, max_total_tokens, on_delta)
    finally:
        job.close()


def _ask(job: _Ask, max_attempts: int, max_tokens: int | None, max_total_tokens: int | None,
         on_delta: DeltaCallback | None) -> Answer:
    question = job.question
    if job.k == 1:
        checker = job.checker
        try:
            result = generate(job.plan.messages, grammar=job.plan.grammar, provider=job.provider, validator=checker,
                              describe=False, max_attempts=max_attempts, max_tokens=max_tokens,
                              max_total_tokens=max_total_tokens, on_delta=on_delta, tool_name="sql_query")
        except GenerationError as exc:
            exc.prompt_tables = checker.prompt_tables(exc.attempts)
            raise
        return checker.answer(question, result)
    flow = job.rounds(max_attempts, max_total_tokens)
    requests = next(flow)
    while True:
        drawn = [job.provider.complete_candidates(messages, job.constraint, samplings, max_tokens=max_tokens)
                 for messages, samplings in requests]
        try:
            requests = flow.send(drawn)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def aask(
    question: str,
    *,
    db: DatabaseSpec,
    provider: Provider | str | None = None,
    run: bool = False,
    dialect: str | None = None,
    policy: Policy | None = DEFAULT_POLICY,
    max_attempts: int = 3,
    max_tokens: int | None = 512,
    max_total_tokens: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    on_delta: DeltaCallback | None = None,
    double_quoted_strings: bool = True,
    candidates: int | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int = 0,
    sample_values: int = SAMPLE_VALUES,
    keys: bool = True,
    query_seconds: float | None = DEFAULT_QUERY_SECONDS,
    schema_repairs: bool = True,
    schemas: Sequence[str] = (),
    schema_budget: int | None = DEFAULT_SCHEMA_BUDGET,
) -> Answer:
    """The async twin of ``ask`` (remote providers send the candidates' requests together)."""
    job = _Ask(question, db, provider, dialect, policy, run, max_rows, double_quoted_strings, candidates,
               temperature, seed, sample_values, keys, query_seconds, schema_repairs, schemas, schema_budget, max_tokens)
    try:
        return await _aask(job, max_attempts, max_tokens, max_total_tokens, on_delta)
    finally:
        job.close()


async def _aask(job: _Ask, max_attempts: int, max_tokens: int | None, max_total_tokens: int | None,
                on_delta: DeltaCallback | None) -> Answer:
    question = job.question
    if job.k == 1:
        checker = job.checker
        try:
            result = await agenerate(job.plan.messages, grammar=job.plan.grammar, provider=job.provider, validator=checker,
                                     describe=False, max_attempts=max_attempts, max_tokens=max_tokens,
                                     max_total_tokens=max_total_tokens, on_delta=on_delta, tool_name="sql_query")
        except GenerationError as exc:
            exc.prompt_tables = checker.prompt_tables(exc.attempts)
            raise
        return checker.answer(question, result)
    flow = job.rounds(max_attempts, max_total_tokens)
    requests = next(flow)
    while True:  # a round's requests are in flight together
        drawn = await asyncio.gather(*(job.provider.acomplete_candidates(messages, job.constraint, samplings, max_tokens=max_tokens)
                                       for messages, samplings in requests))
        try:
            requests = flow.send(list(drawn))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
