"""How an ECMA-262 ``pattern`` matches a string, read the same way by the compiler and the validator.

The compiler states a pattern through its translation (``_regex``) or, for nested repetition a
backtracking matcher would choke on, through an automaton (``_automaton``); the validator must match
exactly that language, so both take their matcher from here.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Callable

from . import _automaton, _regex

_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A matcher with ECMA-262 semantics: the pattern as the grammar translates it, or where only an
    automaton reads it (nested repetition), that automaton. Raises PatternError for neither."""
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        try:
            tr = _regex.translate(pattern)
        except _regex.PatternError as exc:
            try:
                with _automaton.budget(_automaton.SCHEMA_BUDGET):
                    compiled = _AutomatonMatcher(_automaton.from_pattern(pattern))  # type: ignore[assignment]
            except _automaton.TooLarge:
                raise exc from None
        else:
            compiled = re.compile(_regex.QUOTE + tr.regex + _regex.QUOTE)
            compiled = _KeyMatcher(compiled)  # type: ignore[assignment]
        _PATTERN_CACHE[pattern] = compiled
    return compiled


class _AutomatonMatcher:
    """Search semantics by the pattern's automaton (which already spans the whole string)."""

    def __init__(self, dfa: _automaton.DFA) -> None:
        self.dfa = dfa

    def search(self, name: str) -> object | None:
        return True if _automaton.accepts(self.dfa, name) else None


class _KeyMatcher:
    """Matches a decoded key against a translated pattern by matching its canonical JSON spelling."""

    def __init__(self, rx: re.Pattern[str]) -> None:
        self.rx = rx

    def search(self, name: str) -> object | None:
        return self.rx.fullmatch(json.dumps(name, ensure_ascii=False))


@functools.lru_cache(maxsize=4096)
def ecma_pattern(pattern: str) -> Callable[[str], bool]:
    """Search with ECMA-262 semantics (``\\d`` is ASCII, ``$`` is the very end, ``\\p{L}``...): the
    pattern as the grammar translates it; Python's ``re`` only for what the translator refuses
    (lookaround, backreferences), where the two agree. Raises ``re.error`` if neither reads it."""
    try:
        matcher = compiled_pattern(pattern)
    except _regex.PatternError:
        python = re.compile(pattern)
        return lambda s: python.search(s) is not None
    return lambda s: matcher.search(s) is not None
