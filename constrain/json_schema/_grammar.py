"""``SchemaGrammar``: the generation grammar of a schema, validating any spelling of a conforming value.

The grammar text (what a provider constrains the model with) fixes some spellings: declared property
order, compact or bounded whitespace, no exponent under numeric bounds (see the package docs). Text
that did not come from that grammar is still judged by its value: ``validate`` / ``parse_typed`` /
``parse_json`` check the JSON syntax with both engines on the packaged JSON grammar (any key order,
any whitespace JSON allows; Lark through its lexer-friendly copy, see ``constrain.grammar._json_syntax``) and then the value with the schema's validator (jsonschema with every
format checked, or pydantic). ``matches`` / ``parse`` / ``llg_error`` still answer for the generation
grammar itself.
"""

from __future__ import annotations

import functools
from typing import Any

import lark

from ..errors import ValidationError
from ..grammar import Grammar, _json_value, _pydantic_validate, load_grammar

__all__ = ["SchemaGrammar"]


@functools.lru_cache(maxsize=1)
def json_syntax() -> Grammar:
    """The packaged JSON grammar (RFC 8259), both engines built once."""
    return load_grammar("json")


class SchemaGrammar(Grammar):
    """A schema's generation grammar whose validation accepts every JSON spelling of a conforming value."""

    def _syntax(self, text: str) -> lark.Tree:
        self._encode(text)  # this grammar's size limit
        return json_syntax().validate(text)

    def _typed(self, text: str, tree: lark.Tree) -> Any:
        """The typer's value; a refusal is raised again from the positional parse, located exactly."""
        assert self._typer is not None
        try:
            return self._typer(text, tree)
        except ValidationError:
            if not tree.meta.empty:
                raise
        return self._typer(text, json_syntax().parse(text))  # raises, now with line and column

    def validate(self, text: str) -> lark.Tree:
        """Both engines accept ``text`` as JSON and the schema's validator accepts its value."""
        tree = self._syntax(text)
        if self._typer is not None:
            self._typed(text, tree)
        return tree

    def parse_typed(self, text: str) -> Any:
        tree = self._syntax(text)
        return self._typed(text, tree) if self._typer else tree

    def parse_json(self, text: str, model: Any = None) -> Any:
        tree = self._syntax(text)
        value = _json_value(text, tree, self.name)
        if model is not None:
            if self._typer is not None:
                self._typed(text, tree)
            return _pydantic_validate(model, value, text, self.name)
        return self._typed(text, tree) if self._typer else value
