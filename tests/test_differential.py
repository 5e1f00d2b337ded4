"""Differential tests for every packaged grammar: the two engines must accept the same language.

* strings drawn by llguidance (random byte-level walks, ``Grammar.sample``) must parse with Lark, using
  the parser the grammar chose — which also proves that choice (LALR where it is exact, Earley where not);
* strings drawn from Lark's view of the grammar (hypothesis ``from_lark``, a separator appended to each
  terminal when the grammar ignores whitespace) must be accepted by llguidance.

Any disagreement is a bug in the grammar or in a validator: these tests never skip a failing case.
"""

from __future__ import annotations

import functools
import re

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import constrain
from constrain import ValidationError

NAMES = [info.name for info in constrain.available_grammars()]
WALKS = 120
EXAMPLES = 60


@functools.lru_cache(maxsize=None)
def walks(name: str) -> tuple[str, ...]:
    grammar = constrain.load_grammar(name)
    return tuple(grammar.sample(WALKS, seed=20240601, max_bytes=300))


def lark_refusals(grammar: constrain.Grammar, texts: tuple[str, ...]) -> list[str]:
    out = []
    for text in texts:
        try:
            grammar.parse(text)
        except ValidationError as exc:
            out.append(f"{text!r}: {str(exc).splitlines()[0]}")
    return out


@pytest.mark.parametrize("name", NAMES)
def test_llguidance_walks_parse_with_the_chosen_lark_parser(name: str) -> None:
    grammar = constrain.load_grammar(name)
    texts = walks(name)
    assert len(texts) >= WALKS // 2, f"{name}: llguidance produced only {len(texts)} complete walks"
    assert lark_refusals(grammar, texts) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_parser_choice_is_needed(name: str) -> None:
    """Earley only where LALR fails: it does not build, or it refuses strings llguidance accepts."""
    grammar = constrain.load_grammar(name)
    if grammar.parser == "lalr":
        return  # exact on the walks (previous test) and the fast choice
    lalr = constrain.Grammar(grammar.text, name=name, parser="lalr", start=grammar.start)
    try:
        refused = lark_refusals(lalr, walks(name))
    except constrain.GrammarError:
        return  # not LALR(1)
    assert refused, f"{name} uses Earley but LALR builds and accepts every walk: pin '// parser: lalr'"


def _separator(parser: lark.Lark) -> str:
    """A short string the grammar ignores between tokens ("" when it ignores nothing)."""
    for name in parser.ignore_tokens:
        pattern = next(t for t in parser.terminals if t.name == name).pattern.to_regexp()
        for candidate in (" ", "\n", "\t"):
            if re.fullmatch(pattern, candidate):
                return candidate
    return ""


@functools.lru_cache(maxsize=None)
def lark_strings(name: str) -> st.SearchStrategy[str]:
    grammar = constrain.load_grammar(name)
    parser = lark.Lark(grammar.text, parser="earley", lexer="dynamic", start=grammar.start)
    separator = _separator(parser)
    explicit: dict[str, st.SearchStrategy[str]] = {}
    if separator:
        # from_lark glues adjacent terminals; a separator after each keeps Lark's tokenization
        for terminal in parser.terminals:
            if terminal.name in parser.ignore_tokens:
                explicit[terminal.name] = st.just(separator)
            else:
                explicit[terminal.name] = st.from_regex(terminal.pattern.to_regexp(), fullmatch=True).map(
                    lambda s, sep=separator: s + sep
                )
    strategy = from_lark(parser, start=grammar.start, explicit=explicit)
    # llguidance accepts ignored text at the end only where the grammar could continue (DESIGN §2)
    return strategy.map(lambda s: s.rstrip(separator) if separator else s)


@pytest.mark.parametrize("name", NAMES)
def test_lark_generated_strings_are_accepted_by_llguidance(name: str) -> None:
    grammar = constrain.load_grammar(name)
    strategy = lark_strings(name)

    @given(strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        database=None,
    )
    def accepted(text: str) -> None:
        if len(text.encode("utf-8")) > grammar.max_bytes:
            return
        error = grammar.llg_error(text)
        assert error is None, f"llguidance refuses a string Lark's grammar generates: {text!r}\n{error}"
        grammar.parse(text)  # and the chosen Lark parser agrees with Lark's own grammar

    accepted()
