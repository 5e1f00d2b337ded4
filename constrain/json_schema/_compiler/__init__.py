"""JSON Schema -> Lark grammar text: the compiler, one module per family of keywords.

``compiler`` is the walk (a schema taken apart into the plain schemas that must all hold, ``anyOf`` /
``oneOf`` distributed, the rest merged and dispatched by type). The keywords it meets live beside it:
``refs`` ($ref), ``combinators`` (allOf, oneOf, not, if/then/else, the dependency keywords),
``disjoint`` (when two branches share no value), ``enum_const``, ``numbers``, ``strings``, ``arrays``,
``objects`` and ``object_rules`` (an object's members written as rules). ``context`` is what they all
share: the limits, the grammar being written and the bookkeeping.
"""

from .compiler import compile_schema
from .context import Limits

__all__ = ["Limits", "compile_schema"]
