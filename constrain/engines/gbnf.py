"""Lark (the common subset) -> GBNF, the grammar format of llama.cpp server and SGLang/xgrammar.

The grammar is read by lark's own loader, so every terminal arrives as one flattened regex (strings,
``"a".."z"``, ``%import common.X`` and terminal references already resolved by lark) and every rule
as lark's EBNF tree. Regexes are translated through Python's own regex parser (``re._parser``), so a
class, flag or escape means in GBNF exactly what it means to lark: character sets are computed as
code-point intervals (``\\d \\w \\s`` with Python's Unicode meaning, ``i`` expanded to every case
variant Python's matcher accepts, ``.`` without the ``s`` flag excluding ``\\n``). Controls, unprintable
characters and ``"\\]-^`` are written as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN`` (llama.cpp has no ``\\-``),
printable non-ASCII as itself.

GBNF is a plain context-free grammar over characters: it has no lexer and no ``%ignore``. So:

* ``%ignore`` becomes an optional run of the ignored terminals inserted before every token except the
  first one: between tokens, as lark allows, never before the first token (llguidance refuses that)
  nor after the last (llguidance allows it only where the grammar could continue; GBNF cannot say that).
* GBNF engines walk rules top-down: left recursion (``expr: expr "+" term``) is rewritten into
  repetition when it is direct and refused with the cycle named when it is not; a repetition whose
  body can match the empty string is rewritten to repeat only the non-empty forms.
* Lark and llguidance lex greedily (a terminal takes as many characters as it can, without backing
  off); a character-level grammar splits tokens wherever the rules allow. Where a terminal can run on
  into the text that may follow it (``A: /a+/`` followed by ``"a"``, or ``"c" | "cc"`` inside a
  repetition), GBNF admits splits the lexer would not make: a documented widening, not detected here,
  that the local validator (``Grammar.validate``) still enforces. Grammars with explicit separators
  (every packaged grammar; the differential tests prove it) are unaffected.

Anything GBNF cannot express (lookaround, anchors, backreferences, lazy quantifiers, templates,
priorities, ``%declare``) is a ``GrammarError`` naming the terminal or rule and the construct.
"""

from __future__ import annotations

import functools
import re
import re._constants as _sc  # type: ignore[import-not-found]
import re._parser as _sre_parse  # type: ignore[import-not-found]
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

import lark
from lark import Tree
from lark.grammar import NonTerminal, Terminal
from lark.lexer import TerminalDef
from lark.load_grammar import (
    PrepareAnonTerminals,
    PrepareLiterals,
    TerminalTreeToPattern,
    ValidateSymbols,
    load_grammar,
)

from ..errors import GrammarError

__all__ = ["lark_to_gbnf", "gbnf_rules", "GbnfRules", "COMMON_EQUIVALENTS"]

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

Intervals = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------------------------------------------
# intermediate form


@dataclass(frozen=True)
class Chars:
    """One character from a set of code-point intervals (sorted, disjoint, no surrogates)."""

    ranges: Intervals


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat:
    item: Node
    min: int
    max: int | None  # None: unbounded


@dataclass(frozen=True)
class Ref:
    key: tuple[str, ...]  # ("rule", name, variant) | ("term", name) | ("ignored",)


@dataclass(frozen=True)
class Tok:
    """A lark terminal used in a rule; ``lead`` puts the ignored-text run in front of it."""

    name: str
    lead: bool


Node = Union[Chars, Lit, Seq, Alt, Repeat, Ref, Tok]
EMPTY = Seq(())
_IGNORED: tuple[str, ...] = ("ignored",)


