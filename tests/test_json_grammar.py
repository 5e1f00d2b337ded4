"""The packaged ``json`` grammar against JSONTestSuite, in both engines, and its typed results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import pydantic
import pytest
from conftest import corpus
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain import InputError, ValidationError
from constrain.cli._output import decode_utf8
from constrain.engines import llg_engine

Verdict = Literal["accept", "reject"]


@pytest.fixture(scope="module")
def grammar() -> constrain.Grammar:
    return constrain.load_grammar("json")


@pytest.fixture(scope="module")
def byte_matcher(grammar: constrain.Grammar) -> llg_engine.Matcher:
    """llguidance over raw bytes: judges files that are not UTF-8 without decoding them."""
    return llg_engine.Matcher(grammar.text)


def suite_files(prefix: str) -> list[Path]:
    root = corpus("jsontestsuite", "test_parsing")
    return sorted(root.glob(f"{prefix}_*.json"))


def lark_verdict(grammar: constrain.Grammar, text: str) -> Verdict:
    try:
        grammar.parse(text)
        return "accept"
    except ValidationError:
        return "reject"


def judge(grammar: constrain.Grammar, matcher: llg_engine.Matcher, raw: bytes) -> tuple[Verdict, Verdict]:
    """(lark verdict, llguidance verdict) for raw file bytes; text that is not UTF-8 is refused cleanly."""
    llg: Verdict = "accept" if matcher.match(raw).ok else "reject"
    try:
        text = decode_utf8(raw, source="file")
    except InputError:
        return "reject", llg
    assert grammar.matches(text) == (llg == "accept")  # the str API and the byte API agree
    return lark_verdict(grammar, text), llg


def test_every_y_file_is_accepted_by_both_engines(grammar: constrain.Grammar, byte_matcher: llg_engine.Matcher) -> None:
    files = suite_files("y")
    assert len(files) >= 90
    wrong = {f.name: judge(grammar, byte_matcher, f.read_bytes()) for f in files}
    assert {name: v for name, v in wrong.items() if v != ("accept", "accept")} == {}


def test_every_n_file_is_rejected_by_both_engines(grammar: constrain.Grammar, byte_matcher: llg_engine.Matcher) -> None:
    files = suite_files("n")
    assert len(files) >= 180
    wrong = {f.name: judge(grammar, byte_matcher, f.read_bytes()) for f in files}
    assert {name: v for name, v in wrong.items() if v != ("reject", "reject")} == {}


def test_y_values_equal_json_loads(grammar: constrain.Grammar) -> None:
    for path in suite_files("y"):
        text = path.read_bytes().decode("utf-8")
        assert grammar.parse_json(text) == json.loads(text), path.name


def test_non_utf8_files_get_a_located_input_error() -> None:
    for path in suite_files("n"):
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            with pytest.raises(InputError) as info:
                decode_utf8(raw, source=path.name)
            assert info.value.offset == exc.start
            assert path.name in str(info.value)


# Implementation-defined cases: the decision for each, and why.
#   accept        both engines accept, parse_json returns the value
#   reject-value  both engines accept the syntax, parse_json refuses the value (json.loads would turn it
#                 into inf, a silent change)
#   reject-utf8   not UTF-8 (RFC 8259 §8.1 requires UTF-8): InputError, and llguidance refuses the bytes
#   reject        both engines refuse the text
I_DECISIONS: dict[str, tuple[str, str]] = {
    "i_number_double_huge_neg_exp.json": ("accept", "underflows to 0.0, like any float rounding"),
    "i_number_huge_exp.json": ("reject", "1e309 or more in magnitude: a float would be inf, the grammar stops it"),
    "i_number_neg_int_huge_exp.json": ("reject", "1e309 or more in magnitude: a float would be inf, the grammar stops it"),
    "i_number_pos_double_huge_exp.json": ("reject", "1e309 or more in magnitude: a float would be inf, the grammar stops it"),
    "i_number_real_neg_overflow.json": ("reject", "1e309 or more in magnitude: a float would be inf, the grammar stops it"),
    "i_number_real_pos_overflow.json": ("reject", "1e309 or more in magnitude: a float would be inf, the grammar stops it"),
    "i_number_real_underflow.json": ("accept", "underflows to 0.0"),
    "i_number_too_big_neg_int.json": ("accept", "Python ints are exact at any size"),
    "i_number_too_big_pos_int.json": ("accept", "Python ints are exact at any size"),
    "i_number_very_big_negative_int.json": ("accept", "Python ints are exact at any size"),
    "i_object_key_lone_2nd_surrogate.json": ("accept", "RFC 8259 §8.2: \\u escapes of lone surrogates are grammatical"),
    "i_string_1st_surrogate_but_2nd_missing.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_1st_valid_surrogate_2nd_invalid.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_UTF-16LE_with_BOM.json": ("reject-utf8", "UTF-16 is not UTF-8"),
    "i_string_UTF-8_invalid_sequence.json": ("reject-utf8", "invalid UTF-8"),
    "i_string_UTF8_surrogate_U+D800.json": ("reject-utf8", "an encoded surrogate is invalid UTF-8"),
    "i_string_incomplete_surrogate_and_escape_valid.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_incomplete_surrogate_pair.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_incomplete_surrogates_escape_valid.json": ("accept", "lone surrogate escapes, grammatical"),
    "i_string_invalid_lonely_surrogate.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_invalid_surrogate.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_invalid_utf-8.json": ("reject-utf8", "invalid UTF-8"),
    "i_string_inverted_surrogates_U+1D11E.json": ("accept", "surrogate escapes out of order, grammatical"),
    "i_string_iso_latin_1.json": ("reject-utf8", "ISO-8859-1 is not UTF-8"),
    "i_string_lone_second_surrogate.json": ("accept", "lone surrogate escape, grammatical"),
    "i_string_lone_utf8_continuation_byte.json": ("reject-utf8", "invalid UTF-8"),
    "i_string_not_in_unicode_range.json": ("reject-utf8", "beyond U+10FFFF is invalid UTF-8"),
    "i_string_overlong_sequence_2_bytes.json": ("reject-utf8", "overlong encodings are invalid UTF-8"),
    "i_string_overlong_sequence_6_bytes.json": ("reject-utf8", "overlong encodings are invalid UTF-8"),
    "i_string_overlong_sequence_6_bytes_null.json": ("reject-utf8", "overlong encodings are invalid UTF-8"),
    "i_string_truncated-utf-8.json": ("reject-utf8", "truncated UTF-8"),
    "i_string_utf16BE_no_BOM.json": ("reject-utf8", "UTF-16 is not UTF-8"),
    "i_string_utf16LE_no_BOM.json": ("reject-utf8", "UTF-16 is not UTF-8"),
    "i_structure_500_nested_arrays.json": ("accept", "500 levels decode within Python's recursion limit"),
    "i_structure_UTF-8_BOM_empty_object.json": ("reject", "RFC 8259 §8.1: a BOM must not be added; not ignored"),
}


def test_every_i_file_has_a_decision() -> None:
    assert sorted(p.name for p in suite_files("i")) == sorted(I_DECISIONS)


@pytest.mark.parametrize("name", sorted(I_DECISIONS))
def test_i_file_decision(name: str, grammar: constrain.Grammar, byte_matcher: llg_engine.Matcher) -> None:
    raw = corpus("jsontestsuite", "test_parsing", name).read_bytes()
    decision, _reason = I_DECISIONS[name]
    lark, llg = judge(grammar, byte_matcher, raw)
    if decision == "reject-utf8":
        with pytest.raises(InputError):
            decode_utf8(raw, source=name)
        assert llg == "reject"
        return
    text = raw.decode("utf-8")
    if decision == "reject":
        assert (lark, llg) == ("reject", "reject")
        return
    assert (lark, llg) == ("accept", "accept")
    if decision == "reject-value":
        with pytest.raises(ValidationError) as info:
            grammar.parse_json(text)
        assert info.value.engine == "json"
        number = text[info.value.column - 1 :].split("]")[0]  # these files hold one number on one line
        assert math.isinf(float(number))
    else:
        assert grammar.parse_json(text) == json.loads(text)


# -- whitespace runs are bounded ------------------------------------------------------------------------


def whitespace_bound(grammar: constrain.Grammar) -> int:
    """The longest whitespace run the grammar admits between two tokens, found by asking both engines."""
    longest = 0
    for n in range(1, 200):
        text = "[1," + " " * n + "2]"
        lark_ok = lark_verdict(grammar, text) == "accept"
        assert lark_ok == grammar.matches(text)
        if not lark_ok:
            break
        longest = n
    return longest


def test_whitespace_runs_are_bounded_and_both_engines_stop_at_the_same_byte(grammar: constrain.Grammar) -> None:
    bound = whitespace_bound(grammar)
    assert 16 <= bound < 200
    text = "[1," + " " * (bound + 1) + "2]"
    lark_error = pytest.raises(ValidationError, grammar.parse, text).value
    llg_error = grammar.llg_error(text)
    assert llg_error is not None
    assert lark_error.offset == llg_error.offset == len("[1,") + bound
    # pretty-printing with two-space indentation fits up to this depth
    depth = (bound - 1) // 2
    nested: object = 1
    for _ in range(depth):
        nested = [nested]
    pretty = json.dumps(nested, indent=2)
    assert grammar.matches(pretty) and grammar.parse_json(pretty) == nested


# -- typed results --------------------------------------------------------------------------------------


class Item(pydantic.BaseModel):
    name: str
    qty: int
    tags: list[str] = []


def test_parse_json_with_model(grammar: constrain.Grammar) -> None:
    item = grammar.parse_json('{"name": "bolt", "qty": 3, "tags": ["m4"]}', Item)
    assert item == Item(name="bolt", qty=3, tags=["m4"])
    assert grammar.parse_json("[1, 2]", list[int]) == [1, 2]


def test_parse_json_model_errors_list_every_path(grammar: constrain.Grammar) -> None:
    with pytest.raises(ValidationError) as info:
        grammar.parse_json('{"name": 5, "qty": "many", "tags": ["a", 7]}', Item)
    message = str(info.value)
    assert info.value.engine == "pydantic"
    for path in ("/name", "/qty", "/tags/1"):
        assert path in message
    assert message.startswith("3 schema error(s)")


def test_parse_json_refuses_a_syntax_error_before_the_model(grammar: constrain.Grammar) -> None:
    with pytest.raises(ValidationError) as info:
        grammar.parse_json('{"name": "bolt",}', Item)
    assert info.value.engine in ("llguidance", "lark")
    assert info.value.offset == len('{"name": "bolt",')


def test_deep_nesting_is_a_validation_error_not_a_crash(grammar: constrain.Grammar) -> None:
    text = "[" * 5000 + "]" * 5000
    assert grammar.matches(text)
    with pytest.raises(ValidationError, match="too deep"):
        grammar.parse_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@given(json_values, st.sampled_from([None, 0, 2]), st.booleans())
@settings(max_examples=120, deadline=None)
def test_dumped_values_round_trip(value: object, indent: int | None, ascii_only: bool) -> None:
    grammar = constrain.load_grammar("json")
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert grammar.matches(text)
    assert grammar.parse_json(text) == json.loads(text)
