"""``Grammar``: loading, the packaged catalog, and validation errors located exactly (byte offset, line,
column, expected, excerpt with caret), computed from the input rather than written down."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constrain
from constrain import Grammar, GrammarError, InputError, ValidationError
from constrain.engines import llg_engine
from constrain.grammar import DEFAULT_MAX_BYTES

JSON = constrain.load_grammar("json")


def char_position(text: str, index: int) -> tuple[int, int, int]:
    """(byte offset, line, column) of character ``index`` of ``text``."""
    before = text[:index]
    return len(before.encode("utf-8")), before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def caret_target(error: ValidationError) -> str:
    """The character the excerpt's caret points at."""
    source, caret = error.excerpt.split("\n")
    index = caret.index("^")
    return source[index] if index < len(source) else ""


def lark_error(grammar: Grammar, text: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        grammar.parse(text)
    return info.value


# -- located errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,bad",
    [
        ('{"a": [1, 2,, 3]}', ",, 3"),
        ('{\n  "naïve €": [1,\n   2 x]}', "x]"),
        ('[\n\t"日本語", tru]', "]"),  # lark sees the bad token after "tru"
        ('{"k": 1} {', "{"),
    ],
)
def test_both_engines_locate_the_failure(text: str, bad: str) -> None:
    llg = JSON.llg_error(text)
    assert llg is not None and llg.engine == "llguidance"
    data = text.encode("utf-8")
    # llguidance's offset is the first refused byte: everything before it is a valid prefix
    assert llg_engine.Matcher(JSON.text).prefix_ok(data) == llg.offset
    index = len(data[: llg.offset].decode("utf-8", errors="ignore"))
    assert (llg.offset, llg.line, llg.column) == char_position(text, index)
    assert caret_target(llg) == (text[index] if index < len(text) else "").replace("\t", " ")
    lark = lark_error(JSON, text)
    assert lark.engine == "lark" and lark.line is not None and lark.column is not None
    lark_index = text.rindex(bad) + (1 if bad.startswith(",,") else 0) if bad != "{" else text.rindex("{")
    if bad == "]":
        lark_index = text.index("tru")
    assert (lark.offset, lark.line, lark.column) == char_position(text, lark_index)
    assert lark.expected


def test_validate_reports_the_engine_that_refused() -> None:
    # leading whitespace under %ignore: lark accepts, llguidance refuses
    ignore = Grammar('start: "a" "b"\n%ignore " "\n')
    with pytest.raises(ValidationError) as info:
        ignore.validate(" a b")
    assert info.value.engine == "llguidance" and info.value.offset == 0
    assert ignore.validate("a b").data == "start"
    # a lazy quantifier: llguidance accepts "aa", lark's lexer stops after one "a"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = Grammar("start: A\nA: /a+?/\n")
        assert lazy.matches("aa")
        with pytest.raises(ValidationError) as info:
            lazy.validate("aa")
    assert info.value.engine == "lark"


def test_multibyte_failure_inside_a_character() -> None:
    grammar = Grammar('start: "a\u00e9"\n')  # é = C3 A9; è = C3 A8 shares the first byte
    text = "a\u00e8"
    error = grammar.llg_error(text)
    assert error is not None
    assert error.offset == len("a".encode()) + 1  # the lead byte C3 is admitted, A8 is not
    assert (error.line, error.column) == (1, 2)  # the column names the character it falls in
    assert error.to_dict()["offset"] == error.offset
    lark = lark_error(grammar, text)
    assert (lark.offset, lark.column) == (0, 1)  # lark-python refuses the whole token "aé" where it starts


def test_end_of_input_error_points_past_the_last_character() -> None:
    text = '{"a": ['
    for error in (JSON.llg_error(text), lark_error(JSON, text)):
        assert error is not None
        assert (error.offset, error.line, error.column) == char_position(text, len(text))
        assert "end of input" in error.reason


def test_excerpt_of_a_long_line_keeps_the_caret_on_the_failure() -> None:
    text = "[" + ", ".join(str(i) for i in range(200)) + ", x]"
    error = JSON.llg_error(text)
    assert error is not None
    assert caret_target(error) == "x"
    assert error.excerpt.split("\n")[0].startswith("...")
    assert caret_target(lark_error(JSON, text)) == "x"


def test_to_dict_is_json_serialisable_and_complete() -> None:
    error = lark_error(JSON, "[1,]")
    record = json.loads(json.dumps(error.to_dict()))
    assert set(record) >= {"message", "offset", "line", "column", "expected", "engine", "excerpt", "type"}
    assert record["type"] == "ValidationError"


mutations = st.tuples(st.integers(min_value=0, max_value=60), st.sampled_from(list(',:[]{}"x 1\\\u00e9')))


