"""The packaged ``json`` grammar's validation, fast on the Lark side.

The packaged grammar (``grammars/json.lark``) is what a model is constrained with, so its whitespace is
bounded tokens (``_WS``, at most 64 characters between two tokens): an unbounded ``%ignore`` would let a
model loop on whitespace. Parsing those tokens with positions costs Lark about as much as the rest of
the document, so ``JSONGrammar.validate`` checks the syntax with an internal, lexer-friendly copy of
the same language: whitespace ignored by the lexer (a run of 1 to 64, never followed by more, so still
at most one bounded run between tokens), no positions propagated, LALR with a basic lexer. It gives
the same tree shape (``start``, ``object``, ``member``, ``array``, named value tokens).

Verdicts: llguidance on the packaged grammar (one call over all bytes), then this Lark grammar. Only a
refused text is parsed again with the packaged grammar and positions, so the error is located exactly
as before. ``tests/test_json_syntax.py`` checks that the two Lark grammars accept the same texts
(JSONTestSuite, generated JSON in many whitespace layouts, whitespace at the bound).
"""

from __future__ import annotations

import functools

import lark

from .grammar import Grammar

__all__ = ["JSONGrammar", "SYNTAX_GRAMMAR", "syntax_parser"]

SYNTAX_GRAMMAR = r"""
start: value

?value: object
      | array
      | STRING
      | NUMBER
      | TRUE
      | FALSE
      | NULL

object: "{" (member ("," member)*)? "}"
member: STRING ":" value
array: "[" (value ("," value)*)? "]"

TRUE: "true"
FALSE: "false"
NULL: "null"
STRING: /"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/
NUMBER: /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/
WS: /[ \t\n\r]{1,64}(?![ \t\n\r])/
%ignore WS
"""
"""Same language as ``grammars/json.lark``; Lark only (the lookahead is not in llguidance's subset)."""


@functools.lru_cache(maxsize=1)
def syntax_parser() -> lark.Lark:
    return lark.Lark(SYNTAX_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=False)


class JSONGrammar(Grammar):
    """The packaged ``json`` grammar: ``validate`` judges with both engines, Lark through ``SYNTAX_GRAMMAR``.

    The returned tree has no ``meta`` positions (tokens keep theirs); ``parse`` still parses the
    packaged grammar with positions.
    """

    def validate(self, text: str) -> lark.Tree:
        data = self._encode(text)
        if not self._llg().match(data).ok:
            error = self.llg_error(text)
            assert error is not None
            raise error
        try:
            return syntax_parser().parse(text)
        except lark.UnexpectedInput:
            return self.parse(text)  # the packaged grammar, with positions, locates the refusal
