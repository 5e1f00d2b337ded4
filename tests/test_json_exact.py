"""Exactness of the constructs that let more schemas compile without widening (issue #13, point 3).

Each test compares the generation grammar (llguidance, the engine providers run) with the schema's own
validator on every small instance in generation form (declared key order, compact, keys without
escapes): the grammar must accept exactly the conforming ones.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.errors import ConstrainError
from constrain.json_schema import grammar, widenings
from constrain.json_schema._compiler.objects import _exclusion_regex
from constrain.json_schema import _regex


def _valid(g, text: str) -> bool:
    """The validator's verdict (ECMA-262 patterns, every format), any key order."""
    try:
        g.parse_json(text)
    except ConstrainError:
        return False
    return True


def _agree(schema: dict, instances: list) -> None:
    g = grammar(schema, declared_keys=False)  # the schema's whole language (the default leaves out undeclared keys)
    assert widenings(g) == []
    for value in instances:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert g.matches(text) == _valid(g, text), (schema, text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("ab\"é", max_size=4), max_size=6))
def test_key_exclusion_is_the_complement_of_the_names(words: list[str]) -> None:
    rx = re.compile(_exclusion_regex(words).replace("\\x22", '"'))
    for n in range(5):
        for chars in itertools.product('ab"é', repeat=n):
            s = "".join(chars)
            assert (rx.fullmatch(s) is not None) == (s not in words and '"' not in s), (words, s)


def _maps(keys: list[str]) -> list[dict]:
    values = [1, "x", True]
    out: list[dict] = [{}]
    for k in keys:
        out += [{k: v} for v in values]
    out += [{a: 1, b: "x"} for a, b in itertools.permutations(keys[:4], 2)]
    return out


KEYS = ["", "a", "ab", "a-b", "x1", "Z", "a b", "é", "a\u2028"]


@pytest.mark.parametrize(
    "pattern",
    [".*", "", "^", "a*", "^[a-z]+$", "^[a-z0-9]*$", "^[^-]+$", "^.+$", "^.*$", "[a-z]", "[0-9]+", "-"],
)
@pytest.mark.parametrize("additional", [True, {"type": "string"}, {"type": "boolean"}])
def test_pattern_properties_next_to_additional_properties(pattern: str, additional: object) -> None:
    schema = {"type": "object", "patternProperties": {pattern: {"type": "integer"}}, "additionalProperties": additional}
    _agree(schema, _maps(KEYS))


def test_class_run_keys_with_declared_names() -> None:
    schema = {
        "type": "object",
        "properties": {"ab": {"type": "string"}},
        "patternProperties": {"^[a-z]+$": {"type": "integer"}},
        "additionalProperties": {"type": "boolean"},
    }
    _agree(schema, _maps(["a", "b", "A", "a-b"]) + [{"ab": "x"}, {"ab": 1}, {"ab": "x", "a": 1}, {"ab": "x", "Q": True}])


@pytest.mark.parametrize(
    "pattern",
    ["^(a+)+$", "^(a*)+$", "^(a+)*$", "^([ab]+b)+$", "^([ab]*b)*$", "^(\\.[0-9]+)+\\.?$", "^a(-+[ab]+)*$", "^((?:-|\\.+)[ab]+)*$", "^(a[^a]*)*$"],
)
def test_rewritten_and_fenced_repetitions_match_like_the_pattern(pattern: str) -> None:
    strings = ["".join(t) for n in range(5) for t in itertools.product("ab.-", repeat=n)] + ["1", ".12", ".1.2.", "a-b", "a--ab"]
    _agree({"type": "string", "pattern": pattern}, strings)


@pytest.mark.parametrize("pattern", ["^(a+b?)+$", "^(\\w+\\s?)*$", "^((ab)+)*$"])
def test_ambiguous_nested_repetitions_stay_refused(pattern: str) -> None:
    with pytest.raises(_regex.PatternError):
        _regex.translate(pattern)


@pytest.mark.parametrize(
    ("pattern", "lo", "hi"),
    [("^[A-Za-z][A-Za-z0-9-]*$", 0, 4), ("^ab[0-9]*c$", 3, 5), ("^x[0-9]+$", 3, None), ("[a-z]{3}", 3, 3), ("^[0-9]{2,}-.$", 0, 5)],
)
def test_length_bounds_around_one_repetition(pattern: str, lo: int, hi: int | None) -> None:
    schema: dict = {"type": "string", "pattern": pattern, "minLength": lo}
    if hi is not None:
        schema["maxLength"] = hi
    strings = ["".join(t) for n in range(5) for t in itertools.product("aB1-", repeat=n)] + ["abc", "c11c", "ab12c", "ab1c"]
    strings += ["x" + "".join(t) for n in (3, 4, 5) for t in itertools.product("1a", repeat=n)]
    _agree(schema, strings)


@pytest.mark.parametrize(
    "negated",
    [{"required": ["a", "b"]}, {"allOf": [{"required": ["a"]}, {"required": ["b", "c"]}]}, {"required": ["a"], "properties": {"a": {}}}],
)
def test_not_required(negated: dict) -> None:
    schema = {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}, "not": negated}
    objects = [dict(zip(keys, itertools.repeat(1))) for n in range(4) for keys in itertools.combinations("abc", n)]
    _agree(schema, objects + [{"d": 1}, "s", 1, None, [1]])


def test_widened_pattern_properties_admit_either_schema() -> None:
    """Dropping patternProperties (widen) must not leave additionalProperties' schema on pattern keys."""
    schema = {  # a lookahead after the start: no automaton reads it, the validator's Python re does
        "type": "object",
        "patternProperties": {"^\\.(?=[a-z])[^.]+$": {"type": "string"}},
        "additionalProperties": {"type": "string", "pattern": "^\\.[^.]+$"},
    }
    g = grammar(schema, widen=True)
    assert ("patternProperties", "#/patternProperties") in widenings(g)
    assert g.matches('{".js":"application/javascript","x":".y"}')
    assert g.parse_json('{".js":"application/javascript","x":".y"}') == {".js": "application/javascript", "x": ".y"}
    with pytest.raises(ConstrainError):
        g.parse_json('{"x":"application/javascript"}')


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "minProperties": 1},
        {"type": "object", "minProperties": 1, "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
        {"type": "object", "minProperties": 1, "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
        {"type": "object", "minProperties": 1, "properties": {"a": {"type": "integer"}}, "patternProperties": {"^[a-z]+$": {"type": "integer"}}},
    ],
)
def test_min_properties_one(schema: dict) -> None:
    # keys in declared order (the generation spelling); "Z" is an additional property
    objects = [dict(zip(keys, itertools.repeat(1))) for n in range(4) for keys in itertools.combinations(["Z", "a", "b"], n)]
    _agree(schema, objects + [{"a": "x"}, {"a": 1, "b": "x"}, {"a": 1, "Z": 2, "b": 3}])