@given(
    st.recursive(st.integers() | st.text(max_size=4) | st.booleans(), lambda c: st.lists(c, max_size=3), max_leaves=8),
    mutations,
)
@settings(max_examples=150, deadline=None)
def test_mutated_json_engines_agree_and_errors_are_consistent(value: object, mutation: tuple[int, str]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    at, char = mutation
    at = min(at, len(text))
    mutated = text[:at] + char + text[at:]
    llg = JSON.llg_error(mutated)
    try:
        JSON.parse(mutated)
        lark_ok = True
    except ValidationError as exc:
        lark_ok = False
        assert 0 <= (exc.offset or 0) <= len(mutated.encode())
        assert exc.excerpt
    assert lark_ok == (llg is None)
    if llg is not None:
        assert llg_engine.Matcher(JSON.text).prefix_ok(mutated.encode()) == llg.offset


# -- input limits and types --------------------------------------------------------------------------------


def test_oversized_input_is_an_input_error_in_every_method() -> None:
    grammar = Grammar('start: A\nA: /[a]{1,100}/\n', max_bytes=16)
    text = "a" * 17
    for method in (grammar.parse, grammar.matches, grammar.validate, grammar.llg_error, grammar.parse_typed):
        with pytest.raises(InputError) as info:
            method(text)
        assert info.value.offset == 16 and "17 bytes" in str(info.value)
    assert grammar.matches("a" * 16)


def test_ten_megabytes_against_the_default_limit() -> None:
    text = "[" + "1," * (5 * 1024 * 1024) + "1]"
    assert len(text.encode()) > DEFAULT_MAX_BYTES
    with pytest.raises(InputError):
        JSON.validate(text)


def test_non_string_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="bytes"):
        JSON.matches(b"[]")  # type: ignore[arg-type]


# -- loading --------------------------------------------------------------------------------------------------


def test_empty_grammar_text_is_refused() -> None:
    with pytest.raises(GrammarError):
        Grammar("   \n")


def test_unknown_packaged_name_lists_the_known_ones() -> None:
    with pytest.raises(GrammarError) as info:
        constrain.load_grammar("no/such/grammar")
    assert "json" in str(info.value)


def test_grammar_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        constrain.load_grammar(tmp_path / "missing.lark")
    bad = tmp_path / "bad.lark"
    bad.write_bytes(b'start: "a"\n// caf\xe9\n')
    with pytest.raises(InputError) as info:
        constrain.load_grammar(bad)
    assert info.value.offset == len(b'start: "a"\n// caf')
    good = tmp_path / "good.lark"
    good.write_text('// two letters\n// parser: earley\nstart: "a" "b"\n', encoding="utf-8")
    grammar = constrain.load_grammar(good)
    assert grammar.description == "two letters" and grammar.parser == "earley"
    assert grammar.validate("ab").data == "start"


def test_broken_grammar_raises_on_use_with_diagnostics() -> None:
    grammar = Grammar('start: a\na: "x" missing\n')
    with pytest.raises(GrammarError) as info:
        grammar.parse("x")
    located = {(d.engine, d.line, d.column) for d in info.value.diagnostics}
    assert ("lark", 2, 8) in located  # lark names the undefined rule where it is used
    assert "missing" in str(info.value)


def test_catalog_names_and_descriptions() -> None:
    infos = constrain.available_grammars()
    names = [info.name for info in infos]
    assert "json" in names and names == sorted(names)
    for info in infos:
        assert info.description, info.name
        assert info.path.read_text(encoding="utf-8").startswith("//")
        assert not any(part.startswith("_") for part in info.name.split("/"))
        assert constrain.load_grammar(info.name).name == info.name


def test_load_grammar_is_cached_and_equal_by_text() -> None:
    assert constrain.load_grammar("json") is constrain.load_grammar("json")
    same = Grammar(JSON.text, name="copy")
    assert same == JSON and hash(same) == hash(JSON)


def test_parser_choice() -> None:
    assert JSON.parser == "lalr"
    assert Grammar(JSON.text, parser="earley").parser == "earley"
    ambiguous = 'start: a | b\na: "x"\nb: "x"\n'
    assert Grammar(ambiguous).parser == "earley"
    with pytest.raises(GrammarError):
        Grammar(ambiguous, parser="lalr").parse("x")


# -- typed results and sampling -------------------------------------------------------------------------


def test_with_transformer_gives_typed_values() -> None:
    grammar = Grammar('start: INT ("+" INT)*\nINT: /[0-9]{1,9}/\n')

    class Sum(lark.Transformer):  # type: ignore[type-arg]
        def start(self, items: list[lark.Token]) -> int:
            return sum(int(t) for t in items)

    typed = grammar.with_transformer(Sum())
    assert typed.parse_typed("1+2+39") == 42
    assert grammar.with_transformer(lambda tree: len(tree.children)).parse_typed("1+2") == 2
    with pytest.raises(ValidationError):
        typed.parse_typed("1+")
    assert isinstance(grammar.parse_typed("7"), lark.Tree)  # no typer: the tree


def test_sample_is_deterministic_and_valid() -> None:
    first = JSON.sample(8, seed=11)
    assert first == JSON.sample(8, seed=11)
    assert len(first) == 8
    for text in first:
        JSON.validate(text)


def test_lalr_build_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from constrain.engines import lark_engine

    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    text = 'start: WORD ("," WORD)*\nWORD: /[a-z]{1,8}/\n'
    first = lark_engine.build(text, "lalr")
    (cached,) = tmp_path.iterdir()
    again = lark_engine.build(text, "lalr")  # loaded from the file lark wrote
    assert list(tmp_path.iterdir()) == [cached]
    assert first.parse("a,bc") == again.parse("a,bc")
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", "off")
    assert lark_engine.cache_dir() is None
    lark_engine.build(text.replace("8", "9"), "lalr")
    assert list(tmp_path.iterdir()) == [cached]
