"""``constrain.sql.grammar``: the packaged grammar of a dialect, or one bound to a schema."""

from __future__ import annotations

from ..grammar import Grammar, load_grammar
from ._dialects import get_dialect
from .schema import Schema

__all__ = ["grammar"]


def grammar(dialect: str = "sqlite", schema: Schema | None = None) -> Grammar:
    """The SQL grammar of ``dialect``; with ``schema``, only its tables and columns are identifiers."""
    info = get_dialect(dialect)
    if schema is None:
        return load_grammar(info.grammar_name)
    raise NotImplementedError("schema-bound grammars are not built yet")
