"""The Python value of an accepted JSON text, and that value checked against a pydantic model."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import lark

from ..engines import lark_engine
from ..errors import ValidationError

__all__ = ["json_value", "pydantic_value"]


def json_value(text: str, tree: lark.Tree, grammar_name: str) -> Any:
    """The Python value of an accepted JSON text. Refuses what ``json.loads`` would silently change:
    numbers beyond the float range (they would become ``inf``) and nesting deeper than it can decode."""
    numbers = (
        child
        for subtree in tree.iter_subtrees()  # iterative: deeply nested documents must not recurse
        for child in subtree.children
        if isinstance(child, lark.Token) and child.type == "NUMBER"
    )
    for token in numbers:
        if any(c in token for c in ".eE") and math.isinf(float(token)):
            pos = token.start_pos or 0
            line, column = lark_engine.line_column(text, pos)
            raise ValidationError(
                f"number {token[:40]} is beyond the range of a 64-bit float",
                text=text, offset=len(text[:pos].encode("utf-8")), line=line, column=column,
                engine="json", grammar=grammar_name,
            )
    try:
        return json.loads(text)
    except RecursionError:
        raise ValidationError(
            f"JSON nesting is too deep to decode (Python recursion limit {sys.getrecursionlimit()})",
            text=text, engine="json", grammar=grammar_name,
        ) from None


def pydantic_value(model: Any, value: Any, text: str, grammar_name: str) -> Any:
    """``value`` as an instance of ``model`` (pydantic); a ``ValidationError`` listing the schema errors."""
    import pydantic

    try:
        return pydantic.TypeAdapter(model).validate_python(value)
    except pydantic.ValidationError as exc:
        problems = [
            f"/{'/'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg')}" for error in exc.errors()
        ]
        raise ValidationError(
            f"{exc.error_count()} schema error(s): " + "; ".join(problems[:20])
            + (f"; ... and {len(problems) - 20} more" if len(problems) > 20 else ""),
            text=text,
            engine="pydantic",
            grammar=grammar_name,
        ) from None
