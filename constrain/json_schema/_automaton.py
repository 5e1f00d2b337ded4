"""Finite automata over code points: what one regex cannot say about another.

A pattern and a format on the same string, two patterns, ``not: {pattern}``, the keys outside a
``patternProperties`` pattern, length bounds around a pattern: each is an intersection or a
complement of regular languages. Here a pattern AST (``_regex.Node``) becomes a deterministic
automaton whose transitions are labelled by sets of code points; automata intersect and complement
exactly, and come back as a pattern AST by state elimination, which ``_regex.emit`` spells over JSON
text like any translated pattern. Every step has a size bound: past it ``TooLarge`` is raised and the
caller refuses the schema (or widens), as for any keyword a grammar cannot state.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from . import _regex
from ._derivatives import EPS, alt, is_eps, seq, star
from ._regex import AltNode, CharNode, Intervals, Node, RepNode, SeqNode

MAX_NFA_STATES = 20_000
MAX_DFA_STATES = 3_000
MAX_ELIMINATED = 400
"""Most automaton states written back as a regex."""
MAX_REGEX_CHARS = 30_000
"""Largest regex written back from an automaton (longer ones are refused)."""
SCHEMA_BUDGET = 60_000
"""Automaton states one schema compile (or one pattern the validator reads) may build, see ``budget``."""


class TooLarge(ValueError):
    """An automaton or the regex written from it would pass the size bounds."""


_local = threading.local()


@contextlib.contextmanager
def budget(states: int) -> Iterator[None]:
    """Bound the automaton states built inside the block (all automata together): a schema whose
    strings need more work than this is refused (or widened) instead of running to the time limit."""
    previous = getattr(_local, "fuel", None)
    _local.fuel = [states]
    try:
        yield
    finally:
        _local.fuel = previous


def _spend(n: int = 1) -> None:
    fuel = getattr(_local, "fuel", None)
    if fuel is not None:
        fuel[0] -= n
        if fuel[0] < 0:
            raise TooLarge("automata for this schema's strings take too much work")


# -- NFA (Thompson) ----------------------------------------------------------------------------------------
class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[Intervals, int]]] = []

    def state(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise TooLarge("automaton too large")
        _spend()
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: Node, start: int) -> int:
        """Add ``node`` from ``start``; return its end state."""
        if isinstance(node, CharNode):
            end = self.state()
            if node.chars:
                self.edges[start].append((node.chars, end))
            return end
        if isinstance(node, SeqNode):
            cur = start
            for item in node.items:
                cur = self.build(item, cur)
            return cur
        if isinstance(node, AltNode):
            end = self.state()
            for option in node.options:
                s = self.state()
                self.eps[start].append(s)
                self.eps[self.build(option, s)].append(end)
            return end
        if isinstance(node, RepNode):
            cur = start
            for _ in range(node.lo):
                cur = self.build(node.body, cur)
            if node.hi is None:
                loop = self.state()
                self.eps[cur].append(loop)
                self.eps[self.build(node.body, loop)].append(loop)
                return loop
            end = self.state()
            self.eps[cur].append(end)
            for _ in range(node.hi - node.lo):
                cur = self.build(node.body, cur)
                self.eps[cur].append(end)
            return end
        raise _regex.PatternError("anchor inside the pattern")


def _reach(starts: Iterable[int], edges: Sequence[Sequence[int]]) -> set[int]:
    """The states reachable from ``starts`` along ``edges[state]``."""
    seen = set(starts)
    todo = list(seen)
    while todo:
        for t in edges[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def _closure(nfa: _NFA, states: Iterable[int]) -> frozenset[int]:
    return frozenset(_reach(states, nfa.eps))


# -- DFA -------------------------------------------------------------------------------------------------
@dataclass
class DFA:
    """Complete DFA: ``atoms`` partition the code points (surrogates excluded); ``trans[s][a]`` is the
    state after atom ``a``; state 0 starts."""

    atoms: list[Intervals]
    trans: list[list[int]]
    accept: list[bool]

    @property
    def size(self) -> int:
        return len(self.trans)


def _atoms(labels: Iterable[Intervals]) -> list[Intervals]:
    """The coarsest partition of the code points that every label is a union of."""
    labels = list(dict.fromkeys(labels))
    cuts = {0, _regex.MAX_CP + 1}
    for label in labels:
        for lo, hi in label:
            cuts.add(lo)
            cuts.add(hi + 1)
    points = sorted(cuts)
    pieces = [((lo, hi - 1),) for lo, hi in zip(points, points[1:])]
    # merge pieces that no label tells apart
    signature: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    label_list = labels
    for piece in pieces:
        lo = piece[0][0]
        key = tuple(i for i, label in enumerate(label_list) if _regex.contains(label, lo))
        signature.setdefault(key, []).extend(piece)
    out = []
    for ivs in signature.values():
        atom = _regex.minus(_regex.normalize(ivs), _regex.SURROGATES)
        if atom:
            out.append(atom)
    return out


def _determinize(nfa: _NFA, start: int, final: int) -> DFA:
    labels = [label for edges in nfa.edges for label, _ in edges]
    atoms = _atoms(labels)
    atom_of_label: dict[Intervals, list[int]] = {}
    for label in set(labels):
        atom_of_label[label] = [i for i, atom in enumerate(atoms) if _regex.intersect(atom, label)]
    index: dict[frozenset[int], int] = {}
    sets: list[frozenset[int]] = []
    trans: list[list[int]] = []

    def add(states: frozenset[int]) -> int:
        if states not in index:
            if len(sets) >= MAX_DFA_STATES:
                raise TooLarge("automaton too large")
            _spend(1 + len(atoms) // 8)
            index[states] = len(sets)
            sets.append(states)
            trans.append([])
        return index[states]

    add(_closure(nfa, [start]))
    i = 0
    while i < len(sets):
        moves: list[set[int]] = [set() for _ in atoms]
        for s in sets[i]:
            for label, t in nfa.edges[s]:
                for a in atom_of_label[label]:
                    moves[a].add(t)
        row = []
        for a in range(len(atoms)):
            row.append(add(_closure(nfa, moves[a])))
        trans[i] = row
        i += 1
    accept = [final in s for s in sets]
    return DFA(atoms, trans, accept)


def from_node(node: Node) -> DFA:
    """The automaton of ``node`` matched against the whole string (no anchors inside)."""
    nfa = _NFA()
    start = nfa.state()
    final = nfa.build(node, start)
    return minimize(_determinize(nfa, start, final))


def from_pattern(pattern: str) -> DFA:
    """The strings an ECMA-262 ``pattern`` matches somewhere (search semantics), as ``translate`` reads it.
    A lookahead right after a leading ``^`` (``^(?!org\\.bukkit\\.)...``, ``^(?=.*\\d)...``) is read too:
    the rest of the pattern, with or without the strings that start with the lookahead's match."""
    split = _leading_lookahead(pattern)
    if split is not None:
        positive, inner, rest = split
        head = from_pattern("^(?:" + inner + ")")
        tail = from_pattern(rest)
        return intersect(tail, head) if positive else minus(tail, head)
    tree = _regex.simplify(_regex.parse(pattern))
    branches = []
    anything = RepNode(CharNode(_regex.ANY), 0, None)
    for branch in _regex._branches(tree):
        start, body, end = _regex._anchors(branch)
        if _regex.has_anchor(body):
            raise _regex.PatternError("anchor inside the pattern (only a leading ^ and trailing $ are supported)")
        items: list[Node] = [] if start else [anything]
        items.append(body)
        if not end:
            items.append(anything)
        branches.append(SeqNode(tuple(items)))
    return from_node(branches[0] if len(branches) == 1 else AltNode(tuple(branches)))


