"""What a request asks of the model: the grammar's guide (its description and examples) and the
``Constraint`` sent for the arguments of ``generate``, ``openai_tools`` and ``parse_openai``.

It sits below both the providers that need it (``openai_sdk``) and the generate loop, which re-exports
``guide`` and ``constraint_for``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError, JSONSchemaError
from ..grammar import Grammar, load_grammar
from .base import Constraint

__all__ = ["constraint_for", "guide", "request_constraint", "resolve_grammar"]


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
