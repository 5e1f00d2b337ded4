"""Typed values: which packaged grammar turns its tree into which value, and how a transformer's
exception becomes a located ``ValidationError``.

Kept as a table of ``"module:function"`` names so that each DSL's transformer lives in its own module
(above this package) and is imported only when its grammar is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import lark

from ..errors import ConstrainError, ValidationError
from ._values import json_value

Typer = Callable[[str, lark.Tree], Any]
"""Turns an accepted text and its Lark tree into the grammar's typed value."""

# packaged grammar name -> "module:function" returning the typed value from (text, tree)
TYPERS: dict[str, str] = {
    "json": "constrain.grammar._typed:json_typed_value",
    "dsl/filter": "constrain.dsl.filter:from_tree",
    "dsl/cron": "constrain.dsl.cron:from_tree",
    "dsl/chart": "constrain.dsl.chart:from_tree",
    "dsl/schedule": "constrain.dsl.schedule:from_tree",
}


def json_typed_value(text: str, tree: lark.Tree) -> Any:
    return json_value(text, tree, "json")  # refuses what json.loads would silently change (inf, depth)


def typer_for(name: str) -> Typer | None:
    """The typed value of the packaged grammar ``name`` (see ``TYPERS``), or None when it has none."""
    target = TYPERS.get(name)
    if target is None:
        return None
    module_name, _, func = target.partition(":")
    typer: Typer = getattr(importlib.import_module(module_name), func)
    return typer


def location(text: str, node: lark.Tree | lark.Token) -> tuple[int, int, int]:
    """(byte offset, line, column) of a tree node or token inside ``text``; positions must be propagated."""
    if isinstance(node, lark.Token):
        start = node.start_pos
    else:
        start = getattr(node.meta, "start_pos", None) if not node.meta.empty else None
    start = start or 0
    before = text[:start]
    line = before.count("\n") + 1
    column = start - (before.rfind("\n") + 1) + 1
    return len(before.encode("utf-8")), line, column


def semantic_error(text: str, node: lark.Tree | lark.Token, message: str, grammar: str) -> ValidationError:
    """A ``ValidationError`` for a check the grammar cannot express, located at ``node``."""
    offset, line, column = location(text, node)
    return ValidationError(
        message, text=text, offset=offset, line=line, column=column, engine="semantic", grammar=grammar
    )


def run_transformer(transform: Callable[[lark.Tree], Any], text: str, tree: lark.Tree, grammar: str) -> Any:
    """Apply a transformer; an exception raised inside it becomes a located ``ValidationError``.

    A ``ConstrainError`` raised by a transformer method passes through unchanged; any other exception
    (e.g. ``ValueError("start after end")``) is reported at the node the method was handling — or, from a
    plain function given the whole tree, at the start of the text.
    """
    try:
        return transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, ConstrainError):
            raise exc.orig_exc from None
        raise semantic_error(text, exc.obj, str(exc.orig_exc) or type(exc.orig_exc).__name__, grammar) from None
    except ConstrainError:
        raise
    except Exception as exc:  # a plain function: it raised for the whole tree, located at its start
        raise semantic_error(text, tree, str(exc) or type(exc).__name__, grammar) from None
