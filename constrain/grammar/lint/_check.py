"""``check_grammar``: every finding about a grammar, from the engines, the lint, its samples and targets."""

from __future__ import annotations

from ...errors import Diagnostic
from ._engines import lark_diagnostics, llguidance_diagnostics
from ._linter import lint_text
from ._rules import SEVERITY_ORDER
from ._samples import example_diagnostics, typed_refusals
from ._subject import CheckedGrammar
from ._targets import known_target, target_diagnostics


def check_grammar(grammar: CheckedGrammar, *, targets: tuple[str, ...] = ()) -> list[Diagnostic]:
    """Every finding about ``grammar``: lark-python, llguidance, the lint, the share of random walks its
    typed checks refuse (grammars with a typed value), and each named target."""
    for name in targets:
        known_target(name)  # refuse an unknown target before any work
    base = lark_diagnostics(grammar) + llguidance_diagnostics(grammar.text) + lint_text(grammar.text)
    diagnostics = list(base)
    if not any(d.severity == "error" and d.engine in ("lark", "llguidance") for d in base):
        diagnostics += typed_refusals(grammar) + example_diagnostics(grammar)
    for name in targets:
        diagnostics += target_diagnostics(grammar, base, name)
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (d.line, d.column, SEVERITY_ORDER.get(d.severity, 3), d.code))
