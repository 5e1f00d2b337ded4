"""Lark -> GBNF: the converted grammar must accept exactly what the original accepts.

The GBNF text is read back the way llama.cpp's grammar parser reads it (a plain context-free grammar
over characters; escapes, classes, repetition as llama.cpp defines them) into an llguidance grammar in
which every terminal is ONE character, so llguidance's lexer cannot split or merge anything: what it
accepts is the character-level language of the GBNF text. That reading is compared with llguidance on
the original Lark text (``Grammar.matches``, the engine behind OpenAI's grammar tools) on random walks
from both sides and on byte-level mutations of them. llguidance's own GBNF parser must also read every
converted grammar without error.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llguidance import LLMatcher
from llguidance.gbnf_to_lark import GrammarParser, gbnf_to_lark

from constrain import Grammar, available_grammars, load_grammar
from constrain._regex import python_re
from constrain._regex.nodes import CharNode
from constrain.engines import gbnf
from constrain.errors import GrammarError, ValidationError

# ---------------------------------------------------------------------------------------------------
# a GBNF reader with llama.cpp's semantics -> llguidance Lark with one-character terminals


class _GbnfReader:
    _SIMPLE_ESCAPES = {"t": 9, "r": 13, "n": 10, "\\": 92, '"': 34, "[": 91, "]": 93}

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.rules: dict[str, str] = {}
        self.terminals: dict[str, str] = {}  # regex -> terminal name
        self.helpers: dict[str, str] = {}  # lark rule name -> body

    def error(self, msg: str) -> AssertionError:
        return AssertionError(f"GBNF parse error at {self.pos}: {msg}: {self.text[self.pos:self.pos + 40]!r}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif ch == "#":
                while self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
                    self.pos += 1
            else:
                return

    def name(self) -> str:
        m = re.compile(r"[a-zA-Z0-9-]+").match(self.text, self.pos)
        if not m:
            raise self.error("expected a name")
        self.pos = m.end()
        return m.group()

    def char(self) -> int:
        ch = self.text[self.pos]
        if ch != "\\":
            self.pos += 1
            return ord(ch)
        kind = self.text[self.pos + 1]
        if kind in self._SIMPLE_ESCAPES:
            self.pos += 2
            return self._SIMPLE_ESCAPES[kind]
        width = {"x": 2, "u": 4, "U": 8}.get(kind)
        if width is None:
            raise self.error("unknown escape")
        digits = self.text[self.pos + 2 : self.pos + 2 + width]
        if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits):
            raise self.error("bad hex escape")
        self.pos += 2 + width
        return int(digits, 16)

    def terminal(self, ranges: list[tuple[int, int]], negated: bool) -> str:
        body = "".join(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in ranges)
        regex = f"[{'^' if negated else ''}{body}]"
        if regex not in self.terminals:
            self.terminals[regex] = f"C{len(self.terminals)}"
        return self.terminals[regex]

    def rule_ref(self, name: str) -> str:
        return "r_" + name.replace("-", "_d_").lower() + "_" + str(sum(1 << i for i, c in enumerate(name) if c.isupper()))

    def sequence(self, nested: bool) -> str:
        items: list[str] = []
        while self.pos < len(self.text) and self.peek() not in "|)" and (nested or self.peek() not in "\r\n"):
            ch = self.peek()
            if ch == '"':
                self.pos += 1
                chars = []
                while self.peek() != '"':
                    if not self.peek():
                        raise self.error("unterminated literal")
                    chars.append(self.char())
                self.pos += 1
                item = " ".join(self.terminal([(c, c)], False) for c in chars) or '""'
                if len(chars) > 1:
                    item = f"({item})"
            elif ch == "[":
                self.pos += 1
                negated = self.peek() == "^"
                if negated:
                    self.pos += 1
                ranges = []
                while self.peek() != "]":
                    if not self.peek():
                        raise self.error("unterminated class")
                    lo = self.char()
                    hi = lo
                    if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] != "]":
                        self.pos += 1
                        hi = self.char()
                    ranges.append((lo, hi))
                self.pos += 1
                item = self.terminal(ranges, negated)
            elif ch == "(":
                self.pos += 1
                self.space(True)
                item = "(" + self.alternatives(True) + ")"
                if self.peek() != ")":
                    raise self.error("expected )")
                self.pos += 1
            elif ch == ".":
                self.pos += 1
                item = self.terminal([(0, 0x10FFFF)], False)
            elif re.match(r"[a-zA-Z0-9-]", ch):
                item = self.rule_ref(self.name())
            else:
                raise self.error("unexpected character")
            self.space(nested)
            item = self.postfix(item)
            items.append(item)
            self.space(nested)
        return " ".join(items) if items else '""'

    def postfix(self, item: str) -> str:
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.pos += 1
            return f"({item}){ch}"
        if ch != "{":
            return item
        m = re.compile(r"\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}").match(self.text, self.pos)
        if not m:
            raise self.error("bad repetition")
        self.pos = m.end()
        lo = int(m.group(1))
        hi = lo if not m.group(2) else int(m.group(3)) if m.group(3) else None
        if re.fullmatch(r"C\d+", item):
            return self.repeated_char(item, lo, hi)
        if hi is None:
            return f"({item}){{{lo},}}"
        return f"({item}){{{lo},{hi}}}"

    def repeated_char(self, char: str, lo: int, hi: int | None) -> str:
        """``[class]{lo,hi}`` as a chain of rules shared by every repetition of the same class: the big
        keyword-excluding name terminals repeat a class thousands of times, and llguidance's own
        expansion of each ``x{m,n}`` would exceed its symbol limit (u16)."""
        items = [char] * lo
        if hi is None:
            items.append(f"({char})*")
        elif hi > lo:
            for n in range(1, hi - lo + 1):
                name = f"r_upto_{n}_{char.lower()}"
                if name not in self.helpers:
                    self.helpers[name] = f"({char} {f'r_upto_{n - 1}_{char.lower()}' if n > 1 else ''})?"
            items.append(f"r_upto_{hi - lo}_{char.lower()}")
        return "(" + " ".join(items) + ")" if items else '""'

    def alternatives(self, nested: bool) -> str:
        alts = [self.sequence(nested)]
        while True:
            self.space(nested)
            if self.peek() != "|":
                return " | ".join(alts)
            self.pos += 1
            self.space(True)
            alts.append(self.sequence(nested))

    def read(self) -> str:
        self.space(True)
        while self.pos < len(self.text):
            name = self.name()
            self.space(False)
            if not self.text.startswith("::=", self.pos):
                raise self.error("expected ::=")
            self.pos += 3
            self.space(True)
            body = self.alternatives(False)
            if name in self.rules:
                raise self.error(f"rule {name} defined twice")
            self.rules[name] = body
            self.space(True)
        assert "root" in self.rules, "no root rule"
        used = set(re.findall(r"\br_\w+", " ".join(self.rules.values())))
        defined = {self.rule_ref(n) for n in self.rules} | set(self.helpers)
        assert used <= defined, f"undefined rules: {used - defined}"
        lines = [f"start: {self.rule_ref('root')}"]
        lines += [f"{self.rule_ref(n)}: {b}" for n, b in self.rules.items()]
        lines += [f"{n}: {b}" for n, b in self.helpers.items()]
        lines += [f"{name}: /{regex}/" for regex, name in self.terminals.items()]
        return "\n".join(lines) + "\n"


def char_level(gbnf_text: str) -> Grammar:
    """The character-level language of a GBNF text, as an llguidance-checked ``Grammar``."""
    return Grammar(_GbnfReader(gbnf_text).read(), name="<gbnf>")


# ---------------------------------------------------------------------------------------------------
# the differential check


def _mutations(samples: list[str], rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    alphabet = sorted({b for s in samples for b in s.encode("utf-8")} | {0x20, 0x0A, 0x22, 0x5C, 0x2D, 0xC3, 0xA9})
    while len(out) < n and samples:
        data = bytearray(rng.choice(samples).encode("utf-8"))
        for _ in range(rng.randint(1, 2)):
            op = rng.randrange(3)
            at = rng.randint(0, len(data))
            if op == 0:
                data.insert(at, rng.choice(alphabet))
            elif data and at < len(data):
                if op == 1:
                    del data[at]
                else:
                    data[at] = rng.choice(alphabet)
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return out


def _lark_accepts(grammar: Grammar, text: str) -> bool:
    try:
        grammar.parse(text)
    except ValidationError:
        return False
    return True


def _agree(original: Grammar, converted: Grammar, text: str, trailing_ignored: str) -> bool:
    want, got = original.matches(text), converted.matches(text)
    if want == got:
        return True
    # The original's two engines can disagree among themselves (llguidance's Unicode tables are newer
    # than Python's for \d \w \s; lark reserves keywords): GBNF must then side with lark-python.
    if _lark_accepts(original, text) == got:
        return True
    # Documented narrowing: GBNF never ends on ignored text; llguidance allows it where it could continue.
    return bool(trailing_ignored) and want and not got and converted.matches(text.rstrip(trailing_ignored))


def assert_same_language(
    original: Grammar, *, walks: int, mutations: int, seed: int = 0, trailing_ignored: str = "",
    official: bool = False,
) -> str:
    """With ``official``, llguidance's own GBNF ingestion (SGLang's and llama.cpp's llguidance backends)
    must also read the text and give the same verdicts."""
    text = original.to_gbnf()
    converted = char_level(text)
    readings = [converted]
    if official:  # what grammar_from("gbnf", text) does, parsing the (slow to parse) text once
        as_lark = gbnf_to_lark(text)
        assert LLMatcher.validate_grammar(LLMatcher.grammar_from_lark(as_lark)) == ""
        readings.append(Grammar(as_lark, name="<llguidance gbnf>"))
    else:
        GrammarParser().parse(text)  # llguidance's own GBNF parser reads it
    rng = random.Random(seed)
    forward = original.sample(walks, seed=seed, max_bytes=300)
    backward = converted.sample(walks, seed=seed + 1, max_bytes=300)
    assert forward and backward
    for reading in readings:
        for s in forward:
            assert _agree(original, reading, s, trailing_ignored), f"GBNF refuses a string of the original: {s!r}"
        for s in backward:
            assert _agree(original, reading, s, trailing_ignored), f"GBNF admits a string the original refuses: {s!r}"
        for s in _mutations(forward + backward, rng, mutations):
            assert _agree(original, reading, s, trailing_ignored), (
                f"verdicts differ on {s!r}: original {original.matches(s)}, {reading.name} {reading.matches(s)}\n{text}"
            )
    return text


PACKAGED = [info.name for info in available_grammars()]


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_grammar_converts_to_the_same_language(name: str) -> None:
    grammar = load_grammar(name)
    big = len(grammar.text) > 4000  # the SQL grammars: the character-level reading is slow to walk
    assert_same_language(
        grammar, walks=6 if big else 40, mutations=40 if big else 150, seed=len(name), official=True
    )


TRICKY = {
    "escapes": r'''
start: "\"" "\\" "\n" "\t" "é" "☃" "😀" NUL "]" "-" "^" "[" X
NUL: "\x00" | "\u0101" | "\u0fff"
X: /[\]\-^\\"\[é-ë\u0100-\u0102\U0001F600]/
''',
    "classes_and_flags": r'''
start: A B C D E F
A: /[^a-c\n]/
B: /\d\s\w/
C: /(?i:select)/
D: /x.y/s
E: /(?:ab|cd){1,3}e?/
F: "kw"i
''',
    "negated_category": r'''
start: A "|" B "|" C
A: /[\D]/
B: /\S/
C: /[^\w;]/
''',
    "rule_operators": r'''
start: _item+ -> root
_item: a | b | c | "z" ~ 3 | "q" ~ 1..2 | d
?a: "a" [b]
!b: "b" "y"?
c: ("c" | "xy"i)* "."
d: "d".."f"
''',
    "direct_left_recursion": r'''
start: expr
expr: expr "+" term | expr "-" term | term
term: term "*" NUM | NUM
NUM: /[0-9]{1,3}/
''',
    "nullable_repeats": r'''
start: (a? b?)* "!" (x)* "."
a: "a"
b: "b"*
x: "x"? "y"?
''',
    "common_imports": r'''
%import common.SIGNED_NUMBER
%import common.ESCAPED_STRING
%import common.CNAME
%import common.WS_INLINE
start: CNAME WS_INLINE? "=" WS_INLINE? (SIGNED_NUMBER | ESCAPED_STRING)
''',
    "ignore_between_tokens": r'''
%import common.WS
%ignore WS
start: "let" NAME "=" value ";"
?value: NUM | "[" [value ("," value)*] "]"
NAME: /[a-z]{1,8}/
NUM: /[0-9]{1,4}/
''',
    "ignore_nullable_start": r'''
%ignore " "
start: item*
item: "a" | "b" "c"?
''',
    "left_recursion_with_ignore": r'''
%ignore /[ \t]{1,3}/
start: list
list: list "," item | item
item: NAME | "(" list ")"
NAME: /[a-z]{1,5}/
''',
    "rule_named_root": r'''
start: root root
root: "r" | "s"
''',
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_grammar_converts_to_the_same_language(name: str) -> None:
    grammar = Grammar(TRICKY[name], name=name)
    ignored = " \t\n\r\x0c" if "%ignore" in TRICKY[name] else ""
    assert_same_language(grammar, walks=40, mutations=200, seed=7, trailing_ignored=ignored)


def test_deeply_nested_groups_get_rules_of_their_own() -> None:
    # a name regex excluding a 40-letter keyword nests 40 groups; llguidance's GBNF reader refuses 30
    word = "abcdefghij" * 4
    regex = ""
    for ch in reversed(word):
        regex = f"{ch}(?:{regex}|z)" if regex else ch
    grammar = Grammar(f"start: NAME\nNAME: /{regex}/\n", name="deep")
    text = assert_same_language(grammar, walks=40, mutations=200, seed=3, official=True)
    assert "nested-Part" in text
    assert grammar.matches(word) and grammar.matches("abcz") and not grammar.matches("abc")


def test_ignored_text_goes_between_tokens_only() -> None:
    converted = char_level(Grammar(TRICKY["ignore_between_tokens"]).to_gbnf())
    assert converted.matches("let  x =\n[1 ,2];")
    assert converted.matches("letx=[1,2];")
    assert not converted.matches(" let x = 1;"), "llguidance refuses leading ignored text"
    assert not converted.matches("let x = 1; "), "GBNF never ends on ignored text"
    assert not converted.matches("let x = 1 2;")


def test_direct_left_recursion_becomes_repetition() -> None:
    text = Grammar(TRICKY["direct_left_recursion"]).to_gbnf()
    rules = dict(line.split(" ::= ", 1) for line in text.splitlines() if " ::= " in line)
    for name, body in rules.items():
        first = re.split(r"[\s(|]", body.strip(), maxsplit=1)[0]
        assert first != name, f"rule {name} is still left-recursive: {body}"


def test_rule_names_are_gbnf_names_and_distinct() -> None:
    text = Grammar("start: _a a A _A a_b\n_a: \"1\"\na: \"2\"\nA: \"3\"\n_A: \"4\"\na_b: \"5\"+\n").to_gbnf()
    names = [line.split(" ::= ", 1)[0] for line in text.splitlines() if " ::= " in line]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-zA-Z0-9-]+", n) for n in names)
    assert names[0] == "root"


REFUSED = {
    "lookahead": ('start: A\nA: /a(?=b)b/', "A", "lookaround"),
    "negative lookbehind": ('start: A\nA: /(?<!x)a/', "A", "lookaround"),
    "backreference": ('start: A\nA: /(a)\\1/', "A", "backreference"),
    "anchor": ('start: A\nA: /^a/', "A", "anchor"),
    "word boundary": ('start: A\nA: /a\\b/', "A", "word boundary"),
    "lazy quantifier": ('start: A\nA: /a+?b/', "A", "lazy quantifier"),
    "template": ('start: pair{"a"}\npair{x}: x x', "pair", "template"),
    "terminal priority": ('start: A\nA.2: "a"', "A", "priority"),
    "rule priority": ('start: a\na.2: "a"', "a", "priority"),
    "declare": ('%declare A\nstart: A', "A", "%declare"),
    "indirect left recursion": ('start: a\na: b "x" | "y"\nb: a "z"', "a -> b -> a", "left-recursive"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_inexpressible_constructs_are_refused_by_name(case: str) -> None:
    text, what, construct = REFUSED[case]
    with pytest.raises(GrammarError) as info:
        Grammar(text, name=case).to_gbnf()
    message = str(info.value)
    assert what in message and construct in message, message


# ---------------------------------------------------------------------------------------------------
# property tests


_CLASS_ITEMS = st.one_of(
    st.sampled_from(["a-z", "A-F", "0-9", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "_", "\\-", "\\]", "\\\\", "é",
                     "ſ", "K", "k", "\\u0130", "i", "ı", "σ", "ς", "Σ", "\\x00-\\x1f", "\\u0100-\\u017f"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_CLASS_ITEMS, min_size=1, max_size=4),
    negate=st.booleans(),
    ignorecase=st.booleans(),
    probes=st.lists(st.characters(codec="utf-8"), min_size=20, max_size=40),
)
def test_character_sets_match_python_re(items: list[str], negate: bool, ignorecase: bool, probes: list[str]) -> None:
    regex = "[" + ("^" if negate else "") + "".join(items) + "]"
    node = python_re.parse(("(?i)" if ignorecase else "") + regex)
    assert isinstance(node, CharNode)
    ranges = node.chars
    compiled = re.compile(regex, re.IGNORECASE if ignorecase else 0)
    extra = [chr(lo) for lo, _ in ranges[:20]] + [chr(hi) for _, hi in ranges[:20]] + ["s", "S", "ſ", "k", "K", "\u212a"]
    for ch in probes + extra:
        inside = any(lo <= ord(ch) <= hi for lo, hi in ranges)
        assert inside == bool(compiled.fullmatch(ch)), (regex, ignorecase, ch)


# Prefix-free literals: no token can run on into the next one, so the lexer's greedy choice and the
# character-level reading must agree exactly on every grammar built from them.
_LITERALS = ["a", "bc", "dd", "e", "fgh"]


@st.composite
def _random_grammars(draw: st.DrawFn) -> str:
    n_rules = draw(st.integers(1, 4))
    names = [f"r{i}" for i in range(n_rules)]

    def expr(depth: int) -> str:
        choice = draw(st.integers(0, 6 if depth < 3 else 1))
        if choice == 0:
            return '"' + draw(st.sampled_from(_LITERALS)) + '"'
        if choice == 1:
            later = names[names.index(current) + 1 :] if current in names else names
            return draw(st.sampled_from(later)) if later else '"' + draw(st.sampled_from(_LITERALS)) + '"'
        if choice == 2:
            return "(" + " ".join(expr(depth + 1) for _ in range(draw(st.integers(1, 3)))) + ")"
        if choice == 3:
            return "(" + " | ".join(expr(depth + 1) for _ in range(draw(st.integers(2, 3)))) + ")"
        if choice == 4:
            return "(" + expr(depth + 1) + ")" + draw(st.sampled_from(["?", "*", "+"]))
        if choice == 5:
            lo = draw(st.integers(0, 2))
            return f"({expr(depth + 1)}) ~ {lo}..{lo + draw(st.integers(0, 2))}"
        return "[" + expr(depth + 1) + "]"

    lines = []
    for i, current in enumerate(names):
        alts = [expr(0) for _ in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()) and i > 0:  # direct left recursion
            alts.insert(0, f"{current} {expr(1)}")
        lines.append(f"{current}: " + " | ".join(alts))
    body = "start: r0 \"!\"\n" + "\n".join(lines) + "\n"
    return body


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_random_grammars())
def test_random_grammars_convert_to_the_same_language(text: str) -> None:
    grammar = Grammar(text, name="<random>")
    assert_same_language(grammar, walks=8, mutations=25, seed=3)


@pytest.mark.parametrize("name", sorted(gbnf.COMMON_EQUIVALENTS))
def test_common_terminal_equivalents_match_lark_tokens(name: str) -> None:
    """lark's lazy/lookbehind regex, read as a token (the match the lexer takes), is the same language."""
    import itertools

    (lark_regex,) = [r for r, eq in gbnf._common_substitutes().items() if eq == gbnf.COMMON_EQUIVALENTS[name]]
    lark_re, ours = re.compile(lark_regex), re.compile(gbnf.COMMON_EQUIVALENTS[name])
    alphabet = sorted(set(lark_regex) & set('"\\/*') | {"a", "\n"})
    for n in range(8):
        for chars in itertools.product(alphabet, repeat=n):
            s = "".join(chars)
            m = lark_re.match(s)
            assert bool(m and m.end() == len(s)) == bool(ours.fullmatch(s)), repr(s)


def test_greedy_lexing_is_the_documented_widening() -> None:
    """A terminal that can run on into the next token: GBNF admits the split, llguidance refuses it, and
    ``Grammar.validate`` (what every provider's output goes through) still refuses it."""
    original = Grammar('start: ("c" | "cx")+ "x"', name="greedy")
    converted = char_level(original.to_gbnf())
    for text in ("cxx", "ccxx", "cxcxx"):
        assert original.matches(text) == converted.matches(text) is True
    assert converted.matches("cx"), "character level: c, then the final x"
    assert not original.matches("cx"), "the greedy lexer takes cx, then wants the final x"
    with pytest.raises(ValidationError):
        original.validate("cx")
