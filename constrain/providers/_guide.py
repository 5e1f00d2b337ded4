"""What a request asks of the model: the grammar's guide (its description and examples) and the
``Constraint`` sent for the arguments of ``generate``, ``openai_tools`` and ``parse_openai``.

It sits below both the providers that need it (``openai_sdk``) and the generate loop, which re-exports
``guide`` and ``constraint_for``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from ..errors import InputError, JSONSchemaError
from ..grammar import Grammar, load_grammar
from .base import Constraint, Message

__all__ = ["constraint_for", "guide", "named_values", "request_constraint", "resolve_grammar", "with_named_values"]

# a listed value this short is matched only in its exact case ("on", "IT" would otherwise match words)
SHORT_VALUE = 3


def guide(grammar: Grammar, *, worked: bool = True) -> str:
    """What the model is told about ``grammar``: its description, then its examples ("" when it has
    neither). ``worked=False`` leaves out the examples that come with a request (``messages_for``
    shows those as turns of the conversation instead)."""
    parts = [f"Format: {grammar.description}"] if grammar.description.strip() else []
    for output, request in grammar.examples:
        if request is None:
            parts.append(f"Example:\n{output}")
        elif worked:
            parts.append(f"Example request: {request}\nAnswer:\n{output}")
    return "\n\n".join(parts)


def named_values(grammar: Grammar, request: str) -> str:
    """The note that tells the model which of the grammar's listed values ``request`` names and whose
    they are: ``(Listed values the request names: "JFK" (origin, destination))``, or "" when it names
    none. A value is named when it stands in the request as a whole word (case-insensitively, but for
    values of at most ``SHORT_VALUE`` characters); a small model otherwise tends to write a named value
    under a field whose name the request also says (``flight = "JFK"`` for "flights to JFK")."""
    owners: dict[str, list[str]] = {}
    for name, values in grammar.listed_values.items():
        for value in values:
            if len(value.strip()) < 2 or value in owners and name in owners[value]:
                continue
            flags = re.IGNORECASE if len(value) > SHORT_VALUE else 0
            if re.search(r"(?<![^\W_])" + re.escape(value) + r"(?![^\W_])", request, flags):
                owners.setdefault(value, []).append(name)
    if not owners:
        return ""
    named = "; ".join(f"{json.dumps(value, ensure_ascii=False)} ({', '.join(names)})" for value, names in owners.items())
    return f"(Listed values the request names: {named})"


def with_named_values(prompt: str | Sequence[Message], grammar: Grammar) -> str | Sequence[Message]:
    """The prompt with ``named_values``' note after its request (the prompt text, or the last message
    when it is the user's)."""
    if isinstance(prompt, str):
        note = named_values(grammar, prompt)
        return f"{prompt}\n{note}" if note and prompt.strip() else prompt
    messages = list(prompt)
    if messages and messages[-1].role == "user":
        note = named_values(grammar, messages[-1].content)
        if note:
            messages[-1] = Message("user", f"{messages[-1].content}\n{note}")
    return messages


def constraint_for(grammar: Grammar, *, in_tool: bool, name: str = "emit") -> Constraint:
    """The constraint ``generate`` sends; ``in_tool`` (a provider that takes the grammar as a custom tool,
    the guide wanted): the grammar's guide is the tool's description."""
    text = guide(grammar) if in_tool else ""
    return Constraint(grammar, name=name, **({"description": text} if text else {}))


def request_constraint(grammar: Grammar | str | None, output_type: Any, syntax: str, tool_name: str, *, in_tool: bool) -> Constraint:
    """What ``generate`` sends for these arguments: a regex constraint (``syntax="regex"``, the regex in
    ``grammar``), else the grammar's (or ``output_type``'s) constraint, see ``constraint_for``."""
    if syntax == "regex":
        if not isinstance(grammar, str):
            raise InputError("syntax='regex' needs the regex as a string in grammar=")
        return Constraint.regex(grammar, name=tool_name)
    return constraint_for(resolve_grammar(grammar, output_type), in_tool=in_tool, name=tool_name)


def resolve_grammar(grammar: Grammar | str | None, output_type: Any) -> Grammar:
    if isinstance(grammar, Grammar):
        return grammar
    if isinstance(grammar, str):
        return load_grammar(grammar)
    if output_type is not None:
        try:
            from .. import json_schema  # type: ignore[attr-defined]
        except ImportError:
            raise InputError("output_type= needs constrain.json_schema, which is not available; pass grammar=") from None
        return _schema_grammar(json_schema, output_type)
    raise InputError("generate needs grammar= (a Grammar, a packaged grammar name or a .lark path) or output_type=")


def _schema_grammar(json_schema: Any, output_type: Any) -> Grammar:
    """``output_type``'s grammar: exact (strict) when the schema compiles so, else widened.

    Measured on MaskBench (docs/benchmarks.md, "JSON Schema -> grammar"): strict compiles 85.3% of the schemas
    with a grammar whose language is exactly the conforming values; widen compiles 98.6%, leaving
    what it drops (listed by ``json_schema.widenings``) to the validator, which every output passes
    before it is returned. Strict first keeps the exact grammar where there is one (no re-asks for
    values the grammar could have ruled out); the fallback keeps usable 133 of the 147 schemas strict
    refuses, instead of raising before any request. Pass ``grammar=json_schema.grammar(T, widen=...)``
    to choose.
    """
    try:
        return json_schema.grammar(output_type)  # type: ignore[no-any-return]
    except JSONSchemaError:
        return json_schema.grammar(output_type, widen=True)  # type: ignore[no-any-return]
