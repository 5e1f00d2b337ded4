"""The packaged ``json`` grammar's numbers stay below 1e309 in magnitude, so a model constrained by it
cannot write a number that a 64-bit float turns into inf, and no finite number is ever refused."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

import constrain
from constrain.grammar._json_syntax import syntax_parser
from constrain.dsl._terminals import JSON_EXACT_DIGITS, JSON_EXACT_ZEROS, JSON_MAX_MAGNITUDE
from constrain.engines import llg_engine
from constrain.errors import ValidationError

JSON = constrain.load_grammar("json")
MATCHER = llg_engine.Matcher(JSON.text)
LIMIT = Decimal(10) ** JSON_MAX_MAGNITUDE


@st.composite
def numbers(draw: st.DrawFn) -> str:
    digits = st.text("0123456789", min_size=1, max_size=4)
    length = draw(st.one_of(st.integers(1, 20), st.integers(295, 320)))
    whole = "0" if draw(st.booleans()) and length < 5 else draw(st.sampled_from("123456789")) + "".join(
        draw(st.sampled_from("0123456789")) for _ in range(length - 1))
    text = draw(st.sampled_from(["", "-"])) + whole
    if draw(st.booleans()):
        text += "." + "0" * draw(st.integers(0, 30)) + draw(digits)
    if draw(st.booleans()):
        exponent = draw(st.one_of(st.integers(-400, 400), st.integers(280, 340)))
        sign = "-" if exponent < 0 else draw(st.sampled_from(["", "+"]))
        text += draw(st.sampled_from("eE")) + sign + "0" * draw(st.integers(0, 3)) + str(abs(exponent))
    return text


def generous(text: str) -> bool:
    """Where the grammar admits numbers of 1e309 or more, for the typed check to refuse: an integer part of
    more than JSON_EXACT_DIGITS digits with an exponent its shortest such part takes (at most 298), any
    negative exponent, or 0.000... with more than JSON_EXACT_ZEROS zeros."""
    mantissa, _, exponent = text.lstrip("-").lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    if exponent.startswith("-"):
        return True
    if len(whole) > JSON_EXACT_DIGITS and exponent and int(exponent) <= JSON_MAX_MAGNITUDE - JSON_EXACT_DIGITS - 1:
        return True
    return whole == "0" and len(fraction) - len(fraction.lstrip("0")) > JSON_EXACT_ZEROS


@settings(max_examples=300, deadline=None)
@given(numbers())
@example("1e308")
@example("1.7976931348623157e308")
@example("9.99e308")
@example("1e309")
@example("1e0000308")
@example("1e-99999")
@example("0e99999")
@example("-0.000e+99999")
@example("0.001e311")
@example("0.001e312")
@example("1" + "0" * 400)
def test_the_grammar_admits_exactly_the_numbers_below_1e309(text: str) -> None:
    """Differential, number by number: llguidance on the packaged grammar and Lark on the validation
    grammar agree, admit every number below 1e309 (every finite float among them) and every integer,
    and refuse the rest outside the two documented generous forms."""
    is_integer = not any(c in text for c in ".eE")
    below = abs(Decimal(text)) < LIMIT
    llguidance = MATCHER.match(text.encode()).ok
    lark_error = ""
    try:
        syntax_parser().parse(text)
        lark_ok = True
    except Exception as exc:
        lark_ok, lark_error = False, str(exc)[:300]
    assert llguidance == lark_ok, (text, llguidance, lark_error)
    if is_integer or below:
        assert llguidance, text
    elif not generous(text):
        assert not llguidance, text
    if llguidance and not is_integer and not generous(text):
        try:
            JSON.parse_typed(text)
        except ValidationError as exc:  # only the thin band between the largest double and 1e309
            assert "beyond the range" in str(exc) and abs(Decimal(text)) >= Decimal("1.7976931348623157e308"), text


def test_random_walks_never_reach_the_typed_refusal() -> None:
    refused = []
    for text in JSON.sample(400, seed=7):
        try:
            JSON.parse_typed(text)
        except ValidationError as exc:
            refused.append((text, str(exc)))
    assert refused == []
