"""The generated DSL terminals (constrain/dsl/_terminals.py): the .lark files hold exactly what the
generator writes, and each terminal admits a value exactly when the DSL's typed check accepts it."""

from __future__ import annotations

import datetime
import itertools
import json
import math
import re

import pytest

import constrain
from constrain.dsl import _terminals
from constrain.dsl.filter import FilterTransformer, decode_string

FILTER = constrain.load_grammar("dsl/filter")


def terminal(grammar: constrain.Grammar, name: str) -> re.Pattern[str]:
    """The terminal as Lark reads it (Python ``re``)."""
    (found,) = [t for t in grammar._lark_parser().terminals if t.name == name]
    return re.compile(found.pattern.to_regexp())


@pytest.mark.parametrize("name", sorted(_terminals.GENERATED))
def test_grammar_files_hold_the_generated_terminals(name: str) -> None:
    text = _terminals.grammar_path(name).read_text(encoding="utf-8")
    assert _terminals.rewrite(text, _terminals.GENERATED[name]()) == text, (
        f"grammars/{name}.lark is stale: run `python -m constrain.dsl._terminals`"
    )


def number_ok(token: str) -> bool:
    """The typed check, stated independently: a float's integer digits plus its exponent are <= 308."""
    try:
        value = FilterTransformer().number([token])  # type: ignore[list-item]
    except ValueError:
        return False
    return isinstance(value, int) or math.isfinite(value)


def number_cases() -> list[str]:
    out = []
    for digits in (1, 2, 9, 17, 18, 19):
        head = "9" * digits
        for exponent in (306 - digits, 307 - digits, 308 - digits, 309 - digits, 310 - digits, 999):
            for spelled in (str(exponent), f"+{exponent}", f"{exponent:03d}"):
                out += [f"{head}e{spelled}", f"-{head}.5E{spelled}"]
    out += ["0.9e307", "0.9e308", "0e999", "1e-999", "123.45", "-0", "1" * 18, "1" * 19, "1.7976931348623157e308"]
    return out


def test_numbers_exactly_as_the_typed_check() -> None:
    pattern = terminal(FILTER, "NUMBER")
    for token in number_cases():
        in_grammar = pattern.fullmatch(token) is not None
        text = f"x = {token}"
        assert FILTER.matches(text) == in_grammar, token
        if in_grammar:
            assert number_ok(token) and math.isfinite(float(token)), token
            value = FILTER.parse_typed(text).value
            assert abs(value) <= 1e308 and FILTER.parse_typed(str(FILTER.parse_typed(text))).value == value
        elif re.fullmatch(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?", token):
            assert not number_ok(token), token  # the old syntax; beyond the bound the check refuses too


def test_every_date_and_only_dates() -> None:
    pattern = terminal(FILTER, "DATE")
    for year in range(0, 10000):  # February 29 and the year 0000: the regular cases of the calendar
        for month, day in ((2, 29), (1, 1)):
            token = f"{year:04d}-{month:02d}-{day:02d}"
            try:
                datetime.date.fromisoformat(token)
                real = True
            except ValueError:
                real = False
            assert (pattern.fullmatch(token) is not None) == real, token
    for year, month, day in itertools.product((1, 1900, 2000, 2023, 2024, 9999), range(0, 14), range(0, 33)):
        token = f"{year:04d}-{month:02d}-{day:02d}"
        try:
            datetime.date.fromisoformat(token)
            real = True
        except ValueError:
            real = False
        assert (pattern.fullmatch(token) is not None) == real, token
        if year in (1900, 2024):  # both engines on a share
            assert FILTER.matches(f"d = {token}") == real, token


def test_strings_without_lone_surrogates() -> None:
    pattern = terminal(FILTER, "STRING")
    for escape in ("\\ud7ff", "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ue000", "\\ud83d\\ude00", "\\ude00\\ud83d",
                   "\\uD83D\\uDE00", "\\ud83d", "\\ud83dx"):
        token = f'"a{escape}"'
        try:
            decode_string(token)
            ok = True
        except ValueError:
            ok = False
        assert (pattern.fullmatch(token) is not None) == ok, token
        assert FILTER.matches(f"s = {token}") == ok, token
    assert json.loads('"\\ud83d\\ude00"') == "\U0001f600"