def _leading_lookahead(pattern: str) -> tuple[bool, str, str] | None:
    """(positive, lookahead body, "^" + the rest) for ``^(?=body)rest`` / ``^(?!body)rest`` where the
    rest has no top-level alternation (so the lookahead applies to the whole pattern); else None."""
    if not (pattern.startswith("^(?=") or pattern.startswith("^(?!")):
        return None
    close = _group_end(pattern, 1)
    if close is None:
        return None
    rest = pattern[close + 1 :]
    if _top_level_bar(rest):
        return None
    return pattern[3] == "=", pattern[4:close], "^" + rest


def _group_end(text: str, start: int) -> int | None:
    """Index of the ``)`` closing the group opened at ``text[start]``."""
    return next((i for i, c, depth in _regex.scan_groups(text, start) if c == ")" and depth == 0), None)


def _top_level_bar(text: str) -> bool:
    return any(c == "|" and depth == 0 for _, c, depth in _regex.scan_groups(text))


def strings(words: Iterable[str]) -> DFA:
    """Exactly the given strings."""
    options = tuple(SeqNode(tuple(CharNode(((ord(c), ord(c)),)) for c in w)) for w in dict.fromkeys(words))
    if not options:
        return DFA([_regex.ANY], [[0]], [False])
    return from_node(options[0] if len(options) == 1 else AltNode(options))


