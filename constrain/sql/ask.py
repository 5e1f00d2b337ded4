"""``constrain.sql.ask``: a question about a database in, a validated query and its typed rows out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..generate import Result, agenerate, generate
from ..grammar import Grammar
from ..providers.base import DeltaCallback, Message, Provider
from .grammar import grammar as sql_grammar
from .policy import Policy
from .schema import Schema
from .validate import DEFAULT_MAX_ROWS, DEFAULT_POLICY, Rows, SQLQuery, validate

__all__ = ["Answer", "ask", "aask", "DEFAULT_MAX_ROWS"]

SYSTEM_PROMPT = """You translate questions into one read-only {dialect} SQL query for this database:

{schema}

Use only the tables and columns above. Answer by calling the tool; its input is the query alone."""


@dataclass(frozen=True)
class Answer:
    """The validated ``query`` (``SQLQuery``), its ``rows`` when run, and the generation ``result`` (attempts, usage)."""

    question: str
    query: SQLQuery
    rows: Rows | None
    result: Result[SQLQuery]

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
            "rows": None,
        }
        if self.rows is not None:
            record["rows"] = {"columns": list(self.rows.columns), "rows": [list(r) for r in self.rows.rows],
                              "truncated": self.rows.truncated}
        record.update({k: v for k, v in self.result.to_dict().items() if k in ("provider", "model", "usage", "attempts", "elapsed")})
        return record


@dataclass(frozen=True)
class _Plan:
    schema: Schema
    path: Path | None
    grammar: Grammar
    messages: list[Message]


def _plan(question: str, db: str | os.PathLike[str] | Schema, dialect: str) -> _Plan:
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if isinstance(db, Schema):
        schema, path = db, None
    else:
        from .._databases import resolve_database

        path = resolve_database(db)
        schema = Schema.from_sqlite(path)
    system = SYSTEM_PROMPT.format(dialect=dialect, schema=schema.describe())
    return _Plan(schema, path, sql_grammar(dialect, schema=schema), [Message("system", system), Message("user", question)])


class _Checker:
    """The loop's validator: validate (and, with ``run``, execute) each output, so that a query that fails
    at run time (a misused aggregate, a type error) is fed back to the model like any other error."""

    def __init__(self, plan: _Plan, dialect: str, policy: Policy | None, run: bool, max_rows: int | None,
                 double_quoted_strings: bool) -> None:
        if run and plan.path is None:
            raise InputError("run=True needs a database file (db=PATH), not a Schema")
        self.plan, self.dialect, self.policy, self.run, self.max_rows = plan, dialect, policy, run, max_rows
        self.double_quoted_strings = double_quoted_strings
        self.rows: dict[str, Rows] = {}

    def __call__(self, text: str) -> SQLQuery:
        query = validate(text, self.dialect, schema=self.plan.schema, policy=self.policy,
                         double_quoted_strings=self.double_quoted_strings)
        if self.run:
            assert self.plan.path is not None
            self.rows[text] = query.run(self.plan.path, max_rows=self.max_rows)
        return query

    def answer(self, question: str, result: Result[SQLQuery]) -> Answer:
        return Answer(question, result.value, self.rows.get(result.raw) if self.run else None, result)


def ask(
    question: str,
    *,
    db: str | os.PathLike[str] | Schema,
    provider: Provider | str | None = None,
    run: bool = False,
    dialect: str = "sqlite",
    policy: Policy | None = DEFAULT_POLICY,
    max_attempts: int = 3,
    max_tokens: int | None = 512,
    max_total_tokens: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    on_delta: DeltaCallback | None = None,
    double_quoted_strings: bool = True,
) -> Answer:
    """Answer ``question`` with one query over ``db`` (a SQLite path, a packaged name like ``"chinook"``, or
    a ``Schema``): the schema-bound grammar constrains the model, ``constrain.sql.validate`` checks the
    output (syntax, unknown names, the read-only policy) and re-asks on failure; ``run=True`` executes it
    read-only and returns typed rows (at most ``max_rows``; ``Rows.truncated`` says when it cut) — a
    query SQLite refuses at run time is fed back to the model like any other error.
    ``double_quoted_strings`` is passed to ``validate`` (SQLite's ``"x"`` read as a string)."""
    plan = _plan(question, db, dialect)
    checker = _Checker(plan, dialect, policy, run, max_rows, double_quoted_strings)
    result = generate(
        plan.messages,
        grammar=plan.grammar,
        provider=provider,
        validator=checker,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        max_total_tokens=max_total_tokens,
        on_delta=on_delta,
        tool_name="sql_query",
    )
    return checker.answer(question, result)


async def aask(
    question: str,
    *,
    db: str | os.PathLike[str] | Schema,
    provider: Provider | str | None = None,
    run: bool = False,
    dialect: str = "sqlite",
    policy: Policy | None = DEFAULT_POLICY,
    max_attempts: int = 3,
    max_tokens: int | None = 512,
    max_total_tokens: int | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    on_delta: DeltaCallback | None = None,
    double_quoted_strings: bool = True,
) -> Answer:
    """The async twin of ``ask``."""
    plan = _plan(question, db, dialect)
    checker = _Checker(plan, dialect, policy, run, max_rows, double_quoted_strings)
    result = await agenerate(
        plan.messages,
        grammar=plan.grammar,
        provider=provider,
        validator=checker,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        max_total_tokens=max_total_tokens,
        on_delta=on_delta,
        tool_name="sql_query",
    )
    return checker.answer(question, result)
