"""Lark (the common subset) -> GBNF, the grammar format of llama.cpp server and SGLang/xgrammar.

The grammar is read by lark's own loader, so every terminal arrives as one flattened regex (strings,
``"a".."z"``, ``%import common.X`` and terminal references already resolved by lark) and every rule
as lark's EBNF tree. Regexes are read into the shared regex AST by Python's own regex parser
(``constrain._regex.python_re``), so a class, flag or escape means in GBNF exactly what it means to
lark: character sets are computed as code-point intervals (``\\d \\w \\s`` with Python's Unicode
meaning, ``i`` expanded to every case variant Python's matcher accepts, ``.`` without the ``s`` flag
excluding ``\\n``). Controls, unprintable characters and ``"\\]-^`` are written as
``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN`` (llama.cpp has no ``\\-``), printable non-ASCII as itself.

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

This module loads the grammar and holds the entry points; ``_gbnf_form`` builds and rewrites the
grammar form, ``_gbnf_print`` prints it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

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

from .._regex import python_re
from .._regex.charsets import intersect, without_surrogates
from ..errors import GrammarError
from ._gbnf_form import (
    EMPTY,
    IGNORED,
    Alt,
    Chars,
    Lit,
    Loaded,
    Node,
    Ref,
    Repeat,
    RuleBuilder,
    Seq,
    Tok,
    alt_of,
    from_regex,
    hoist_nested_repeats,
    ignored_unit,
    lower_tokens,
    nullable_keys,
    refuse_left_recursion,
    remove_direct_left_recursion,
    repeat_of,
    seq_of,
    walk,
)
from ._gbnf_print import Emitter, Names, gbnf_name

__all__ = [
    "lark_to_gbnf", "gbnf_rules", "GbnfRules", "COMMON_EQUIVALENTS",
    # the nodes of ``GbnfRules``
    "Chars", "Lit", "Seq", "Alt", "Repeat", "Ref", "Tok", "Node",
]

# constrain.grammar.lint reads the character sets of ``GbnfRules`` with these
_normalize = without_surrogates
_intersect = intersect


def _load(text: str, start: str, grammar: str) -> Loaded:
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
        terminals[d.name] = _terminal_node(d.name, substitutes.get(regex, regex), grammar)
    # lark's generated names (``__ANON_0``, ``__IGNORE_0``) and rule-body literals are inlined
    anonymous = frozenset(n for n in terminals if n not in declared or n.startswith("__"))
    return Loaded(terminals, rules, tuple(loaded.ignore), anonymous)


def _terminal_node(terminal: str, regex: str, grammar: str) -> Node:
    try:
        return from_regex(python_re.parse(regex))
    except re.error as exc:
        raise GrammarError(f"terminal {terminal}: invalid regex: {exc}", grammar=grammar) from None
    except python_re.UnsupportedConstruct as exc:
        raise GrammarError(
            f"terminal {terminal} uses {exc}, which GBNF cannot express", grammar=grammar
        ) from None


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
        alt = alt_of(_rule_node(k, rule, grammar, rule_names) for k in kids)
        return alt if alt is not None else EMPTY
    if tree.data == "alias":
        return _rule_node(kids[0], rule, grammar, rule_names)
    if tree.data == "expansion":
        return seq_of(_rule_node(k, rule, grammar, rule_names) for k in kids)
    if tree.data == "maybe":
        return repeat_of(_rule_node(kids[0], rule, grammar, rule_names), 0, 1)
    if tree.data == "expr":
        item = _rule_node(kids[0], rule, grammar, rule_names)
        op = str(kids[1])
        if op == "?":
            return repeat_of(item, 0, 1)
        if op == "*":
            return repeat_of(item, 0, None)
        if op == "+":
            return repeat_of(item, 1, None)
        if op == "~":
            lo = int(kids[2])
            hi = int(kids[3]) if len(kids) > 3 else lo
            return repeat_of(item, lo, hi)
        raise GrammarError(f"rule {rule}: unsupported operator {op!r}", grammar=grammar)
    if tree.data == "template_usage":
        used = getattr(kids[0], "name", kids[0])
        raise GrammarError(f"rule {rule} uses the template {used}: GBNF has no templates", grammar=grammar)
    raise GrammarError(f"rule {rule}: unsupported construct {tree.data!r}", grammar=grammar)


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
    builder = RuleBuilder(loaded, start, grammar)
    variants, root = builder.build()

    rules: dict[tuple[str, ...], Node] = {("root",): root}
    rules.update(variants)
    rules = {k: lower_tokens(v, builder.ignoring) for k, v in rules.items()}
    if builder.ignoring:
        rules[IGNORED] = Repeat(alt_of(ignored_unit(loaded, t) for t in loaded.ignored) or EMPTY, 0, None)

    for key in list(rules):
        rules[key] = remove_direct_left_recursion(key, rules[key])
    nullable = nullable_keys(rules)
    refuse_left_recursion(rules, nullable, grammar)

    used_terms = sorted({n.key[1] for body in rules.values() for n in walk(body) if isinstance(n, Ref) and n.key[0] == "term"})
    inline = {t for t in used_terms if t in loaded.anonymous or isinstance(loaded.terminals[t], (Lit, Chars))}
    for t in used_terms:
        if t not in inline:
            rules[("term", t)] = loaded.terminals[t]
    terminals = hoist_nested_repeats(rules, dict(loaded.terminals), inline)

    names = Names()
    assigned: dict[tuple[str, ...], str] = {("root",): "root"}
    for key in rules:  # lark-derived names first: they are injective, helpers yield to them
        if key[0] == "rule" and key[2] == "":
            assigned[key] = names.claim(gbnf_name(key[1]))
        elif key[0] == "term":
            assigned[key] = names.claim(gbnf_name(key[1]), "TERM")
    for key in rules:
        if key in assigned:
            continue
        if key == IGNORED:
            assigned[key] = names.claim("ignored-Ws")
        elif key[0] == "hoist":
            assigned[key] = names.claim(f"nested-Part{key[1]}")
        else:
            assigned[key] = names.claim(f"{gbnf_name(key[1])}-{'First' if key[2] == 'first' else 'Nonempty'}")

    emitter = Emitter(assigned, terminals, inline)
    order = [("root",)] + [k for k in rules if k[0] == "rule"] + [k for k in rules if k[0] == "term"]
    order += [k for k in rules if k not in order]
    shown = " ".join(grammar.split())  # one comment line whatever the grammar's name holds
    header = f"# GBNF for {shown} (converted from Lark by constrain; root rule: root)\n"
    lines = [f"{assigned[k]} ::= {emitter.node(rules[k])}" for k in order]
    return header + "\n".join(lines) + "\n", GbnfRules(assigned, rules, terminals, frozenset(inline))

