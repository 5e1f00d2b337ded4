"""Checks that run the grammar on texts: random walks through its typed checks, and its own examples."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConstrainError, Diagnostic, GrammarError, ValidationError
from .._packaged import read_header
from ._subject import CheckedGrammar


@dataclass(frozen=True)
class SampleVerdict:
    """The full validation of one random walk: ``lark_error`` when Lark refuses what llguidance wrote
    (the engines disagree: a grammar bug), else ``typed_error`` when the typed checks refuse it."""

    text: str
    lark_error: ValidationError | None = None
    typed_error: ValidationError | None = None

    @property
    def ok(self) -> bool:
        """Whether ``constrain validate --grammar`` (both engines, then the typed value) accepts the text."""
        return self.lark_error is None and self.typed_error is None


def judge_sample(grammar: CheckedGrammar, text: str) -> SampleVerdict:
    """Validate a string llguidance drew from ``grammar`` the way ``constrain validate --grammar`` does."""
    try:
        grammar.parse(text)
    except ValidationError as exc:
        return SampleVerdict(text, lark_error=exc)
    try:
        grammar.parse_typed(text)
    except GrammarError:
        raise
    except ValidationError as exc:
        return SampleVerdict(text, typed_error=exc)
    except ConstrainError as exc:  # a typed model refusing its value: still the typed check's verdict
        return SampleVerdict(text, typed_error=ValidationError(str(exc), text=text, engine="typed", grammar=grammar.name))
    return SampleVerdict(text)


TYPED_WALKS = 100
"""How many random walks ``check()`` runs through a grammar's typed checks."""


def _shorten(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def typed_refusals(grammar: CheckedGrammar, *, walks: int = TYPED_WALKS, seed: int = 0) -> list[Diagnostic]:
    """A ``typed-refusals`` warning when the grammar's typed checks refuse some of its random walks.

    Each such walk is a text a constrained model can write and the loop must re-ask: a check the grammar
    could state as a rule. Nothing for a grammar without a typed value, or when every walk passes."""
    if grammar._typer is None:
        return []
    verdicts = [judge_sample(grammar, text) for text in grammar.sample(walks, seed=seed)]
    refused = [v for v in verdicts if v.lark_error is None and v.typed_error is not None]
    if not refused:
        return []
    example = refused[0]
    assert example.typed_error is not None
    share = f"{len(refused)} of {len(verdicts)} random walks ({100 * len(refused) / len(verdicts):.0f}%)"
    return [Diagnostic(
        "warning", "typed-refusals",
        f"{share} pass both engines but the grammar's typed checks refuse them, e.g. {_shorten(example.text)}: "
        f"{str(example.typed_error).splitlines()[0]}. A model constrained by this grammar can write them, and "
        "each costs a round trip: state the check in the grammar where a rule can (`constrain sample --all` "
        "shows them)",
        1, 1, engine="typed",
    )]


def example_diagnostics(grammar: CheckedGrammar) -> list[Diagnostic]:
    """An ``example-refused`` error for each of the grammar's examples that it does not accept (both
    engines and its typed check): an example the model is shown must be an answer it may write."""
    header = read_header(grammar.text)
    lines = dict(zip((e.output for e in header.examples), header.example_lines))
    out: list[Diagnostic] = []
    for example, _ in grammar.examples:
        try:
            grammar.parse_typed(example)
        except ConstrainError as exc:
            line = lines.get(example, 1)
            out.append(Diagnostic(
                "error", "example-refused", f"the example {example[:60]!r} is not in the language: {str(exc).splitlines()[0]}",
                line, 1, grammar.text.splitlines()[line - 1][:80] if line in lines.values() else "", "lint",
            ))
    return out

