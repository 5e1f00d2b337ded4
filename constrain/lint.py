"""Grammar checks: does it build in lark-python, does llguidance (OpenAI's engine) accept it,
and does it fall into one of the known traps (DESIGN.md §2). Every finding has a line and column."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import lark

from .engines import llg_engine
from .errors import Diagnostic

if TYPE_CHECKING:
    from .grammar import Grammar

_LLG_LOCATION = re.compile(r"at (\d+)\((\d+)\)")


def check_grammar(grammar: Grammar, *, targets: tuple[str, ...] = ()) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    diagnostics += _lark_diagnostics(grammar)
    diagnostics += _llguidance_diagnostics(grammar.text)
    return sorted(diagnostics, key=lambda d: (d.line, d.column, d.code))


def _lark_diagnostics(grammar: Grammar) -> list[Diagnostic]:
    from .engines import lark_engine

    try:
        lark_engine.build(grammar.text, "lalr", grammar.start)
        return []
    except lark.exceptions.GrammarError as exc:
        lalr_error = exc
    except lark.exceptions.LarkError as exc:
        return [_lark_build_error(exc)]
    try:
        lark_engine.build(grammar.text, "earley", grammar.start)
    except lark.exceptions.LarkError as exc:
        return [_lark_build_error(exc)]
    severity = "error" if grammar.parser_choice == "lalr" else "info"
    first_line = str(lalr_error).strip().splitlines()[0] if str(lalr_error).strip() else "LALR conflict"
    return [
        Diagnostic(
            severity,
            "lalr-conflict",
            f"not LALR(1), Earley is used instead (slower): {first_line}",
            1,
            1,
            engine="lark",
        )
    ]


def _lark_build_error(exc: Exception) -> Diagnostic:
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Diagnostic("error", "lark-build", message, int(line), int(column), engine="lark")


def _llguidance_diagnostics(text: str) -> list[Diagnostic]:
    error, warnings = llg_engine.validate_lark(text)
    out: list[Diagnostic] = []
    for severity, message in ([("error", error)] if error else []) + [("warning", w) for w in warnings]:
        m = _LLG_LOCATION.search(message)
        line, column = (int(m.group(1)), int(m.group(2)) + 1) if m else (1, 1)
        headline = message.strip().splitlines()[0]
        out.append(Diagnostic(severity, "llguidance", headline, line, column, engine="llguidance"))
    return out