def everything(chars: Intervals = _regex.ANY) -> DFA:
    return from_node(RepNode(CharNode(chars), 0, None))


def lengths(lo: int, hi: int | None) -> DFA:
    return from_node(RepNode(CharNode(_regex.ANY), lo, hi))


# -- operations ----------------------------------------------------------------------------------------
def _refine(a: DFA, b: DFA) -> tuple[list[Intervals], list[int], list[int]]:
    atoms, ia, ib = [], [], []
    for i, x in enumerate(a.atoms):
        for j, y in enumerate(b.atoms):
            z = _regex.intersect(x, y)
            if z:
                atoms.append(z)
                ia.append(i)
                ib.append(j)
    return atoms, ia, ib


def _product(a: DFA, b: DFA, both: bool) -> DFA:
    atoms, ia, ib = _refine(a, b)
    index = {(0, 0): 0}
    pairs = [(0, 0)]
    trans: list[list[int]] = []
    i = 0
    while i < len(pairs):
        p, q = pairs[i]
        row = []
        for k in range(len(atoms)):
            nxt = (a.trans[p][ia[k]], b.trans[q][ib[k]])
            if nxt not in index:
                if len(pairs) >= MAX_DFA_STATES:
                    raise TooLarge("automaton too large")
                _spend(1 + len(atoms) // 8)
                index[nxt] = len(pairs)
                pairs.append(nxt)
            row.append(index[nxt])
        trans.append(row)
        i += 1
    accept = [(a.accept[p] and b.accept[q]) if both else (a.accept[p] or b.accept[q]) for p, q in pairs]
    return minimize(DFA(atoms, trans, accept))


def intersect(a: DFA, b: DFA) -> DFA:
    return _product(a, b, True)


def union(a: DFA, b: DFA) -> DFA:
    return _product(a, b, False)


def complement(a: DFA) -> DFA:
    return DFA(a.atoms, a.trans, [not x for x in a.accept])


def minus(a: DFA, b: DFA) -> DFA:
    return intersect(a, complement(b))


def is_empty(a: DFA) -> bool:
    return not any(a.accept[s] for s in _reachable(a))


def subset(a: DFA, b: DFA) -> bool:
    """Every string of ``a`` is in ``b``."""
    return is_empty(minus(a, b))


def equivalent(a: DFA, b: DFA) -> bool:
    return subset(a, b) and subset(b, a)


def accepts(a: DFA, text: str) -> bool:
    s = 0
    for ch in text:
        cp = ord(ch)
        for k, atom in enumerate(a.atoms):
            if _regex.contains(atom, cp):
                s = a.trans[s][k]
                break
        else:
            return False
    return a.accept[s]


def _reachable(a: DFA) -> list[int]:
    return sorted(_reach([0], a.trans))


def minimize(a: DFA) -> DFA:
    """Moore's partition refinement over the reachable states; merges atoms no state tells apart."""
    states = _reachable(a)
    block = {s: int(a.accept[s]) for s in states}
    while True:
        keys: dict[tuple[int, ...], int] = {}
        new = {}
        for s in states:
            key = (block[s],) + tuple(block[t] for t in a.trans[s])
            new[s] = keys.setdefault(key, len(keys))
        if len(keys) == len(set(block.values())):
            block = new
            break
        block = new
    # renumber with the start state first
    order: dict[int, int] = {block[0]: 0}
    for s in states:
        order.setdefault(block[s], len(order))
    n = len(order)
    rep: dict[int, int] = {}
    for s in states:
        rep.setdefault(order[block[s]], s)
    trans = [[order[block[t]] for t in a.trans[rep[i]]] for i in range(n)]
    accept = [a.accept[rep[i]] for i in range(n)]
    # merge atoms that every state sends to the same place
    columns: dict[tuple[int, ...], int] = {}
    atoms: list[list[tuple[int, int]]] = []
    for k, atom in enumerate(a.atoms):
        col = tuple(row[k] for row in trans)
        if col in columns:
            atoms[columns[col]].extend(atom)
        else:
            columns[col] = len(atoms)
            atoms.append(list(atom))
    keep = list(columns)
    merged_atoms = [_regex.normalize(x) for x in atoms]
    trans = [[col[i] for col in keep] for i in range(n)]
    return DFA(merged_atoms, trans, accept)


def restrict_length(a: DFA, lo: int, hi: int | None) -> DFA:
    return intersect(a, lengths(lo, hi))


def length_bounds(a: DFA) -> tuple[int, int | None] | None:
    """Shortest and longest accepted string (None: unbounded); None if the language is empty."""
    live = _live(a)
    if 0 not in live:
        return None
    # shortest: BFS
    dist = {0: 0}
    todo = [0]
    shortest = None
    while todo:
        nxt = []
        for s in todo:
            if a.accept[s]:
                shortest = dist[s] if shortest is None else min(shortest, dist[s])
            for t in a.trans[s]:
                if t in live and t not in dist:
                    dist[t] = dist[s] + 1
                    nxt.append(t)
        todo = nxt
    # longest: a cycle among live states means unbounded
    color: dict[int, int] = {}
    longest: dict[int, int] = {}

    def visit(s: int) -> int | None:
        color[s] = 1
        best = 0 if a.accept[s] else -1
        for t in set(a.trans[s]):
            if t not in live:
                continue
            if color.get(t) == 1:
                return None
            if color.get(t) != 2:
                if visit(t) is None:
                    return None
            if longest[t] >= 0:
                best = max(best, longest[t] + 1)
        color[s] = 2
        longest[s] = best
        return best

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(a.trans) + 100))
    try:
        top = visit(0)
    finally:
        sys.setrecursionlimit(limit)
    return (shortest or 0, top)


