"""Composition: `// include: NAME` (override) and `// include: NAME as PREFIX` (namespaced embedding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lark
import pytest
from lark.visitors import merge_transformers

import constrain
from constrain.grammar import _compose
from constrain.grammar._packaged import catalog
from constrain.cli import main
from constrain.grammar._tokens import tokenize

INNER = r"""// Inner: a toy grammar whose names also appear inside its strings, regexes and comments
// parser: lalr
start: item ("," item)*
?item: pair
     | WORD -> word
!pair: _key "=" VALUE   // pair: _key VALUE
_key: /k[0-9]{1,3}/ | "item_key"
VALUE: /"[^"]{0,8}"/ | "start" | "pair"
WORD: /item|pair|VALUE/
UNUSED: "x"
unused: UNUSED
%import common.WS
%import common (DIGIT, LETTER)
%ignore WS
"""


def loader(sources: dict[str, str]):  # type: ignore[no-untyped-def]
    def load(name: str) -> str:
        if name not in sources:
            raise constrain.GrammarError(f"no grammar named {name!r}")
        return sources[name]

    return load


def literals(text: str) -> list[str]:
    return sorted(t.text for t in tokenize(text) if t.kind in ("string", "regex"))


def definitions(text: str) -> set[str]:
    return {b.name for b in _compose._split_blocks(text) if b.kind == "definition" and b.name}


def test_embedding_renames_names_only() -> None:
    outer = '// Outer\n// include: inner as inner\nstart: "[" inner__item (";" inner__item)* "]"\n'
    text = _compose.expand(outer, loader({"inner": INNER}))
    kept = {"item", "pair", "_key", "VALUE", "WORD"}
    assert definitions(text) == {"start"} | {_compose.mangle_name(n, "inner") for n in kept}
    assert {_compose.mangle_name(n, "inner") for n in kept} == {
        "inner__item", "inner__pair", "_inner__key", "INNER__VALUE", "INNER__WORD"
    }
    # every string and regex of the kept definitions is byte-for-byte the same
    inner_kept = "\n".join(b.text for b in _compose._split_blocks(INNER) if b.name in kept)
    assert literals(text) == sorted(literals(inner_kept) + literals(outer))
    assert "%ignore" not in text and "UNUSED" not in text and "unused" not in text
    assert text.splitlines()[0] == "// Outer"  # the including grammar's header stays first
    assert "-> inner__word" in text and "?inner__item" in text and "!inner__pair" in text

    parser = lark.Lark(text, parser="lalr")
    tree = parser.parse('[k1="x";item;item_key=start;k9=pair]')
    assert [t.data for t in tree.children] == ["inner__pair", "inner__word", "inner__pair", "inner__pair"]
    assert tree.children[0].children[-1].type == "INNER__VALUE"
    assert constrain.Grammar(text).matches('[k1="x";item;item_key=start;k9=pair]')


def test_embedded_start_is_kept_only_when_used() -> None:
    text = _compose.expand("// include: inner as inner\nstart: inner__start\n", loader({"inner": INNER}))
    assert "inner__start" in definitions(text)
    assert constrain.Grammar(text).parse_typed('k1="x",item').children[0].data == "inner__start"


def test_common_imports_are_shared_and_deduplicated() -> None:
    outer = "// include: inner as a\n// include: inner as b\n%import common.WS\nstart: a__item b__item\n"
    text = _compose.expand(outer, loader({"inner": INNER}))
    imports = [line for line in text.splitlines() if line.startswith("%import")]
    assert sorted(imports) == sorted({"%import common.WS", "%import common (DIGIT, LETTER)"})
    assert {"a__item", "b__item", "A__VALUE", "B__VALUE"} <= definitions(text)


def test_override_include_keeps_working() -> None:
    base = '// Base\n// parser: lalr\nstart: greeting NAME\ngreeting: "hello "\nNAME: /[a-z]{1,8}/\n'
    dialect = '// Dialect: a different greeting\n// include: base\ngreeting: "hi " | "hey "\n'
    text = _compose.expand(dialect, loader({"base": base}))
    grammar = constrain.Grammar(text)
    assert grammar.matches("hey bob") and not grammar.matches("hello bob")
    assert text.splitlines()[0] == "// Dialect: a different greeting"
    assert text.count("greeting:") == 1


@pytest.mark.parametrize(
    ("outer", "sources", "message"),
    [
        ("// include: a\nstart: x\n", {"a": "// include: b\nx: \"1\"\n", "b": "// include: a\ny: \"2\"\n"}, "cycle"),
        ("// x\n// include: nope as n\nstart: n__x\n", {}, "line 2"),
        ("// include: a as JSON\nstart: \"x\"\n", {"a": "x: \"1\"\n"}, "prefix"),
        ("// include: a as p\n// include: a as p\nstart: p__x\n", {"a": "x: \"1\"\n"}, "twice"),
    ],
)
def test_include_errors(outer: str, sources: dict[str, str], message: str) -> None:
    with pytest.raises(constrain.GrammarError, match=message):
        _compose.expand(outer, loader(sources))


# -- a user DSL embedding the packaged JSON grammar ---------------------------------------------------

SETTINGS_DSL = """// Settings: `set NAME = <any JSON value>` lines
// parser: earley
// include: json as json
start: assignment (_NL assignment)* _NL?
assignment: "set " NAME " = " json__value
NAME: /[a-z][a-z0-9_.]{0,31}/
_NL: /\\n/
"""


class JsonValues(lark.Transformer):
    """The packaged JSON grammar's tree as Python values (used under the ``json`` namespace)."""

    def object(self, members: list[tuple[str, Any]]) -> dict[str, Any]:
        return dict(members)

    def member(self, children: list[Any]) -> tuple[str, Any]:
        return json.loads(children[0]), children[1]

    def array(self, items: list[Any]) -> list[Any]:
        return list(items)


