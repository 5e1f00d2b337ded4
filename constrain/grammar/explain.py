"""Where does a text fail? Each engine's verdict on one text, side by side.

``explain(grammar, text)`` runs the text through lark-python and llguidance (and, when both accept and
the grammar has a typed result, through its typed check). Each ``Verdict`` carries the engine's
``ValidationError`` (position, reason) and what the engine expected there: terminal names, string
terminals shown as their literal, for lark; byte values for llguidance. ``constrain explain`` and the
playground print the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lark

from ..errors import ValidationError
from ._grammar import Grammar

__all__ = ["Explanation", "Verdict", "explain", "lark_verdict"]


@dataclass(frozen=True)
class Verdict:
    """One engine's verdict: ``ok``, or the ``error`` (with line, column, byte offset) and ``expected``."""

    engine: str  # "lark/lalr" | "lark/earley" | "llguidance" | "typed"
    ok: bool
    error: ValidationError | None = None
    expected: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "ok": self.ok,
            "expected": list(self.expected),
            "error": None if self.error is None else self.error.to_dict(),
        }


@dataclass(frozen=True)
class Explanation:
    """The verdicts on one text: lark-python, llguidance, and the typed check when both engines accept."""

    grammar: str
    text: str
    verdicts: tuple[Verdict, ...]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    @property
    def agree(self) -> bool:
        """Whether lark-python and llguidance reach the same verdict."""
        return self.verdicts[0].ok == self.verdicts[1].ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "grammar": self.grammar,
            "ok": self.ok,
            "agree": self.agree,
            "engines": [v.to_dict() for v in self.verdicts],
        }


def lark_verdict(grammar: Grammar, text: str) -> Verdict:
    """lark-python's verdict alone (``expected`` holds terminal names, literals where they are strings)."""
    label = f"lark/{grammar.parser}"
    try:
        grammar.parse(text)
    except ValidationError as exc:
        labels = _lark_terminal_labels(grammar)
        return Verdict(label, False, exc, tuple(sorted({labels.get(name, name) for name in exc.expected})))
    return Verdict(label, True)


def _llguidance_verdict(grammar: Grammar, text: str) -> Verdict:
    error = grammar.llg_error(text)
    return Verdict("llguidance", error is None, error, tuple(error.expected) if error is not None else ())


def _typed_verdict(grammar: Grammar, text: str) -> Verdict:
    try:
        grammar.parse_typed(text)
    except ValidationError as exc:
        return Verdict("typed", False, exc, tuple(exc.expected))
    return Verdict("typed", True)


def explain(grammar: Grammar, text: str) -> Explanation:
    """Every engine's verdict on ``text``. Raises ``InputError`` for a non-str or oversized text and
    ``GrammarError`` when the grammar does not build; a refused text is a verdict, not an exception."""
    verdicts = [lark_verdict(grammar, text), _llguidance_verdict(grammar, text)]
    if all(v.ok for v in verdicts) and grammar._typer is not None:
        verdicts.append(_typed_verdict(grammar, text))
    return Explanation(grammar.name, text, tuple(verdicts))


def _lark_terminal_labels(grammar: Grammar) -> dict[str, str]:
    """Terminal name -> what to show: the literal for string terminals (``"("`` beats ``LPAR``)."""
    labels = {"$END": "<end>"}
    for terminal in grammar._lark_parser().terminals:
        if isinstance(terminal.pattern, lark.lexer.PatternStr):
            labels[terminal.name] = '"' + terminal.pattern.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return labels
