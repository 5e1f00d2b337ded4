"""Grammar checks: every lint rule fires where it should (line:column computed from the grammar text),
never inside strings or comments, and each error it claims is real (an engine refuses the grammar, or
the two engines disagree on a witness input)."""

from __future__ import annotations

import warnings
from pathlib import Path

import llguidance
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import constrain
from constrain import ConstrainError, Diagnostic, Grammar
from constrain.engines import lark_engine, llg_engine
from constrain.grammar.lint import RULES, TARGETS, check_grammar, lint_text, tokenize


def position(text: str, needle: str, *, last: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the first (or last) occurrence of ``needle`` in ``text``."""
    offset = text.rindex(needle) if last else text.index(needle)
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def lark_accepts(grammar: Grammar, text: str) -> bool:
    try:
        grammar.parse(text)
        return True
    except constrain.ValidationError:
        return False


def engines_refuse(text: str) -> bool:
    """Whether lark-python or llguidance refuses to build the grammar."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grammar = Grammar(text)
        try:
            grammar.parser
        except constrain.GrammarError:
            return True
        try:
            grammar.matches("x")
        except constrain.GrammarError:
            return True
    return False


# (code, grammar text, the offending text the finding must point at, witness)
# witness None: some engine refuses the grammar; a string: lark-python and llguidance disagree on it.
ERROR_CASES: list[tuple[str, str, str, str | None]] = [
    ("lookaround", 'start: A\nA: /(?=a)a/\n', "(?=", None),
    ("lookaround", 'start: A\nA: /a(?<!b)/\n', "(?<!", None),
    ("atomic-group", 'start: A\nA: /(?>a)b/\n', "(?>", None),
    ("backreference", 'start: A\nA: /(a)\\1/\n', "\\1", None),
    ("backreference", 'start: A\nA: /(?P<x>a)(?P=x)/\n', "(?P=x)", None),
    ("inline-flags", 'start: A\nA: /a(?i)b/\n', "(?i)", None),
    ("word-boundary", 'start: A\nA: /a\\b/\n', "\\b", None),
    ("word-boundary", 'start: A\nA: /a\\Bb/\n', "\\B", None),
    ("end-anchor", 'start: A\nA: /a\\Z/\n', "\\Z", None),
    ("end-anchor", 'start: A\nA: /a\\z/\n', "\\z", None),
    ("octal-escape", 'start: A\nA: /\\0/\n', "\\0", None),
    ("unicode-property", 'start: A\nA: /\\p{L}/\n', "\\p{L}", None),
    ("braced-escape", 'start: A\nA: /\\x{41}/\n', "\\x{41}", None),
    ("lazy-quantifier", 'start: A\nA: /a+?/\n', "+?", "aa"),
    ("lazy-quantifier", 'start: A\nA: /"[^"]*?"x?/\n', "*?", None),  # witness-free: located only
    ("possessive-quantifier", 'start: A\nA: /a++a/\n', "++", "aa"),
    ("posix-class", 'start: A\nA: /[[:alpha:]]/\n', "[[:alpha:]]", "a"),
    ("class-set-operation", 'start: A\nA: /[a-z&&b]/\n', "[a-z&&b]", "a"),
    ("class-set-operation", 'start: A\nA: /[a-z--b]/\n', "[a-z--b]", "b"),
    ("regex-flag", 'start: A\nA: /a$/m\n', "m\n", None),
    ("priority", 'start: a\na.2: "x"\n', ".2", None),
    ("priority", 'start: A\nA.-1: "x"\n', ".-1", None),
    ("template", 'start: t{"a"}\nt{x}: x\n', "{x}", None),
    ("template", 'start: t{"a"}\nt{x}: x\n', '{"a"}', None),
    ("brace-repetition", 'start: a{2,3}\na: "x"\n', "{2,3}", None),
    ("rule-options", 'start: a\na[lazy]: "x"\n', "[lazy]", None),
    ("dash-in-name", 'start: my-rule\nmy-rule: "x"\n', "my-rule", None),
    ("unsupported-directive", 'start: "a"\n%declare FOO\n', "%declare", None),
    ("unsupported-directive", 'start: "a"\n%override start: "b"\n', "%override", None),
    ("llguidance-only", 'start: j\nj: %json {\n  "type": "string"\n}\n', "%json", None),
    ("llguidance-only", 'start: "a"\n%llguidance {}\n', "%llguidance", None),
    ("unknown-directive", 'start: "a"\n%frobnicate x\n', "%frobnicate", None),
    ("import", 'start: A\n%import common.FOO -> A\n', "FOO", None),
    ("import", 'start: X\n%import lark.X\n', "lark", None),
    ("import", 'start: INT\n%import common (INT, BOGUS)\n', "BOGUS", None),
    ("empty-literal", 'start: "a" ""\n', '""', None),
]


def _code_of(case: tuple[str, str, str, str | None]) -> str:
    return case[0]


@pytest.mark.parametrize("code,text,needle,witness", ERROR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_error_rule_fires_at_the_offending_text(code: str, text: str, needle: str, witness: str | None) -> None:
    findings = [d for d in lint_text(text) if d.code == code]
    assert findings, f"{code} not reported for {text!r}"
    line, column = position(text, needle)
    assert any((d.line, d.column) == (line, column) for d in findings), (findings, (line, column))
    assert all(d.severity == "error" for d in findings)
    assert any(needle.strip() in d.text for d in findings)


@pytest.mark.parametrize("code,text,needle,witness", ERROR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_error_rule_is_real(code: str, text: str, needle: str, witness: str | None) -> None:
    """An 'error' must be something an engine refuses, or where the engines disagree."""
    if engines_refuse(text):
        return
    assert witness is not None or code == "lazy-quantifier", f"{code}: both engines build {text!r} and no witness given"
    if witness is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grammar = Grammar(text)
        assert lark_accepts(grammar, witness) != grammar.matches(witness)


def test_every_rule_in_the_table_is_exercised() -> None:
    covered = {c[0] for c in ERROR_CASES} | {c[0] for c in WARNING_CASES}
    assert {r.code for r in RULES} <= covered


WARNING_CASES: list[tuple[str, str, str]] = [
    ("regex-flag", 'start: A\nA: /a b/x\n', "x\n"),
    ("unicode-casefold", 'start: "select"i\n', '"select"i'),
    ("unicode-casefold", 'start: A\nA: /[a-k]+/i\n', "/[a-k]+/i"),
    ("unbounded-terminal", 'start: A\nA: /"[^"]*"/\n', "*"),
    ("unbounded-terminal", 'start: A\nA: /x.+/\n', "+"),
    ("unbounded-terminal", 'start: A\nA: /(?:[^"\\\\]|\\\\.){2,}/\n', "{2,}"),
    ("unbounded-ignore", 'start: "a" "b"\n%import common.WS\n%ignore WS\n', "WS\n"),
    ("unbounded-ignore", 'start: "a" "b"\n%ignore SP\nSP: " "+\n', "SP\n"),
    ("unbounded-ignore", 'start: "a" "b"\n%ignore /[ \\t]+/\n', "/[ \\t]+/"),
    ("ignore-at-ends", 'start: "a" "b"\n%ignore " "\n', "%ignore"),
]


@pytest.mark.parametrize("code,text,needle", WARNING_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(WARNING_CASES)])
def test_warning_rule_fires_at_the_offending_text(code: str, text: str, needle: str) -> None:
    findings = [d for d in lint_text(text) if d.code == code]
    assert findings and all(d.severity == "warning" for d in findings)
    line, column = position(text, needle, last=True)
    assert any((d.line, d.column) == (line, column) for d in findings), (findings, (line, column))


@pytest.mark.parametrize(
    "text,witness",
    [
        ('start: "select"i\n', "\u017felect"),  # LATIN SMALL LETTER LONG S
        ('start: "kind"i\n', "\u212aind"),  # KELVIN SIGN
    ],
)
def test_casefold_warning_is_true_in_both_engines(text: str, witness: str) -> None:
    grammar = Grammar(text)
    assert lark_accepts(grammar, witness) and grammar.matches(witness)
    suggestion = next(d for d in lint_text(text) if d.code == "unicode-casefold").message.split("write ")[1].split(" ")[0]
    ascii_only = Grammar(f"start: A\nA: {suggestion}\n")
    assert not ascii_only.matches(witness) and not lark_accepts(ascii_only, witness)
    assert ascii_only.matches(witness.replace("\u017f", "S").replace("\u212a", "K"))


def test_casefold_of_i_makes_the_engines_disagree() -> None:
    grammar = Grammar('start: "in"i\n')
    assert lark_accepts(grammar, "\u0130n") and not grammar.matches("\u0130n")
    assert "disagree" in next(d for d in lint_text('start: "in"i\n') if d.code == "unicode-casefold").message


def test_ignore_at_ends_is_true() -> None:
    grammar = Grammar('start: "a" "b"\n%ignore " "\n')
    assert lark_accepts(grammar, " a b") and not grammar.matches(" a b")
    assert grammar.matches("a b")


CLEAN = [
    'start: "a" B\nB: /[0-9]{1,8}/\n',
    # look-alikes inside strings and comments are not findings
    'start: "(?=x)" "\\\\b" "a.2:" "%declare" C  // (?=x) %declare a.2: /\\b/\n# my-rule: %json\nC: "*?"\n',
    'start: A\nA: /[(?=]+/\n',  # a class holding the characters of a lookaround is not one
    'start: A\nA: /\\(\\?=\\b{1,3}/\n'.replace("\\b", "b"),  # escaped parentheses are literals
    'start: A\nA: /a{2,3}/\n',  # bounded regex repetition is fine
    'start: a ~ 2..3\na: "x"\n',
    '?start: a\n!a: "x" -> alias\n_b: "y"\n%import common.INT\n%import common (WS_INLINE, CNAME)\n',
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_grammars_have_no_findings(text: str) -> None:
    assert lint_text(text) == []


@given(st.text(alphabet=st.sampled_from(list('ab:|"/\\ \n%.?*+{}[]()#i-_09')), max_size=60))
@example("/\\/")  # a regex ending in a lone backslash (found by hypothesis in CI)
@settings(max_examples=200, deadline=None)
def test_tokenizer_covers_every_character_with_positions(text: str) -> None:
    tokens = tokenize(text)
    assert "".join(t.text for t in tokens) == text
    for token in tokens:
        assert (token.line, token.column) == position(text[: token.offset] + "\x00", "\x00")
    lint_text(text)  # never raises on arbitrary input


# -- engines -----------------------------------------------------------------------------------------


def test_llguidance_locations_are_one_based() -> None:
    text = 'start: a\na: "x" | bogus\n'
    finding = next(d for d in check_grammar(Grammar(text)) if d.engine == "llguidance")
    raw, _ = llg_engine.validate_lark(text)
    assert raw.startswith(f"at {finding.line}({finding.column})")
    # llguidance points at the start of the expression after "a: "
    assert (finding.line, finding.column) == position(text, '"x" | bogus')


HANGS = 'start: A B\nA: /a+/\nB: "a"\n'  # A swallows every "a" that B needs: llguidance 1.9 loops forever


def test_a_grammar_llguidance_loops_on_is_an_error_in_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from constrain.grammar.lint import _engines

    monkeypatch.setattr(_engines, "HANG_SECONDS", 1.0)
    findings = [d for d in check_grammar(Grammar(HANGS)) if d.code == "llguidance-hang"]
    assert [d.severity for d in findings] == ["error"]
    assert "within 1 s" in findings[0].message
    # the same boundary made explicit (B is another letter) walks to the end
    assert not [d for d in check_grammar(Grammar(HANGS.replace('B: "a"', 'B: "b"'))) if d.code == "llguidance-hang"]


def test_find_hang_reports_where_and_finishes_clean_walks() -> None:
    assert llg_engine.find_hang(HANGS, seconds=1.0) == b""  # the very first mask never comes back
    later = llg_engine.find_hang(HANGS.replace("start: A B", 'start: "x" "y"* A B'), seconds=1.0)
    assert later is not None and later.startswith(b"x") and later.endswith(b"a")  # stuck once A has begun
    assert llg_engine.find_hang('start: "x" /[0-9]{1,3}/ "y"\n', seconds=5.0) is None


def test_a_grammar_found_safe_is_remembered_on_disk_and_a_hanging_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSTRAIN_CACHE_DIR", str(tmp_path))
    safe = 'start: "x" /[0-9]{1,3}/ "y"\n'
    llg_engine.hang_of.cache_clear()
    try:
        assert llg_engine.hang_of(safe, 5.0) is None
        assert len(list(tmp_path.glob("*.no-hang"))) == 1
        assert llg_engine.hang_of(HANGS, 1.0) == b""
        assert len(list(tmp_path.glob("*.no-hang"))) == 1  # a hang is walked again in every process
        # a new process (no memo) trusts the marker and does not walk: a marker written for the hanging
        # grammar (as if it had been found safe) makes it pass, which is why a marker's name covers the text,
        # the seconds and the llguidance version
        llg_engine.hang_of.cache_clear()
        marker = lark_engine.cache_file(f"{llguidance.__version__}\0{1.0}\0{HANGS}", ".no-hang")
        assert marker is not None
        marker.touch()
        assert llg_engine.hang_of(HANGS, 1.0) is None
        assert llg_engine.hang_of(HANGS, 2.0) == b""  # other seconds, another marker
    finally:
        llg_engine.hang_of.cache_clear()


def test_lark_build_error_is_located_at_the_undefined_name() -> None:
    text = 'start: a\na: "x" undefined_rule\n'
    finding = next(d for d in check_grammar(Grammar(text)) if d.engine == "lark")
    assert finding.severity == "error" and finding.code == "lark-build"
    assert (finding.line, finding.column) == position(text, "undefined_rule")


def test_lalr_conflict_is_info_under_auto_and_error_when_pinned() -> None:
    text = 'start: a | b\na: "x"\nb: "x"\n'
    auto = [d for d in Grammar(text).check() if d.code == "lalr-conflict"]
    pinned = [d for d in Grammar(text, parser="lalr").check() if d.code == "lalr-conflict"]
    assert [d.severity for d in auto] == ["info"] and [d.severity for d in pinned] == ["error"]
    assert Grammar(text).parser == "earley"
    # lark names the two colliding rules in either order: the finding points at one's definition
    assert (auto[0].line, auto[0].column) in {position(text, "a: "), position(text, "b: ")}


def test_check_never_raises_on_broken_grammars() -> None:
    for text in ['start: "a" )\n', 'start: A\nA: /(/\n', 'start: "a"\n%import nothere.X\n', "start: x\n"]:
        diagnostics = Grammar(text).check(targets=tuple(TARGETS))
        assert any(d.severity == "error" for d in diagnostics)
        assert all(isinstance(d, Diagnostic) and d.line >= 1 and d.column >= 1 for d in diagnostics)


def test_broken_grammar_raises_grammar_error_with_located_diagnostics() -> None:
    text = 'start: A\nA: /(?=a)a/\n'
    with pytest.raises(constrain.GrammarError) as info:
        Grammar(text).matches("a")
    assert info.value.diagnostics and info.value.diagnostics[0].line == 2


def test_unknown_target_is_refused() -> None:
    with pytest.raises(constrain.GrammarError, match="unknown target"):
        Grammar('start: "a"\n').check(targets=("nope",))


# -- targets -------------------------------------------------------------------------------------------


def test_openai_target_makes_flags_outside_the_subset_errors() -> None:
    text = 'start: A\nA: /a b/x\n'
    plain = [d for d in Grammar(text).check() if d.code == "regex-flag"]
    openai = [d for d in Grammar(text).check(targets=("openai",)) if d.code == "regex-flag" and d.engine == "openai"]
    assert [d.severity for d in plain] == ["warning"] and [d.severity for d in openai] == ["error"]


def test_vllm_target_names_what_the_xgrammar_conversion_loses() -> None:
    text = 'start: A "b"i B\nA: /[0-9]{1,3}/\n%import common.INT -> B\n'
    found = {d.code: d for d in Grammar(text).check(targets=("vllm",)) if d.engine == "vllm"}
    assert found["vllm-xgrammar-regex"].text == "/[0-9]{1,3}/"
    assert (found["vllm-xgrammar-regex"].line, found["vllm-xgrammar-regex"].column) == position(text, "/[0-9]")
    assert found["vllm-xgrammar-casefold"].text == '"b"i'
    assert "vllm-xgrammar-directive" in found


def test_llamacpp_target_reports_gbnf() -> None:
    diagnostics = [d for d in Grammar('start: "a"\n').check(targets=("llamacpp",)) if d.engine == "llamacpp"]
    assert any(d.code.startswith("gbnf") for d in diagnostics)
    assert all(d.severity != "error" for d in diagnostics)


# -- packaged grammars ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [info.name for info in constrain.available_grammars()])
def test_packaged_grammar_has_no_errors(name: str) -> None:
    errors = [d for d in constrain.load_grammar(name).check() if d.severity == "error"]
    assert errors == [], "\n".join(str(d) for d in errors)


def test_check_is_sorted_by_position() -> None:
    text = 'start: A B\nB: /x\\b/\nA: /(?=a)a/\n'
    diagnostics = Grammar(text).check()
    keys = [(d.line, d.column) for d in diagnostics]
    assert keys == sorted(keys)
    assert ConstrainError  # the hierarchy is importable from the top level


# -- llguidance's GBNF reading: a rule of terminals only becomes one greedy lexeme ------------------------

_CAST = ('start: expr\nexpr: "CAST" "(" expr "AS" type_name ")" | NAME\ntype_name: {form}\n'
         '%import common.CNAME -> NAME\n%import common.INT -> NUMBER\n%import common.WS\n%ignore WS\n')


@pytest.mark.parametrize(("form", "instance"), [
    ('NAME ("(" NUMBER ")")?', "int"), ('NAME ("[" "]")*', "int"), ('NAME "(" NUMBER ")"', "int(3)"),
    ('NAME ("(" NUMBER ")")+', "int(3)"), ('NAME ("," NAME)*', "int"), ("NAME", "int"),
    ('"int" | "char" "(" NUMBER ")"', "int"), ('("int" | "char") ("(" NUMBER ")")?', "char"), ("NAME NUMBER?", "int"),
    ('"unsigned"? NAME', "int"),
])
def test_gbnf_lexeme_finding_is_exactly_what_llguidance_refuses(form: str, instance: str) -> None:
    """Differential: the finding is reported exactly when llguidance, reading the converted GBNF, refuses
    texts the Lark grammar accepts (a blank after the type, before ')')."""
    from llguidance.gbnf_to_lark import gbnf_to_lark

    grammar = Grammar(_CAST.format(form=form))
    reader = llg_engine.Matcher(gbnf_to_lark(str(grammar.to_gbnf())))
    texts = [f"CAST(a AS {instance} )", f"CAST(a AS {instance}  )", f"CAST(CAST(a AS {instance} ) AS {instance} )"]
    assert all(grammar.parse(text) is not None for text in texts)
    refused = [text for text in texts if not reader.match(text.encode()).ok]
    found = [d for d in grammar.check(targets=("sglang",)) if d.code == "llguidance-gbnf-lexeme"]
    assert bool(found) == bool(refused), (found, refused)
    if found:
        assert [(d.line, d.column, d.text, d.severity) for d in found] == [(3, 1, "type_name", "warning")]
        assert "blank" in found[0].message and "Fix:" in found[0].message
        assert "%llguidance" in next(d for d in grammar.check(targets=("llamacpp",)) if d.code == "llguidance-gbnf-lexeme").message


def test_the_fix_the_finding_gives_removes_it() -> None:
    from llguidance.gbnf_to_lark import gbnf_to_lark

    text = _CAST.format(form="NAME").replace('"AS" type_name', '"AS" type_name type_args?') + 'type_args: "(" NUMBER ")"\n'
    grammar = Grammar(text)
    assert not [d for d in grammar.check(targets=("sglang", "llamacpp")) if d.code == "llguidance-gbnf-lexeme"]
    reader = llg_engine.Matcher(gbnf_to_lark(str(grammar.to_gbnf())))
    assert reader.match(b"CAST(a AS int )").ok and reader.match(b"CAST(a AS int (3) )").ok


@pytest.mark.parametrize("name", [info.name for info in constrain.available_grammars()])
def test_packaged_grammars_have_no_gbnf_lexeme_trap(name: str) -> None:
    from constrain.grammar.lint import gbnf_lexeme_traps

    assert gbnf_lexeme_traps(constrain.load_grammar(name)) == []
