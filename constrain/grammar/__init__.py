"""The grammar core: a Lark grammar as an object (``Grammar``), the packaged grammars and how they are
loaded, composed (``// include:``) and given typed values, and the checks and explanations an author
runs on a grammar (``constrain.grammar.lint``, ``constrain.grammar.explain``).

It may import only ``constrain.errors`` and ``constrain.engines`` (and third-party libraries); the rest
of constrain (generate, providers, sql, json_schema, dsl, cli, ...) builds on it. The one way up is by
data: ``_typed.TYPERS`` names each DSL's typed value as ``"module:function"``, imported when its
grammar is loaded. Inside, from the bottom: ``_packaged`` (grammar files and headers), ``_tokens``
(the grammar-text tokenizer), ``_compose``, ``_values``, ``_typed``, ``_json_syntax``; then ``lint``
(which reads a grammar through a protocol, never ``Grammar`` itself); then ``_grammar``; ``explain``
on top.
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
