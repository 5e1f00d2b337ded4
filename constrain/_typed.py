"""Typed results for packaged grammars: which packaged grammar turns its tree into which value.

Kept as a table so that each DSL's transformer lives in its own module.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import lark

from .grammar import Grammar

# packaged grammar name -> "module:function" returning the typed value from (text, tree)
TYPERS: dict[str, str] = {
    "json": "constrain._typed:json_value",
}


def json_value(text: str, tree: lark.Tree) -> Any:
    return json.loads(text)


def attach(grammar: Grammar) -> Grammar:
    target = TYPERS.get(grammar.name)
    if target is None:
        return grammar
    module_name, _, func = target.partition(":")
    module = importlib.import_module(module_name)
    return grammar._with_typer(getattr(module, func))
