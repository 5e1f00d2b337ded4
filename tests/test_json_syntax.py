"""The lexer-friendly Lark grammar ``validate`` uses for JSON accepts exactly what ``grammars/json.lark`` does.

Differential: JSONTestSuite files (y, n and i), generated JSON in random whitespace layouts (runs up to
and beyond the 64-character bound, at every place whitespace may or may not go), and byte-level
mutations; for each text both Lark grammars give the same verdict, the same tree, and ``validate``
(llguidance + the fast grammar) gives the same verdict and error offset as llguidance + the packaged
grammar with positions.
"""

from __future__ import annotations

import json

import pytest
from conftest import corpus
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain import ValidationError
from constrain.grammar import JSONGrammar
from constrain.grammar._json_syntax import syntax_parser

import lark


@pytest.fixture(scope="module")
def grammar() -> JSONGrammar:
    g = constrain.load_grammar("json")
    assert isinstance(g, JSONGrammar)
    return g


def _strip_meta(tree: lark.Tree | lark.Token) -> list[object]:
    """The tree as a flat list (rule names, token types and texts, closing marks); iterative, as
    JSONTestSuite nests 500 deep."""
    out: list[object] = []
    stack: list[object] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, lark.Token):
            out.append((node.type, str(node)))
        elif isinstance(node, lark.Tree):
            out.append(str(node.data))
            stack.append(")")
            stack.extend(reversed(node.children))
        else:
            out.append(node)
    return out


def _same(grammar: JSONGrammar, text: str) -> None:
    try:
        packaged = grammar.parse(text)
    except ValidationError:
        packaged = None
    try:
        fast = syntax_parser().parse(text)
    except lark.UnexpectedInput:
        fast = None
    assert (packaged is None) == (fast is None), repr(text[:200])
    if packaged is not None:
        assert _strip_meta(packaged) == _strip_meta(fast)  # type: ignore[arg-type]
    # the full pipeline: the same verdict and the same located error as both engines on the packaged grammar
    expected = grammar.llg_error(text)
    if expected is None and packaged is None:
        expected = pytest.raises(ValidationError, grammar.parse, text).value
    if expected is None:
        grammar.validate(text)
    else:
        got = pytest.raises(ValidationError, grammar.validate, text).value
        assert (got.engine, got.offset, got.line, got.column) == (expected.engine, expected.offset, expected.line, expected.column)


def test_jsontestsuite(grammar: JSONGrammar) -> None:
    files = sorted(corpus("jsontestsuite", "test_parsing").glob("*.json"))
    assert len(files) > 300
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        _same(grammar, text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(" \t\n\"\\é{}[],:", max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text("ab \"", max_size=3), children, max_size=3),
    max_leaves=10,
)
WHITESPACE = st.one_of(
    st.just(""),
    st.text(" \t\n\r", min_size=1, max_size=3),
    st.integers(60, 70).map(lambda n: " " * n),
    st.integers(62, 66).map(lambda n: "\n" + "\t" * (n - 1)),
)


def _layout(value: object, draw: st.DrawFn) -> str:
    ws = lambda: draw(WHITESPACE)  # noqa: E731
    if isinstance(value, list):
        if not value:
            return "[" + ws() + "]"
        return "[" + ",".join(ws() + _layout(v, draw) + ws() for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{" + ws() + "}"
        return "{" + ",".join(ws() + json.dumps(k) + ws() + ":" + ws() + _layout(v, draw) + ws() for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def laid_out(draw: st.DrawFn) -> str:
    value = draw(json_values)
    text = draw(WHITESPACE) + _layout(value, draw) + draw(WHITESPACE)
    if draw(st.booleans()):  # a mutation: a byte inserted, dropped or replaced somewhere
        i = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from([" ", "\t", "\n", ",", ":", "]", "}", "\"", "0", "-", ".", "e", "\\", "\x01", "tru", "nul"]))
        kind = draw(st.sampled_from(["insert", "drop", "replace"]))
        text = text[:i] + piece + text[i:] if kind == "insert" else text[:i] + (piece if kind == "replace" else "") + text[i + 1 :]
    return text


@given(laid_out())
@settings(max_examples=400, deadline=None)
def test_generated_layouts(text: str) -> None:
    _same(constrain.load_grammar("json"), text)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("where", ["lead", "trail", "after_bracket", "before_comma", "after_colon", "empty_object"])
def test_whitespace_bound_everywhere(grammar: JSONGrammar, n: int, where: str) -> None:
    w = " " * n
    text = {
        "lead": w + "[1]",
        "trail": "[1]" + w,
        "after_bracket": "[" + w + "1]",
        "before_comma": "[1" + w + ",2]",
        "after_colon": '{"a":' + w + "1}",
        "empty_object": "{" + w + "}",
    }[where]
    _same(grammar, text)


def test_validate_tree_is_the_packaged_tree_without_positions(grammar: JSONGrammar) -> None:
    text = '{"a": [1, -2.5e3, true, false, null, "x\\u00e9"], "b": {}}'
    fast, packaged = grammar.validate(text), grammar.parse(text)
    assert _strip_meta(fast) == _strip_meta(packaged)
    assert grammar.parse_json(text) == json.loads(text)
