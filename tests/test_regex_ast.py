"""The shared regex AST (``constrain._regex``): both flavours' parsers agree with Python's ``re`` on the
syntax they share (literals, escapes, classes, groups, alternation, greedy quantifiers; ``\\d \\w``
read as ASCII, which is what ECMA-262 means by them and what Python means under the ``a`` flag)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain._regex import ecma, python_re
from constrain._regex.nodes import AltNode, CharNode, Node, RepNode, SeqNode


def _as_python(node: Node) -> str:
    """The node as a Python regex that spells every set as explicit code-point ranges."""
    if isinstance(node, CharNode):
        if not node.chars:
            return "(?!)"
        return "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in node.chars) + "]"
    if isinstance(node, SeqNode):
        return "".join(f"(?:{_as_python(item)})" for item in node.items)
    if isinstance(node, AltNode):
        return "(?:" + "|".join(_as_python(option) for option in node.options) + ")"
    if isinstance(node, RepNode):
        return f"(?:{_as_python(node.body)}){{{node.lo},{'' if node.hi is None else node.hi}}}"
    raise AssertionError(node)


_ATOMS = st.sampled_from(
    ["a", "b", "c", "\\-", "\\.", "é", "\\x41", "\\u00e9", "[a-c]", "[^ab]", "[b-]", "[\\d_]",
     "\\d", "\\w", "\\D"]
)
_QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,2}", "{1,}"])


def _regexes() -> st.SearchStrategy[str]:
    quantified = st.tuples(_ATOMS, _QUANTIFIERS).map("".join)
    return st.recursive(
        quantified,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda parts: "(?:" + "|".join(parts) + ")"),
            st.tuples(inner, _QUANTIFIERS).map(lambda p: f"(?:{p[0]}){p[1]}"),
        ),
        max_leaves=6,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regex=_regexes(), probes=st.lists(st.text(alphabet="abcAé-._09١", max_size=6), min_size=10, max_size=20))
def test_both_flavours_parse_the_shared_syntax_as_python_re_reads_it(regex: str, probes: list[str]) -> None:
    expected = re.compile(regex, re.ASCII)
    from_ecma = re.compile(_as_python(ecma.parse(regex)))
    from_python = re.compile(_as_python(python_re.parse("(?a)" + regex)))
    for text in probes:
        matches = bool(expected.fullmatch(text))
        assert bool(from_ecma.fullmatch(text)) == matches, (regex, text)
        assert bool(from_python.fullmatch(text)) == matches, (regex, text)


def test_literal_characters_are_marked_as_such_in_both_flavours() -> None:
    for node in (ecma.parse("a\\.[b]"), python_re.parse("a\\.")):
        assert isinstance(node, SeqNode)
        assert [item.literal for item in node.items if isinstance(item, CharNode)][:2] == [True, True]
    assert not python_re.parse("(?i)-").literal  # type: ignore[union-attr]  # case-folded: a class
    assert ecma.parse("a") == CharNode(((0x61, 0x61),))  # ``literal`` does not take part in equality
