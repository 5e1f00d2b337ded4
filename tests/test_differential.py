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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import constrain
from constrain import ValidationError

NAMES = [info.name for info in constrain.available_grammars()]
WALKS = 100
EXAMPLES = 45


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


LARGE_REGEX = 60  # characters; hypothesis' from_regex slows to seconds per draw on large regexes


def _terminal_strings(regex: str) -> st.SearchStrategy[str]:
    """Strings of one terminal, in Lark's (Python ``re``) sense of its regex.

    Small regexes go to ``st.from_regex``. Large ones (SQL identifiers that exclude every keyword, long
    bounded repetitions) are
    drawn by an llguidance walk over the terminal alone and kept only if Python's ``re`` fullmatches
    them: still exact for Lark, though those terminals then only exercise strings both engines share.
    """
    if len(regex) < LARGE_REGEX and not re.search(r"\{\d*,\d{2,}\}", regex):
        return st.from_regex(regex, fullmatch=True)
    pattern = re.compile(regex)
    body, escaped = [], False
    for c in regex:  # as a /.../ literal: control characters and unescaped slashes escaped
        body.append(f"\\x{ord(c):02x}" if ord(c) < 0x20 else "\\/" if c == "/" and not escaped else c)
        escaped = c == "\\" and not escaped
    walked = constrain.Grammar(f"start: T\nT: /{''.join(body)}/\n").sample(40, seed=7, max_bytes=120)
    kept = sorted({s for s in walked if pattern.fullmatch(s)})
    assert kept, f"no walk of a large terminal matched it in Python re: {regex[:80]}"
    return st.sampled_from(kept)


FROM_LARK_MAX_CHARS = 8000  # beyond this (the SQL grammars) from_lark spends minutes per example
MAX_DEPTH = 12


def _expansions(parser: lark.Lark, start: str, terminals: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    """Like ``from_lark`` (random expansions of Lark's compiled rules), bounded in depth: past
    ``MAX_DEPTH`` only the expansions that terminate soonest are taken."""
    compiled_terminals, rules, _ = parser.grammar.compile([start], ())
    for terminal in compiled_terminals:
        terminals.setdefault(terminal.name, _terminal_strings(terminal.pattern.to_regexp()))
    by_origin: dict[str, list[tuple[str, ...]]] = {}
    for rule in rules:
        by_origin.setdefault(rule.origin.name, []).append(tuple(sym.name for sym in rule.expansion))
    height: dict[str, int] = {name: 0 for name in terminals}
    changed = True
    while changed:  # the least depth at which each rule can finish
        changed = False
        for origin, options in by_origin.items():
            best = min(
                (1 + max((height[s] for s in option), default=0) for option in options if all(s in height for s in option)),
                default=None,
            )
            if best is not None and best < height.get(origin, 1 << 30):
                height[origin], changed = best, True

    @st.composite
    def draw_text(draw: st.DrawFn) -> str:
        out: list[str] = []

        def expand(symbol: str, depth: int) -> None:
            if symbol in terminals:
                out.append(draw(terminals[symbol]))
                return
            options = by_origin[symbol]
            if depth >= MAX_DEPTH:
                options = [o for o in options if all(s in height for s in o)]
                least = min(1 + max((height[s] for s in o), default=0) for o in options)
                options = [o for o in options if 1 + max((height[s] for s in o), default=0) == least]
            for child in draw(st.sampled_from(options)):
                expand(child, depth + 1)

        expand(start, 0)
        return "".join(out)

    return draw_text()


@functools.lru_cache(maxsize=None)
def lark_strings(name: str) -> st.SearchStrategy[str]:
    grammar = constrain.load_grammar(name)
    parser = lark.Lark(grammar.text, parser="earley", lexer="dynamic", start=grammar.start)
    separator = _separator(parser)
    explicit: dict[str, st.SearchStrategy[str]] = {}
    for terminal in parser.terminals:
        if terminal.name in parser.ignore_tokens:
            explicit[terminal.name] = st.just(separator)
            continue
        regex = terminal.pattern.to_regexp()
        if separator:
            # from_lark glues adjacent terminals; a separator after each keeps Lark's tokenization
            explicit[terminal.name] = _terminal_strings(regex).map(lambda s, sep=separator: s + sep)
        else:
            explicit[terminal.name] = _terminal_strings(regex)
    if len(grammar.text) < FROM_LARK_MAX_CHARS:
        strategy = from_lark(parser, start=grammar.start, explicit=explicit)
    else:
        strategy = _expansions(parser, grammar.start, explicit)
    # llguidance accepts ignored text at the end only where the grammar could continue (DESIGN §2)
    return strategy.map(lambda s: s.rstrip(separator) if separator else s)


@pytest.mark.parametrize("name", NAMES)
def test_lark_generated_strings_are_accepted_by_llguidance(name: str) -> None:
    grammar = constrain.load_grammar(name)
    strategy = lark_strings(name)

    @given(strategy)
    @settings(
        max_examples=EXAMPLES if len(grammar.text) < FROM_LARK_MAX_CHARS else EXAMPLES // 3,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def accepted(text: str) -> None:
        if len(text.encode("utf-8")) > grammar.max_bytes:
            return
        error = grammar.llg_error(text)
        assert error is None, f"llguidance refuses a string Lark's grammar generates: {text!r}\n{error}"
        grammar.parse(text)  # and the chosen Lark parser agrees with Lark's own grammar

    accepted()
