"""The grammar core: ``Grammar`` (one Lark grammar, validated by lark-python and llguidance), the packaged
grammars and their loading, composition (``// include:``) and typed values, and what an author runs on a
grammar: ``constrain.grammar.lint`` (checks) and ``constrain.grammar.explain`` (each engine's verdict).

May import: ``constrain.errors``, ``constrain.engines`` and third-party libraries, nothing else of
constrain (which builds on it). The DSLs' typed values are named as data (``_typed.TYPERS``) and imported
when their grammar is loaded. Bottom up: ``_packaged``, ``_tokens``, ``_values``; ``_compose``, ``_typed``,
``_json_syntax``; ``lint`` (reads a grammar through a protocol); ``_grammar``; ``explain``.
"""

from __future__ import annotations

from ._grammar import DEFAULT_MAX_BYTES, Grammar, JSONGrammar, available_grammars, load_grammar
from ._packaged import Example, GrammarInfo, ParserChoice, packaged_text
from ._typed import Typer
from ._values import json_value, pydantic_value

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Example",
    "Grammar",
    "GrammarInfo",
    "JSONGrammar",
    "ParserChoice",
    "Typer",
    "available_grammars",
    "load_grammar",
]

# the names dsl/ and json_schema/ import from here
_packaged_text = packaged_text
_json_value = json_value
_pydantic_validate = pydantic_value