def _live(a: DFA) -> set[int]:
    """States from which an accepting state is reachable."""
    back: dict[int, set[int]] = {}
    for s, row in enumerate(a.trans):
        for t in row:
            back.setdefault(t, set()).add(s)
    live = {s for s in range(a.size) if a.accept[s]}
    todo = list(live)
    while todo:
        for p in back.get(todo.pop(), ()):
            if p not in live:
                live.add(p)
                todo.append(p)
    return live


# -- back to a pattern AST (state elimination) ------------------------------------------------------------
def to_node(a: DFA) -> Node | None:
    """A pattern AST of the automaton's language (None if empty); TooLarge if it would be too long."""
    live = _live(a)
    if 0 not in live:
        return None
    states = [s for s in _reachable(a) if s in live]
    if len(states) > MAX_ELIMINATED:
        raise TooLarge("automaton too large to write as a regex")
    start, final = -1, -2
    edges: dict[int, dict[int, Node]] = {s: {} for s in states + [start]}
    for s in states:
        by_target: dict[int, list[tuple[int, int]]] = {}
        for k, t in enumerate(a.trans[s]):
            if t in live:
                by_target.setdefault(t, []).extend(a.atoms[k])
        for t, ivs in by_target.items():
            edges[s][t] = CharNode(_regex.normalize(ivs))
        if a.accept[s]:
            edges[s][final] = EPS
    edges[start][0] = EPS
    remaining = list(states)
    budget = MAX_REGEX_CHARS * 4
    while remaining:
        def cost(k: int) -> int:
            ins = sum(1 for p in edges if p != k and k in edges[p])
            outs = sum(1 for q in edges[k] if q != k)
            return ins * outs
        k = min(remaining, key=cost)
        remaining.remove(k)
        loop = edges[k].pop(k, None)
        outs = edges.pop(k)
        loop_node = star(loop) if loop is not None else None
        for p in list(edges):
            into = edges[p].pop(k, None)
            if into is None:
                continue
            for q, out in outs.items():
                path = seq(into, loop_node, out) if loop_node is not None else seq(into, out)
                edges[p][q] = alt(edges[p].get(q), path)
                if _weight(edges[p][q]) > budget:
                    raise TooLarge("regex too long")
    node = edges[start].get(final)
    if node is None:
        return None
    return node


def _weight(n: Node) -> int:
    if isinstance(n, CharNode):
        return 8
    if isinstance(n, SeqNode):
        return sum(_weight(i) for i in n.items) + 1
    if isinstance(n, AltNode):
        return sum(_weight(o) for o in n.options) + 4
    if isinstance(n, RepNode):
        return _weight(n.body) + 6
    return 1


def to_regex(a: DFA) -> str | None:
    """The language as a regex over JSON string text (characters spelt as ``_regex.emit`` spells them);
    None if empty. TooLarge if too long."""
    node = to_node(a)
    if node is None:
        return None
    # no check_safe here: written from a deterministic automaton, the regex is unambiguous (each string
    # has one path), so a backtracking matcher has no exponential number of ways to try
    rx = _regex.emit(node) if not is_eps(node) else ""
    if len(rx) > MAX_REGEX_CHARS:
        raise TooLarge("regex too long")
    return rx
