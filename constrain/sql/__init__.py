"""SQL: dialect grammars, schemas, and schema-bound grammars for natural-language-to-SQL.

May import: ``constrain.generate``, ``constrain.providers``, ``constrain.grammar``, ``constrain._databases``,
``constrain.errors``, ``constrain.local`` (its cache folder, for sample values) (and sqlglot; SQLAlchemy and
the engines' drivers when a server database is opened).
"""

from __future__ import annotations

from .grammar import grammar
from .schema import Column, ForeignKey, Schema, Table
from .policy import Policy
from .validate import Rows, SQLQuery, validate
from .databases import Database, connect

__all__ = ["Column", "ForeignKey", "Schema", "Table", "grammar"]
__all__ += ["Policy", "Rows", "SQLQuery", "validate", "Database", "connect"]

from .ask import Answer, Candidate, PromptTable, Vote, aask, ask  # noqa: E402  (needs the modules above)

__all__ += ["Answer", "Candidate", "PromptTable", "Vote", "aask", "ask"]