def _seq(items: Iterable[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        for sub in item.items if isinstance(item, Seq) else (item,):
            if isinstance(sub, Lit) and flat and isinstance(flat[-1], Lit):
                flat[-1] = Lit(flat[-1].text + sub.text)
            else:
                flat.append(sub)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def _alt(items: Iterable[Node]) -> Node | None:
    flat: list[Node] = []
    seen: set[Node] = set()
    for item in items:
        for sub in item.items if isinstance(item, Alt) else (item,):
            if sub not in seen:
                seen.add(sub)
                flat.append(sub)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else Alt(tuple(flat))


def _repeat(item: Node, lo: int, hi: int | None) -> Node:
    if hi == 0:
        return EMPTY
    if lo == hi == 1:
        return item
    return Repeat(item, lo, hi)


# ---------------------------------------------------------------------------------------------------
# character sets


def _normalize(ranges: Iterable[tuple[int, int]]) -> Intervals:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    cut: list[tuple[int, int]] = []
    for lo, hi in out:  # surrogates cannot occur in text: keep them out of every set
        if hi < _SURROGATES[0] or lo > _SURROGATES[1]:
            cut.append((lo, hi))
            continue
        if lo < _SURROGATES[0]:
            cut.append((lo, _SURROGATES[0] - 1))
        if hi > _SURROGATES[1]:
            cut.append((_SURROGATES[1] + 1, hi))
    return tuple(cut)


def _complement(ranges: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return _normalize(out)


def _from_predicate(pred: Callable[[str], bool]) -> Intervals:
    ranges: list[tuple[int, int]] = []
    start = None
    for cp in range(MAX_CODE_POINT + 2):
        inside = cp <= MAX_CODE_POINT and not (_SURROGATES[0] <= cp <= _SURROGATES[1]) and pred(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return _normalize(ranges)


@functools.lru_cache(maxsize=None)
def _category(code: object) -> Intervals:
    """Python's meaning of ``\\d \\s \\w`` (Unicode by default) as intervals."""
    c = _sc
    if code in (c.CATEGORY_DIGIT, c.CATEGORY_NOT_DIGIT):
        base = _from_predicate(str.isdecimal)
    elif code in (c.CATEGORY_SPACE, c.CATEGORY_NOT_SPACE):
        base = _from_predicate(str.isspace)
    elif code in (c.CATEGORY_WORD, c.CATEGORY_NOT_WORD):
        base = _from_predicate(lambda ch: ch.isalnum() or ch == "_")
    else:
        raise KeyError(code)
    negated = code in (c.CATEGORY_NOT_DIGIT, c.CATEGORY_NOT_SPACE, c.CATEGORY_NOT_WORD)
    return _complement(base) if negated else base


_ASCII_CATEGORY = {
    "DIGIT": ((0x30, 0x39),),
    "SPACE": ((0x09, 0x0D), (0x20, 0x20)),
    "WORD": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}


def _ascii_category(code: object) -> Intervals:
    name = str(code).replace("CATEGORY_", "")
    negated = name.startswith("NOT_")
    base = _ASCII_CATEGORY[name.replace("NOT_", "")]
    return _complement(base) if negated else base


@functools.lru_cache(maxsize=1)
def _cased() -> tuple[int, ...]:
    """Code points that have case variants (the only ones an ``i`` flag can add or remove)."""
    import _sre  # type: ignore[import-not-found]

    return tuple(
        cp for cp in range(MAX_CODE_POINT + 1)
        if not (_SURROGATES[0] <= cp <= _SURROGATES[1]) and _sre.unicode_iscased(cp)
    )


@functools.lru_cache(maxsize=1)
def _cased_ranges() -> Intervals:
    return _normalize((cp, cp) for cp in _cased())


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _ignorecase(plain: Intervals, python_class: str) -> Intervals:
    """The set Python's case-insensitive matcher accepts for ``python_class``, whose case-sensitive set
    is ``plain``: only code points with case variants can change, and Python itself decides each."""
    matcher = re.compile(python_class, re.IGNORECASE)
    uncased_part = _intersect(plain, _complement(_cased_ranges()))
    cased_part = [(cp, cp) for cp in _cased() if matcher.fullmatch(chr(cp))]
    return _normalize(list(uncased_part) + cased_part)


# ---------------------------------------------------------------------------------------------------
# regex -> intermediate form


class _RegexTranslator:
    def __init__(self, terminal: str, grammar: str) -> None:
        self.terminal = terminal
        self.grammar = grammar

    def refuse(self, construct: str) -> GrammarError:
        return GrammarError(
            f"terminal {self.terminal} uses {construct}, which GBNF cannot express", grammar=self.grammar
        )

    def translate(self, regex: str) -> Node:
        try:
            parsed = _sre_parse.parse(regex)
        except re.error as exc:
            raise GrammarError(f"terminal {self.terminal}: invalid regex: {exc}", grammar=self.grammar) from None
        return self.sub(parsed, parsed.state.flags)

    def sub(self, pattern: Iterable[tuple[object, object]], flags: int) -> Node:
        if flags & re.LOCALE:
            raise self.refuse("the locale flag")
        return _seq(self.item(op, av, flags) for op, av in pattern)

    def item(self, op: object, av: object, flags: int) -> Node:  # noqa: C901 - one branch per sre opcode
        c = _sc
        if op is c.LITERAL:
            assert isinstance(av, int)
            if flags & re.IGNORECASE:
                return Chars(_ignorecase(_normalize([(av, av)]), _class_item(op, av)))
            return Lit(chr(av))
        if op is c.NOT_LITERAL:
            assert isinstance(av, int)
            plain = _complement(_normalize([(av, av)]))
            return Chars(_ignorecase(plain, _class_item(op, av)) if flags & re.IGNORECASE else plain)
        if op is c.ANY:
            return Chars(_normalize([(0, MAX_CODE_POINT)]) if flags & re.DOTALL else _complement(((10, 10),)))
        if op is c.IN:
            return self.in_set(av, flags)  # type: ignore[arg-type]
        if op is c.BRANCH:
            _, branches = av  # type: ignore[misc]
            alt = _alt(self.sub(b, flags) for b in branches)
            assert alt is not None
            return alt
        if op is c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av  # type: ignore[misc]
            return self.sub(sub, (flags | add_flags) & ~del_flags)
        if op is c.MAX_REPEAT:
            lo, hi, sub = av  # type: ignore[misc]
            return _repeat(self.sub(sub, flags), lo, None if hi is c.MAXREPEAT else hi)
        refusals = {
            c.MIN_REPEAT: "a lazy quantifier",
            c.AT: "an anchor or word boundary",
            c.ASSERT: "a lookaround assertion",
            c.ASSERT_NOT: "a negative lookaround assertion",
            c.GROUPREF: "a backreference",
            c.GROUPREF_EXISTS: "a conditional group",
        }
        for name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
            if hasattr(c, name):
                refusals[getattr(c, name)] = "a possessive quantifier or atomic group"
        raise self.refuse(refusals.get(op, f"the regex construct {op}"))

    def in_set(self, items: list[tuple[object, object]], flags: int) -> Node:
        c = _sc
        negate = False
        ranges: list[tuple[int, int]] = []
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                ranges.append((av, av))  # type: ignore[arg-type]
            elif op is c.RANGE:
                ranges.append(av)  # type: ignore[arg-type]
            elif op is c.CATEGORY:
                ranges.extend(_ascii_category(av) if flags & re.ASCII else _category(av))
            else:
                raise self.refuse(f"the class item {op}")
        plain = _complement(_normalize(ranges)) if negate else _normalize(ranges)
        if not flags & re.IGNORECASE:
            return Chars(plain)
        python_class = "[" + "".join(_class_item(op, av, flags) for op, av in items) + "]"
        return Chars(_ignorecase(plain, python_class))


def _class_item(op: object, av: object, flags: int = 0) -> str:
    """One sre class item back as Python regex text (to let Python decide case-insensitive membership)."""
    c = _sc
    if op is c.NEGATE:
        return "^"
    if op is c.LITERAL:
        return f"\\U{av:08x}"
    if op is c.NOT_LITERAL:
        return f"[^\\U{av:08x}]"
    if op is c.RANGE:
        lo, hi = av  # type: ignore[misc]
        return f"\\U{lo:08x}-\\U{hi:08x}"
    if op is c.CATEGORY:
        if flags & re.ASCII:
            return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _ascii_category(av))
        letter = {"DIGIT": "d", "SPACE": "s", "WORD": "w"}[str(av).replace("CATEGORY_", "").replace("NOT_", "")]
        return "\\" + (letter.upper() if "NOT_" in str(av) else letter)
    raise AssertionError(op)


# ---------------------------------------------------------------------------------------------------
# lark grammar -> intermediate form


@dataclass
class _Loaded:
    terminals: dict[str, Node]  # terminal name -> its characters
    rules: dict[str, Node]  # rule name -> body (tokens as Tok, rules as Ref(("rule", name, "")))
    ignored: tuple[str, ...]
    anonymous: frozenset[str]


def _load(text: str, start: str, grammar: str) -> _Loaded:
    try:
        loaded, _files = load_grammar(text, grammar, [], False)
    except lark.exceptions.LarkError as exc:
        raise GrammarError(f"grammar {grammar} does not load in lark: {exc}", grammar=grammar) from None
    for name, (tree, priority) in loaded.term_defs:
        if tree is None:
            raise GrammarError(f"terminal {name} is %declare'd: GBNF has no external terminals", grammar=grammar)
        if priority != 0:
            raise GrammarError(f"terminal {name} has a priority: GBNF has no lexer to prioritise", grammar=grammar)
    to_pattern = PrepareLiterals() * TerminalTreeToPattern()
    try:
        defs = [TerminalDef(name, to_pattern.transform(tree), 0) for name, (tree, _p) in loaded.term_defs]
    except lark.exceptions.LarkError as exc:
        raise GrammarError(f"grammar {grammar}: {exc}", grammar=grammar) from None
    declared = {d.name for d in defs}
    anon = PrepareAnonTerminals(defs)  # appends the anonymous terminals of rule bodies to ``defs``
    prepare_rule = PrepareLiterals() * ValidateSymbols() * anon
    rule_names = {name for name, *_ in loaded.rule_defs}
    rules: dict[str, Node] = {}
    for name, params, tree, options in loaded.rule_defs:
        if params:
            raise GrammarError(f"rule {name} is a template: GBNF (and llguidance) have no templates", grammar=grammar)
        if options and options.priority:
            raise GrammarError(f"rule {name} has a priority: GBNF has no rule priorities", grammar=grammar)
        try:
            prepared = prepare_rule.transform(tree)
        except lark.exceptions.LarkError as exc:
            raise GrammarError(f"rule {name}: {exc}", grammar=grammar) from None
        rules[name] = _rule_node(prepared, name, grammar, rule_names)
    if start not in rules:
        raise GrammarError(f"grammar {grammar} has no rule {start!r} to start from", grammar=grammar)
    terminals: dict[str, Node] = {}
    substitutes = _common_substitutes()
    for d in defs:
        regex = d.pattern.to_regexp()
        terminals[d.name] = _RegexTranslator(d.name, grammar).translate(substitutes.get(regex, regex))
    # lark's generated names (``__ANON_0``, ``__IGNORE_0``) and rule-body literals are inlined
    anonymous = frozenset(n for n in terminals if n not in declared or n.startswith("__"))
    return _Loaded(terminals, rules, tuple(loaded.ignore), anonymous)


# lark's common.lark writes these two with lazy quantifiers and a lookbehind; as tokens (the shortest
# match the lexer takes) they are these regular languages (checked against lark's regexes exhaustively
# up to 8 characters in the tests).
COMMON_EQUIVALENTS = {
    "ESCAPED_STRING": r'"(?:[^"\\\n]|\\.)*"',
    "C_COMMENT": r"/\*(?:[^*]|\*+[^*/])*\*+/",
}


@functools.lru_cache(maxsize=1)
def _common_substitutes() -> dict[str, str]:
    """lark's regex for each ``%import common`` terminal listed above -> an equivalent GBNF can express."""
    out: dict[str, str] = {}
    for name, equivalent in COMMON_EQUIVALENTS.items():
        loaded, _files = load_grammar(f"%import common.{name}\nstart: {name}\n", "<common>", [], False)
        to_pattern = PrepareLiterals() * TerminalTreeToPattern()
        for term_name, (tree, _p) in loaded.term_defs:
            if term_name == name:
                out[to_pattern.transform(tree).to_regexp()] = equivalent
    return out


def _rule_node(tree: object, rule: str, grammar: str, rule_names: set[str]) -> Node:
    if isinstance(tree, Terminal):
        return Tok(tree.name, True)
    if isinstance(tree, NonTerminal):
        if tree.name not in rule_names:
            raise GrammarError(f"rule {rule} uses undefined rule {tree.name}", grammar=grammar)
        return Ref(("rule", tree.name, ""))
    if not isinstance(tree, Tree):
        raise GrammarError(f"rule {rule}: unexpected element {tree!r}", grammar=grammar)
    kids = tree.children
    if tree.data == "expansions":
        alt = _alt(_rule_node(k, rule, grammar, rule_names) for k in kids)
        return alt if alt is not None else EMPTY
    if tree.data == "alias":
        return _rule_node(kids[0], rule, grammar, rule_names)
    if tree.data == "expansion":
        return _seq(_rule_node(k, rule, grammar, rule_names) for k in kids)
    if tree.data == "maybe":
        return _repeat(_rule_node(kids[0], rule, grammar, rule_names), 0, 1)
    if tree.data == "expr":
        item = _rule_node(kids[0], rule, grammar, rule_names)
        op = str(kids[1])
        if op == "?":
            return _repeat(item, 0, 1)
        if op == "*":
            return _repeat(item, 0, None)
        if op == "+":
            return _repeat(item, 1, None)
        if op == "~":
            lo = int(kids[2])
            hi = int(kids[3]) if len(kids) > 3 else lo
            return _repeat(item, lo, hi)
        raise GrammarError(f"rule {rule}: unsupported operator {op!r}", grammar=grammar)
    if tree.data == "template_usage":
        used = getattr(kids[0], "name", kids[0])
        raise GrammarError(f"rule {rule} uses the template {used}: GBNF has no templates", grammar=grammar)
    raise GrammarError(f"rule {rule}: unsupported construct {tree.data!r}", grammar=grammar)


# ---------------------------------------------------------------------------------------------------
# rule variants: ignored text between tokens, non-empty forms, left recursion


class _Builder:
    """Builds the GBNF rule set: ``plain`` rules, their ``first`` and ``nonempty`` variants."""

    def __init__(self, loaded: _Loaded, start: str, grammar: str) -> None:
        self.loaded = loaded
        self.grammar = grammar
        self.start = start
        self.ignoring = bool(loaded.ignored)
        self.nullable_rules = self._nullable_rules()
        self.rules: dict[tuple[str, ...], Node] = {}
        self.pending: list[tuple[str, ...]] = []
        self._nonempty_known: dict[str, bool] = {}

    # nullability ------------------------------------------------------------------------------
    def _nullable_rules(self) -> set[str]:
        nullable: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, body in self.loaded.rules.items():
                if name not in nullable and self._nullable(body, nullable):
                    nullable.add(name)
                    changed = True
        return nullable

    def _nullable(self, node: Node, nullable_rules: set[str] | None = None) -> bool:
        rules = self.nullable_rules if nullable_rules is None else nullable_rules
        if isinstance(node, (Tok, Chars)):
            return False
        if isinstance(node, Lit):
            return node.text == ""
        if isinstance(node, Seq):
            return all(self._nullable(i, rules) for i in node.items)
        if isinstance(node, Alt):
            return any(self._nullable(i, rules) for i in node.items)
        if isinstance(node, Repeat):
            return node.min == 0 or self._nullable(node.item, rules)
        if isinstance(node, Ref):
            if node.key == _IGNORED:
                return True
            return node.key[0] == "rule" and node.key[2] == "" and node.key[1] in rules
        raise AssertionError(node)

    # variants ---------------------------------------------------------------------------------
    def ref(self, name: str, variant: str) -> Ref:
        key = ("rule", name, variant)
        if key not in self.rules and key not in self.pending:
            self.pending.append(key)
        return Ref(key)

    def build(self) -> tuple[dict[tuple[str, ...], Node], Node]:
        if self.ignoring:
            first = self.nonempty(Ref(("rule", self.start, "")), first=True)
            root_items = [first] if first is not None else []
            if self.start in self.nullable_rules:
                root_items.append(EMPTY)
            root = _alt(root_items) or EMPTY
        else:
            root = self.ref(self.start, "")
        root = self.fix_repeats(self.relink(root))
        while self.pending:
            key = self.pending.pop(0)
            _kind, name, variant = key
            body = self.loaded.rules[name]
            if variant == "":
                built: Node | None = body
            else:
                built = self.nonempty(body, first=variant == "first")
            self.rules[key] = self.fix_repeats(self.relink(built if built is not None else EMPTY))
        return self.rules, root

    def relink(self, node: Node) -> Node:
        """Register every rule reference in ``node`` for building."""
        if isinstance(node, Ref) and node.key[0] == "rule":
            return self.ref(node.key[1], node.key[2])
        if isinstance(node, Seq):
            return Seq(tuple(self.relink(i) for i in node.items))
        if isinstance(node, Alt):
            return Alt(tuple(self.relink(i) for i in node.items))
        if isinstance(node, Repeat):
            return Repeat(self.relink(node.item), node.min, node.max)
        return node

    def nonempty(self, node: Node, *, first: bool) -> Node | None:
        """The non-empty strings of ``node``; with ``first``, no ignored text before the first token."""
        if isinstance(node, Tok):
            return Tok(node.name, False) if first else node
        if isinstance(node, (Chars,)):
            return node
        if isinstance(node, Lit):
            return node if node.text else None
        if isinstance(node, Ref):
            if node.key == _IGNORED:
                raise AssertionError("ignored text is only inserted at emission")
            _k, name, variant = node.key
            if variant and (variant == "first" or not first):
                return node  # already non-empty (and already first-mode if needed)
            if not self._can_be_nonempty(name):
                return None
            return self.ref(name, "first" if first else "nonempty")
        if isinstance(node, Alt):
            return _alt(x for x in (self.nonempty(i, first=first) for i in node.items) if x is not None)
        if isinstance(node, Seq):
            options: list[Node] = []
            for i, item in enumerate(node.items):
                head = self.nonempty(item, first=first)
                if head is not None:
                    options.append(_seq((head, *node.items[i + 1 :])))
                if not self._nullable(item):
                    break
            return _alt(options)
        if isinstance(node, Repeat):
            if node.max == 0:
                return None
            head = self.nonempty(node.item, first=first)
            if head is None:
                return None
            hi = None if node.max is None else node.max - 1
            lo = 0 if self._nullable(node.item) else max(node.min - 1, 0)
            return _seq((head, _repeat(node.item, lo, hi)))
        raise AssertionError(node)

    def _can_be_nonempty(self, name: str) -> bool:
        if name not in self._nonempty_known:
            self._nonempty_known[name] = self._search_nonempty(name)
        return self._nonempty_known[name]

    def _search_nonempty(self, name: str) -> bool:
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for node in _walk(self.loaded.rules[current]):
                if isinstance(node, (Tok, Chars)) or (isinstance(node, Lit) and node.text):
                    return True
                if isinstance(node, Ref) and node.key[0] == "rule":
                    stack.append(node.key[1])
        return False

    def fix_repeats(self, node: Node) -> Node:
        """GBNF engines loop on ``x*`` when ``x`` can be empty: repeat only its non-empty forms."""
        if isinstance(node, Seq):
            return Seq(tuple(self.fix_repeats(i) for i in node.items))
        if isinstance(node, Alt):
            return Alt(tuple(self.fix_repeats(i) for i in node.items))
        if isinstance(node, Repeat):
            item = self.fix_repeats(node.item)
            if node.max != 1 and self._nullable(item):
                solid = self.nonempty(item, first=False)
                if solid is None:
                    return EMPTY
                return _repeat(self.fix_repeats(self.relink(solid)), 0, node.max)
            return Repeat(item, node.min, node.max)
        return node


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, (Seq, Alt)):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, Repeat):
        yield from _walk(node.item)


def _token_node(tok: Tok, ignoring: bool) -> Node:
    term = Ref(("term", tok.name))
    return Seq((Ref(_IGNORED), term)) if tok.lead and ignoring else term


def _lower_tokens(node: Node, ignoring: bool) -> Node:
    if isinstance(node, Tok):
        return _token_node(node, ignoring)
    if isinstance(node, Seq):
        return _seq(_lower_tokens(i, ignoring) for i in node.items)
    if isinstance(node, Alt):
        return Alt(tuple(_lower_tokens(i, ignoring) for i in node.items))
    if isinstance(node, Repeat):
        return Repeat(_lower_tokens(node.item, ignoring), node.min, node.max)
    return node


def _left_refs(node: Node, nullable: set[tuple[str, ...]]) -> tuple[set[tuple[str, ...]], bool]:
    """Rule keys that can be called at the left edge of ``node``, and whether ``node`` is nullable."""
    if isinstance(node, Ref):
        return {node.key}, node.key in nullable
    if isinstance(node, (Chars,)):
        return set(), False
    if isinstance(node, Lit):
        return set(), node.text == ""
    if isinstance(node, Repeat):
        refs, null = _left_refs(node.item, nullable)
        return refs, null or node.min == 0
    if isinstance(node, Alt):
        out: set[tuple[str, ...]] = set()
        any_null = False
        for item in node.items:
            refs, null = _left_refs(item, nullable)
            out |= refs
            any_null |= null
        return out, any_null
    if isinstance(node, Seq):
        out = set()
        for item in node.items:
            refs, null = _left_refs(item, nullable)
            out |= refs
            if not null:
                return out, False
        return out, True
    raise AssertionError(node)


def _remove_direct_left_recursion(key: tuple[str, ...], body: Node) -> Node:
    """``x: x a | x b | c | d``  ->  ``x: (c | d) (a | b)*`` (the same language, no left recursion)."""
    alts = body.items if isinstance(body, Alt) else (body,)
    recursive: list[Node] = []
    base: list[Node] = []
    for alt in alts:
        items = alt.items if isinstance(alt, Seq) else (alt,)
        if items and items[0] == Ref(key):
            if len(items) > 1:
                recursive.append(_seq(items[1:]))
        else:
            base.append(alt)
    if not recursive:
        return body
    base_node = _alt(base)
    if base_node is None:
        return EMPTY  # only ``x: x ...``: no finite derivation; refused by the cycle check below
    tail = _alt(recursive)
    assert tail is not None
    return _seq((base_node, Repeat(tail, 0, None)))


# ---------------------------------------------------------------------------------------------------
# emission


_CLASS_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()*+,./:;<=>?@_`{|}~")
_LITERAL_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_code_point(cp: int) -> str:
    if cp <= 0xFF:
        return f"\\x{cp:02X}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04X}"
    return f"\\U{cp:08X}"


def _raw_ok(ch: str) -> bool:
    # Printable non-ASCII goes out as itself (UTF-8): llguidance's GBNF reader mangles \u escapes with
    # leading zeros. Controls, separators, format and unassigned characters are escaped.
    return ord(ch) >= 0x80 and ch.isprintable()


def _literal_char(ch: str) -> str:
    if ch in _LITERAL_ESCAPES:
        return _LITERAL_ESCAPES[ch]
    if 0x20 <= ord(ch) < 0x7F or _raw_ok(ch):
        return ch
    return _escape_code_point(ord(ch))


def _class_char(cp: int) -> str:
    # GBNF has no ``\-`` or ``\^`` escape (llama.cpp refuses them): such characters go out as \xNN.
    ch = chr(cp)
    return ch if ch in _CLASS_SAFE or _raw_ok(ch) else _escape_code_point(cp)


def _emit_ranges(ranges: Intervals) -> str:
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:  # join across the surrogate gap: fewer, equivalent ranges
        if merged and merged[-1][1] == _SURROGATES[0] - 1 and lo == _SURROGATES[1] + 1:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    parts = []
    for lo, hi in merged:
        if lo == hi:
            parts.append(_class_char(lo))
        elif hi == lo + 1:
            parts.append(_class_char(lo) + _class_char(hi))
        else:
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
    return "".join(parts)


def _emit_chars(ranges: Intervals) -> str:
    if not ranges:
        raise GrammarError("a character class matches no character")
    positive = _emit_ranges(ranges)
    complement = _complement(ranges)
    if complement:
        negative = "^" + _emit_ranges(complement)
        if len(negative) < len(positive):
            return f"[{negative}]"
    return f"[{positive}]"


class _Emitter:
    def __init__(self, names: dict[tuple[str, ...], str], terminals: dict[str, Node], inline: set[str]) -> None:
        self.names = names
        self.terminals = terminals
        self.inline = inline

    def node(self, node: Node, context: str = "top") -> str:
        """``context``: "top" (a rule body), "seq" (inside a sequence), "atom" (before a quantifier)."""
        if isinstance(node, Lit):
            text = '"' + "".join(_literal_char(ch) for ch in node.text) + '"'
            return f"({text})" if context == "atom" and len(node.text) > 1 else text
        if isinstance(node, Chars):
            if len(node.ranges) == 1 and node.ranges[0][0] == node.ranges[0][1]:
                return self.node(Lit(chr(node.ranges[0][0])), context)
            return _emit_chars(node.ranges)
        if isinstance(node, Ref):
            if node.key[0] == "term" and node.key[1] in self.inline:
                return self.node(self.terminals[node.key[1]], context)
            return self.names[node.key]
        if isinstance(node, Seq):
            if not node.items:
                return '""'
            if len(node.items) == 1:
                return self.node(node.items[0], context)
            text = " ".join(self.node(i, "seq") for i in node.items)
            return f"({text})" if context == "atom" else text
        if isinstance(node, Alt):
            text = " | ".join(self.node(i, "top") for i in node.items)
            return text if context == "top" else f"({text})"
        if isinstance(node, Repeat):
            inner = self.node(node.item, "atom")
            if node.min == 0 and node.max is None:
                suffix = "*"
            elif node.min == 1 and node.max is None:
                suffix = "+"
            elif node.min == 0 and node.max == 1:
                suffix = "?"
            elif node.max is None:
                suffix = f"{{{node.min},}}"
            elif node.min == node.max:
                suffix = f"{{{node.min}}}"
            else:
                suffix = f"{{{node.min},{node.max}}}"
            return f"({inner}{suffix})" if context == "atom" else inner + suffix
        raise AssertionError(node)


def _gbnf_name(lark_name: str) -> str:
    """Lark names are ``_?[a-z][a-z0-9_]*`` (rules) or ``_?[A-Z][A-Z0-9_]*`` (terminals); GBNF allows
    ``[a-zA-Z0-9-]``. ``_`` becomes ``-``; a leading ``_`` becomes ``R-`` for rules and ``t-`` for
    terminals. Rules stay lowercase and terminals uppercase after the first character, so the map is
    injective and never produces the mixed case of helper names."""
    mapped = lark_name.replace("_", "-")
    if mapped.startswith("-"):
        mapped = ("t" if lark_name.upper() == lark_name else "R") + mapped
    return mapped


class _Names:
    # ``start`` is left free too: llguidance's GBNF reader renames ``root`` to ``start`` and takes any
    # text with a line starting ``start:`` (which ``start ::=`` is) for Lark.
    # Names are also kept distinct after llguidance's renaming (``-`` to ``_``, camelCase split, case
    # folded), so its reader never merges two rules.
    def __init__(self) -> None:
        self.taken: set[str] = {"root", "start"}
        self.folded: set[str] = set(self.taken)

    @staticmethod
    def _folded(name: str) -> str:
        return re.sub(r"([a-z])([A-Z])", r"\1_\2", name.replace("-", "_")).lower()

    def claim(self, preferred: str, fallback: str = "rule") -> str:
        folded = self.folded
        name, n = preferred, 1
        if self._folded(name) in folded:
            name = f"{preferred}-{fallback}"
        while self._folded(name) in folded:
            n += 1
            name = f"{preferred}-{fallback}{n}"
        self.taken.add(name)
        self.folded.add(self._folded(name))
        return name


# ---------------------------------------------------------------------------------------------------
# public entry points


def lark_to_gbnf(text: str, *, start: str = "start", grammar: str = "<string>") -> str:
    """Translate a Lark grammar in the common subset into an equivalent GBNF grammar (root rule ``root``).

    Raises ``GrammarError`` naming the terminal or rule and the construct GBNF cannot express.
    """
    return _convert(text, start, grammar)[0]


@dataclass(frozen=True)
class GbnfRules:
    """The rules ``lark_to_gbnf`` prints, before printing (read-only), for analyses of its text.

    Keys: ``("root",)``, ``("rule", name, variant)`` (variant ``""``, ``"first"`` or ``"nonempty"``),
    ``("term", NAME)``, ``("ignored",)`` (the ``%ignore`` run), ``("hoist", n)`` (a part given a rule of
    its own). In rule bodies every lark token is a ``Ref(("term", NAME))``; the terminals in ``inline``
    are printed in place, the others as rules of their own."""

    names: dict[tuple[str, ...], str]  # key -> its GBNF rule name
    rules: dict[tuple[str, ...], Node]
    terminals: dict[str, Node]  # every terminal's characters
    inline: frozenset[str]


def gbnf_rules(text: str, *, start: str = "start", grammar: str = "<string>") -> GbnfRules:
    """The structure behind ``lark_to_gbnf(text)`` (the same cached conversion)."""
    return _convert(text, start, grammar)[1]


@functools.lru_cache(maxsize=64)
def _convert(text: str, start: str, grammar: str) -> tuple[str, GbnfRules]:
    loaded = _load(text, start, grammar)
    builder = _Builder(loaded, start, grammar)
    variants, root = builder.build()

    rules: dict[tuple[str, ...], Node] = {("root",): root}
    rules.update(variants)
    rules = {k: _lower_tokens(v, builder.ignoring) for k, v in rules.items()}
    if builder.ignoring:
        rules[_IGNORED] = Repeat(_alt(_ignored_unit(loaded, t) for t in loaded.ignored) or EMPTY, 0, None)

    for key in list(rules):
        rules[key] = _remove_direct_left_recursion(key, rules[key])
    nullable = _nullable_keys(rules)
    _refuse_left_recursion(rules, nullable, grammar)

    used_terms = sorted({n.key[1] for body in rules.values() for n in _walk(body) if isinstance(n, Ref) and n.key[0] == "term"})
    inline = {t for t in used_terms if t in loaded.anonymous or isinstance(loaded.terminals[t], (Lit, Chars))}
    for t in used_terms:
        if t not in inline:
            rules[("term", t)] = loaded.terminals[t]
    terminals = _hoist_nested_repeats(rules, dict(loaded.terminals), inline)

    names = _Names()
    assigned: dict[tuple[str, ...], str] = {("root",): "root"}
    for key in rules:  # lark-derived names first: they are injective, helpers yield to them
        if key[0] == "rule" and key[2] == "":
            assigned[key] = names.claim(_gbnf_name(key[1]))
        elif key[0] == "term":
            assigned[key] = names.claim(_gbnf_name(key[1]), "TERM")
    for key in rules:
        if key in assigned:
            continue
        if key == _IGNORED:
            assigned[key] = names.claim("ignored-Ws")
        elif key[0] == "hoist":
            assigned[key] = names.claim(f"nested-Part{key[1]}")
        else:
            assigned[key] = names.claim(f"{_gbnf_name(key[1])}-{'First' if key[2] == 'first' else 'Nonempty'}")

    emitter = _Emitter(assigned, terminals, inline)
    order = [("root",)] + [k for k in rules if k[0] == "rule"] + [k for k in rules if k[0] == "term"]
    order += [k for k in rules if k not in order]
    shown = " ".join(grammar.split())  # one comment line whatever the grammar's name holds
    header = f"# GBNF for {shown} (converted from Lark by constrain; root rule: root)\n"
    lines = [f"{assigned[k]} ::= {emitter.node(rules[k])}" for k in order]
    return header + "\n".join(lines) + "\n", GbnfRules(assigned, rules, terminals, frozenset(inline))


def _ignored_unit(loaded: _Loaded, name: str) -> Node:
    """One ignored terminal inside the ignored run ``(...)*``. ``WS: /[ \\t]+/`` contributes ``[ \\t]``:
    the same run (``(x+ | y)*`` is ``(x | y)*``) without the ambiguity that makes top-down GBNF
    engines track every way of splitting a whitespace run."""
    node = loaded.terminals[name]
    if isinstance(node, Repeat) and node.min <= 1 and (node.max is None or node.max >= 1):
        return node.item
    return Ref(("term", name))


# llguidance's Lark reader (which its GBNF reader goes through) refuses groups nested 30 deep (measured,
# llguidance 1.x); a keyword-excluding identifier regex nests one group per letter of its longest keyword
_MAX_GROUP_DEPTH = 24


def _hoist_nested_repeats(
    rules: dict[tuple[str, ...], Node], terminals: dict[str, Node], inline: set[str]
) -> dict[str, Node]:
    """Give the body of a repetition that is itself a repetition (``x{1,3}*``) a rule of its own:
    llguidance's GBNF reader prints such nesting without parentheses. A group nested deeper than
    ``_MAX_GROUP_DEPTH`` alternations gets a rule of its own too. Edits ``rules`` and ``inline``; returns the terminals
    with their inner nestings hoisted too."""
    counter = [0]

    def hoist(node: Node) -> Node:
        counter[0] += 1
        key = ("hoist", str(counter[0]))
        rules[key] = fix(node)
        return Ref(key)

    def fix(node: Node, depth: int = 0) -> Node:
        if isinstance(node, Seq):
            return Seq(tuple(fix(i, depth) for i in node.items))
        if isinstance(node, Alt):
            if depth >= _MAX_GROUP_DEPTH:
                return hoist(node)
            return Alt(tuple(fix(i, depth + 1) for i in node.items))
        if isinstance(node, Repeat):
            item = node.item
            if isinstance(item, Repeat):
                return Repeat(hoist(item), node.min, node.max)
            if isinstance(item, Ref) and item.key[0] == "term" and item.key[1] in inline:
                if isinstance(terminals[item.key[1]], Repeat):
                    inline.discard(item.key[1])
                    rules[("term", item.key[1])] = terminals[item.key[1]]
            return Repeat(fix(item, depth), node.min, node.max)
        return node

    for key in list(rules):
        rules[key] = fix(rules[key])
    for name in list(inline):
        terminals[name] = fix(terminals[name])
    for name in list(terminals):  # terminals moved out of ``inline`` above
        if ("term", name) in rules:
            rules[("term", name)] = fix(rules[("term", name)])
    return terminals


def _nullable_keys(rules: dict[tuple[str, ...], Node]) -> set[tuple[str, ...]]:
    nullable: set[tuple[str, ...]] = set()
    changed = True
    while changed:
        changed = False
        for key, body in rules.items():
            if key not in nullable and _left_refs(body, nullable)[1]:
                nullable.add(key)
                changed = True
    return nullable


def _refuse_left_recursion(rules: dict[tuple[str, ...], Node], nullable: set[tuple[str, ...]], grammar: str) -> None:
    calls = {key: {r for r in _left_refs(body, nullable)[0] if r in rules} for key, body in rules.items()}
    state: dict[tuple[str, ...], int] = {}
    path: list[tuple[str, ...]] = []

    def visit(key: tuple[str, ...]) -> None:
        state[key] = 1
        path.append(key)
        for nxt in sorted(calls.get(key, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                shown = " -> ".join(k[1] if len(k) > 1 else k[0] for k in cycle)
                raise GrammarError(
                    f"grammar {grammar} is left-recursive through {shown}: GBNF engines parse top-down "
                    f"and only direct left recursion (x: x ... | ...) is rewritten",
                    grammar=grammar,
                )
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[key] = 2

    for key in rules:
        if key not in state:
            visit(key)