class Settings(lark.Transformer):
    def start(self, assignments: list[tuple[str, Any]]) -> dict[str, Any]:
        return dict(assignments)

    def assignment(self, children: list[Any]) -> tuple[str, Any]:
        return str(children[0]), _scalar(children[1])


def _scalar(value: Any) -> Any:
    if isinstance(value, lark.Token):
        return json.loads(value)
    if isinstance(value, dict):
        return {k: _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    return value


@pytest.fixture()
def settings_grammar(tmp_path: Path) -> constrain.Grammar:
    path = tmp_path / "settings.lark"
    path.write_text(SETTINGS_DSL, encoding="utf-8")
    return constrain.load_grammar(path).with_transformer(merge_transformers(Settings(), json=JsonValues()))


def test_json_embedding_is_typed(settings_grammar: constrain.Grammar) -> None:
    text = 'set retries = 3\nset hosts = ["a", "b"]\nset limits = {"cpu": 1.5, "on": true, "x": null}\n'
    assert settings_grammar.parse_typed(text) == {
        "retries": 3, "hosts": ["a", "b"], "limits": {"cpu": 1.5, "on": True, "x": None}
    }
    assert settings_grammar.description == "Settings: `set NAME = <any JSON value>` lines"
    for bad in ("set x = ", "set x = [1,]", "set x = {'a': 1}", "set X = 1"):
        assert not settings_grammar.matches(bad)
        with pytest.raises(constrain.ValidationError):
            settings_grammar.parse(bad)


def test_json_embedding_passes_check_and_the_engines_agree(settings_grammar: constrain.Grammar, tmp_path: Path) -> None:
    assert [d for d in settings_grammar.check() if d.severity == "error"] == []
    assert main(["check", str(tmp_path / "settings.lark")]) == 0
    for text in settings_grammar.sample(40, seed=5):
        settings_grammar.parse(text)  # every llguidance walk parses in Lark


def test_with_transformer_errors_are_located(tmp_path: Path) -> None:
    class Strict(Settings):
        def assignment(self, children: list[Any]) -> tuple[str, Any]:
            if str(children[0]).startswith("_"):
                raise ValueError("names may not start with '_'")
            return super().assignment(children)

    path = tmp_path / "settings.lark"
    path.write_text(SETTINGS_DSL.replace("/[a-z]", "/[a-z_]"), encoding="utf-8")
    grammar = constrain.load_grammar(path).with_transformer(merge_transformers(Strict(), json=JsonValues()))
    text = "set ok = 1\nset _bad = 2\n"
    with pytest.raises(constrain.ValidationError) as info:
        grammar.parse_typed(text)
    assert (info.value.line, info.value.column, info.value.offset) == (2, 1, text.index("set _bad"))
    assert "may not start" in str(info.value)


def test_a_plain_function_transformer_raises_a_located_error(tmp_path: Path) -> None:
    """A plain function (not a lark Transformer) that raises is a typed error at the text's start, not an
    unlocated ``ValueError``; one that raises a ConstrainError keeps it."""
    def no_blanks(tree: Any) -> Any:
        if any(str(token).strip() == "" for token in tree.scan_values(lambda v: True)):
            raise ValueError("blank value")
        return len(tree.children)

    grammar = constrain.Grammar('start: WORD (" " WORD)*\nWORD: /[a-z]+/\n').with_transformer(no_blanks)
    assert grammar.parse_typed("ab cd") == 2
    broken = grammar.with_transformer(lambda tree: int("x" + str(tree.children[0])))
    with pytest.raises(constrain.ValidationError) as info:
        broken.parse_typed("ab cd")
    assert (info.value.line, info.value.column, info.value.offset) == (1, 1, 0)
    assert info.value.engine == "semantic" and "invalid literal" in str(info.value)
    refusing = grammar.with_transformer(lambda tree: (_ for _ in ()).throw(constrain.InputError("mine")))
    with pytest.raises(constrain.InputError, match="mine"):
        refusing.parse_typed("ab")


# -- embedding a whole packaged DSL, and a SQL expression ---------------------------------------------


def test_embedding_a_whole_dsl(tmp_path: Path) -> None:
    path = tmp_path / "jobs.lark"
    path.write_text('// Jobs\n// include: dsl/cron as cron\nstart: "run " NAME " at " cron__start\n'
                    'NAME: /[a-z]{1,16}/\n', encoding="utf-8")
    cron = constrain.load_grammar("dsl/cron")
    from constrain.dsl.cron import CronTransformer

    jobs = constrain.load_grammar(path).with_transformer(
        merge_transformers(_JobTransformer(), cron=CronTransformer())
    )
    assert jobs.parse_typed("run backup at 0 3 * * SUN") == ("backup", cron.parse_typed("0 3 * * SUN"))
    assert not jobs.matches("run backup at 0 24 * * *")


class _JobTransformer(lark.Transformer):
    def start(self, children: list[Any]) -> tuple[str, Any]:
        return str(children[0]), children[1]


SQL_RULE_DSL = """// Alert rules whose condition is a SQL expression
// parser: earley
// include: sql/sqlite as sql
start: "when " sql__expr " notify " NAME
NAME: /[a-z]{1,16}/
"""


def test_an_embedded_grammar_keeps_its_lexer_order_under_lalr(tmp_path: Path) -> None:
    """sql/sqlite's names are unbounded and tried after its keywords (``// lexer-last:``); embedded under a
    prefix, the order travels with the mangled names, so LALR still reads NOT as a keyword, notable as a name."""
    if "sql/sqlite" not in catalog():
        pytest.skip("sql/sqlite is not packaged in this checkout")
    path = tmp_path / "alerts.lark"
    path.write_text(SQL_RULE_DSL.replace("// parser: earley\n", ""), encoding="utf-8")
    grammar = constrain.load_grammar(path)
    assert grammar.parser == "lalr"
    assert "// lexer-last: SQL__QUALIFIER" in grammar.text and "_SQL__TRAIL" in grammar.text.splitlines()[1]
    for text in ["when NOT a > 1 notify ops", "when notable > 1 notify ops", "when NOT notable notify x"]:
        assert grammar.matches(text), text
        grammar.parse(text)


def test_embedding_a_sql_expression(tmp_path: Path) -> None:
    if "sql/sqlite" not in catalog():
        pytest.skip("sql/sqlite is not packaged in this checkout")
    path = tmp_path / "alerts.lark"
    path.write_text(SQL_RULE_DSL, encoding="utf-8")
    grammar = constrain.load_grammar(path)
    assert grammar.parser == "earley"
    assert len(definitions(grammar.text)) < len(definitions(constrain.load_grammar("sql/sqlite").text))  # unreached dropped
    assert [d for d in grammar.check() if d.severity == "error"] == []
    good = ["when a > 1 AND b LIKE 'x%' notify ops", "when count(*) >= 3 OR name IS NULL notify oncall",
            "when CASE WHEN x THEN 1 ELSE 2 END = 1 notify me", "when a BETWEEN 1 AND 2 notify x",
            "when t.a || 'x' notify abc"]
    for text in good:
        assert grammar.matches(text), text
        grammar.parse(text)
    for text in ["when a > notify x", "when SELECT 1 notify x", "when a = 1 notify X"]:
        assert not grammar.matches(text)
        with pytest.raises(constrain.ValidationError):
            grammar.parse(text)
