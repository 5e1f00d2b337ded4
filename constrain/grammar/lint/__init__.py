"""Grammar checks: does it build in lark-python, does llguidance (OpenAI's engine) accept it, and
does it fall into one of the known traps (DESIGN.md §2). Every finding has a line and column.

The traps are data: ``RULES`` lists every lint finding (code, severity, message) and the patterns
that trigger it; ``TARGETS`` lists what each deployment target treats differently. One checker
walks a tokenized grammar and applies both tables.

From the bottom up: ``_rules`` (the table) and ``_regex`` (regex bodies in pieces) feed ``_linter``
(the walk); ``_engines`` asks lark-python and llguidance; ``_lexemes`` finds the GBNF lexeme trap that
``_targets`` reports; ``_samples`` runs random walks and examples through the typed checks; ``_check``
puts them together. The checks read a grammar through the ``CheckedGrammar`` protocol (``_subject``),
so nothing here imports ``Grammar``.
"""

from __future__ import annotations

from .._tokens import tokenize
from ._check import check_grammar
from ._engines import HANG_SECONDS, lark_build_diagnostic, llguidance_diagnostics
from ._lexemes import gbnf_lexeme_traps
from ._linter import lint_text
from ._rules import COMMON_IMPORTS, RULES, Rule, Severity
from ._samples import TYPED_WALKS, SampleVerdict, example_diagnostics, judge_sample, typed_refusals
from ._subject import CheckedGrammar
from ._targets import TARGETS, Target

__all__ = [
    "COMMON_IMPORTS",
    "HANG_SECONDS",
    "RULES",
    "TARGETS",
    "TYPED_WALKS",
    "CheckedGrammar",
    "Rule",
    "SampleVerdict",
    "Severity",
    "Target",
    "check_grammar",
    "example_diagnostics",
    "gbnf_lexeme_traps",
    "judge_sample",
    "lark_build_diagnostic",
    "lint_text",
    "llguidance_diagnostics",
    "tokenize",
    "typed_refusals",
]
