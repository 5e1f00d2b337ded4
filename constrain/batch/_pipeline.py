"""What every item goes through: the constraint sent, the messages built from its prompt, the local check.

A ``Pipeline`` is data: the grammar, how a prompt becomes messages, the validator, and how a typed value
becomes JSON. The online mode hands these to ``agenerate`` (the very loop ``generate`` and ``sql.ask``
run); the Batch API mode sends the same request body and checks each output with ``check``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import TruncatedError
from ..generate import DEFAULT_SYSTEM, constraint_for, guide
from ..grammar import Grammar, load_grammar
from ..providers._guide import with_named_values
from ..providers.base import Completion, Constraint, Message

__all__ = ["Pipeline", "grammar_pipeline", "schema_pipeline", "sql_pipeline", "jsonable"]


@dataclass(frozen=True)
class Pipeline:
    """One constraint and its local validation, shared by every item of a batch."""

    kind: str  # "grammar" | "schema" | "sql"
    source: str  # what the user named: a grammar name or path, a schema file, a database file
    grammar: Grammar = field(repr=False)
    system: str = DEFAULT_SYSTEM
    validator: Callable[[str], Any] | None = field(default=None, repr=False)
    to_json: Callable[[Any], Any] = field(default=lambda value: jsonable(value), repr=False)
    tool_name: str = "emit"
    fingerprint: str = ""  # a hash of what decides the requests (the grammar text and the system prompt)
    guided: bool = True  # tell the model the grammar's guide (SQL's system prompt describes its schema itself)
    schemas: tuple[str, ...] = ()  # a SQL batch's database schemas beyond the connection's current one
    schema_budget: int | None = None  # a SQL batch's prompt budget for the schema (``sql.ask``'s ``schema_budget``)
    # the system message of one prompt, when it depends on the prompt (a SQL schema linked to the question)
    system_for: Callable[[str], str] | None = field(default=None, repr=False)

    @property
    def constraint(self) -> Constraint:
        """The custom tool sent in Batch API mode: its description is the grammar's guide."""
        return constraint_for(self.grammar, in_tool=self.guided, name=self.tool_name)

    def messages(self, prompt: str) -> list[Message]:
        request = with_named_values(prompt, self.grammar) if self.guided else prompt
        system = self.system_for(prompt) if self.system_for is not None else self.system
        return [Message("system", system), Message("user", str(request))]

    def check(self, completion: Completion) -> Any:
        """The typed value of one output, exactly as the generate loop judges it (or its error)."""
        if completion.finish_reason == "length":
            raise TruncatedError("the output stopped at the token limit before the grammar was complete", partial=completion.text)
        if self.validator is not None:
            self.grammar.validate(completion.text)
            return self.validator(completion.text)
        return self.grammar.parse_typed(completion.text)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind, "source": self.source, "fingerprint": self.fingerprint}
        if self.schemas:
            described["schemas"] = list(self.schemas)
        if self.kind == "sql":
            described["schema_budget"] = self.schema_budget
        return described


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:16]


def grammar_pipeline(spec: str) -> Pipeline:
    """``--grammar G``: a packaged grammar name or a ``.lark`` path; the value is ``parse_typed``'s."""
    g = load_grammar(spec)
    return Pipeline("grammar", spec, g, fingerprint=_fingerprint(g.text, DEFAULT_SYSTEM, guide(g)))


def schema_pipeline(spec: str) -> Pipeline:
    """``--schema S.json``: a JSON Schema compiled to a grammar; the value is the checked JSON value."""
    from .. import json_schema

    schema = json_schema.load_schema(spec)
    g = json_schema.grammar(schema)
    return Pipeline("schema", spec, g, fingerprint=_fingerprint(g.text, DEFAULT_SYSTEM, guide(g)))


def sql_pipeline(db: str, schemas: Sequence[str] = (), schema_budget: int | None = None) -> Pipeline:
    """``--sql-db DB``: the database's schema-bound grammar, ``sql.validate`` (ending with the engine's own
    EXPLAIN) and ``sql.ask``'s prompt. ``DB`` is anything ``constrain.sql.connect`` takes; ``schemas`` (CLI
    ``--sql-schema``) are read beside the connection's current one, their tables named ``schema.table``.
    A schema whose description exceeds ``schema_budget`` tokens (default ``sql.ask``'s; CLI
    ``--schema-budget``; 0 the whole schema) is linked to each question as ``sql.ask`` links it."""
    from ..sql import connect, validate
    from ..sql._linking import SchemaPrompt, estimate_tokens
    from ..sql.ask import DEFAULT_SCHEMA_BUDGET, DIALECT_NAMES, SYSTEM_PROMPT
    from ..sql.grammar import grammar as sql_grammar

    budget = DEFAULT_SCHEMA_BUDGET if schema_budget is None else schema_budget
    database = connect(db, samples=0, schemas=schemas)
    schema = database.schema
    dialect = database.dialect

    def system_for(question: str) -> str:
        described = SchemaPrompt(schema, question, budget, estimate_tokens, False, False).text
        return SYSTEM_PROMPT.format(dialect=DIALECT_NAMES.get(dialect, dialect), schema=described)

    system = SYSTEM_PROMPT.format(dialect=DIALECT_NAMES.get(dialect, dialect), schema=schema.describe())
    g = sql_grammar(dialect, schema=schema)

    def check(text: str) -> Any:
        return validate(text, dialect, schema, db=database)

    def to_json(query: Any) -> dict[str, Any]:
        return {"sql": query.text, "dialect": query.dialect, "tables": list(query.tables),
                "columns": list(query.columns), "rewritten": query.rewritten}

    return Pipeline("sql", database.url, g, system=system, validator=check, to_json=to_json, tool_name="sql_query",
                    fingerprint=_fingerprint(g.text, system, *([] if budget == DEFAULT_SCHEMA_BUDGET else [str(budget)])), guided=False, schemas=tuple(schemas),
                    schema_budget=budget, system_for=system_for)


def jsonable(value: Any) -> Any:
    """A typed value as plain JSON data: pydantic models dumped, dataclasses as objects, Lark trees as
    ``{"rule", "children"}`` and tokens as their text; anything else unknown as its ``str``."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    import lark

    if isinstance(value, lark.Token):
        return str(value)
    if isinstance(value, lark.Tree):
        return {"rule": str(value.data), "children": [jsonable(c) for c in value.children]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
