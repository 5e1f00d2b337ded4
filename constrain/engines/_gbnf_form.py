"""The grammar form ``lark_to_gbnf`` builds and rewrites before printing: a context-free grammar over
characters (``Lit``, ``Chars``, ``Seq``, ``Alt``, ``Repeat``) whose rules call each other (``Ref``) and
use lark's tokens (``Tok``), and the rewrites GBNF engines need: ignored text between tokens, non-empty
rule variants, left recursion removed (or refused), nested repetitions and deep groups hoisted.

Terminals arrive as the shared regex AST (``constrain._regex``) and are lowered here (``from_regex``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Union

from .._regex import nodes as rx
from .._regex.charsets import Intervals
from ..errors import GrammarError


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
IGNORED: tuple[str, ...] = ("ignored",)


def seq_of(items: Iterable[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        for sub in item.items if isinstance(item, Seq) else (item,):
            if isinstance(sub, Lit) and flat and isinstance(flat[-1], Lit):
                flat[-1] = Lit(flat[-1].text + sub.text)
            else:
                flat.append(sub)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def alt_of(items: Iterable[Node]) -> Node | None:
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


def repeat_of(item: Node, lo: int, hi: int | None) -> Node:
    if hi == 0:
        return EMPTY
    if lo == hi == 1:
        return item
    return Repeat(item, lo, hi)


def from_regex(node: rx.Node) -> Node:
    """A terminal's regex as grammar nodes: runs of literal characters become one ``Lit``."""
    if isinstance(node, rx.CharNode):
        return Lit(chr(node.chars[0][0])) if node.literal else Chars(node.chars)
    if isinstance(node, rx.SeqNode):
        return seq_of(from_regex(item) for item in node.items)
    if isinstance(node, rx.AltNode):
        choice = alt_of(from_regex(option) for option in node.options)
        assert choice is not None
        return choice
    if isinstance(node, rx.RepNode):
        return repeat_of(from_regex(node.body), node.lo, node.hi)
    raise AssertionError(node)  # anchors are refused by the Python-flavour parser


@dataclass
class Loaded:
    terminals: dict[str, Node]  # terminal name -> its characters
    rules: dict[str, Node]  # rule name -> body (tokens as Tok, rules as Ref(("rule", name, "")))
    ignored: tuple[str, ...]
    anonymous: frozenset[str]


# ---------------------------------------------------------------------------------------------------
# rule variants: ignored text between tokens, non-empty forms, left recursion


class RuleBuilder:
    """Builds the GBNF rule set: ``plain`` rules, their ``first`` and ``nonempty`` variants."""

    def __init__(self, loaded: Loaded, start: str, grammar: str) -> None:
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
            if node.key == IGNORED:
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
            root = alt_of(root_items) or EMPTY
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
            if node.key == IGNORED:
                raise AssertionError("ignored text is only inserted at emission")
            _k, name, variant = node.key
            if variant and (variant == "first" or not first):
                return node  # already non-empty (and already first-mode if needed)
            if not self._can_be_nonempty(name):
                return None
            return self.ref(name, "first" if first else "nonempty")
        if isinstance(node, Alt):
            return alt_of(x for x in (self.nonempty(i, first=first) for i in node.items) if x is not None)
        if isinstance(node, Seq):
            options: list[Node] = []
            for i, item in enumerate(node.items):
                head = self.nonempty(item, first=first)
                if head is not None:
                    options.append(seq_of((head, *node.items[i + 1 :])))
                if not self._nullable(item):
                    break
            return alt_of(options)
        if isinstance(node, Repeat):
            if node.max == 0:
                return None
            head = self.nonempty(node.item, first=first)
            if head is None:
                return None
            hi = None if node.max is None else node.max - 1
            lo = 0 if self._nullable(node.item) else max(node.min - 1, 0)
            return seq_of((head, repeat_of(node.item, lo, hi)))
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
            for node in walk(self.loaded.rules[current]):
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
                return repeat_of(self.fix_repeats(self.relink(solid)), 0, node.max)
            return Repeat(item, node.min, node.max)
        return node


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, (Seq, Alt)):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Repeat):
        yield from walk(node.item)


def _token_node(tok: Tok, ignoring: bool) -> Node:
    term = Ref(("term", tok.name))
    return Seq((Ref(IGNORED), term)) if tok.lead and ignoring else term


def lower_tokens(node: Node, ignoring: bool) -> Node:
    if isinstance(node, Tok):
        return _token_node(node, ignoring)
    if isinstance(node, Seq):
        return seq_of(lower_tokens(i, ignoring) for i in node.items)
    if isinstance(node, Alt):
        return Alt(tuple(lower_tokens(i, ignoring) for i in node.items))
    if isinstance(node, Repeat):
        return Repeat(lower_tokens(node.item, ignoring), node.min, node.max)
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


def remove_direct_left_recursion(key: tuple[str, ...], body: Node) -> Node:
    """``x: x a | x b | c | d``  ->  ``x: (c | d) (a | b)*`` (the same language, no left recursion)."""
    alts = body.items if isinstance(body, Alt) else (body,)
    recursive: list[Node] = []
    base: list[Node] = []
    for alt in alts:
        items = alt.items if isinstance(alt, Seq) else (alt,)
        if items and items[0] == Ref(key):
            if len(items) > 1:
                recursive.append(seq_of(items[1:]))
            # a bare ``x`` alternative derives nothing new: dropped
        else:
            base.append(alt)
    if len(base) == len(alts):
        return body
    if not recursive:
        return alt_of(base) or body  # only ``x: x``: refused by the cycle check below
    base_node = alt_of(base)
    if base_node is None:
        return EMPTY  # only ``x: x ...``: no finite derivation; refused by the cycle check below
    tail = alt_of(recursive)
    assert tail is not None
    return seq_of((base_node, Repeat(tail, 0, None)))


def ignored_unit(loaded: Loaded, name: str) -> Node:
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


def hoist_nested_repeats(
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


def nullable_keys(rules: dict[tuple[str, ...], Node]) -> set[tuple[str, ...]]:
    nullable: set[tuple[str, ...]] = set()
    changed = True
    while changed:
        changed = False
        for key, body in rules.items():
            if key not in nullable and _left_refs(body, nullable)[1]:
                nullable.add(key)
                changed = True
    return nullable


def refuse_left_recursion(rules: dict[tuple[str, ...], Node], nullable: set[tuple[str, ...]], grammar: str) -> None:
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
