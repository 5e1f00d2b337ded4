"""A pattern AST worked on directly, with no automaton: what is left of a pattern once a string has
started with a given character (its derivative), and the words a pattern says a string must start
with (``^(https?|ftp)://``). The node builders here simplify as they go (merged character classes,
no nested empty sequences); ``_automaton`` writes its automata back as pattern ASTs with them too.
"""

from __future__ import annotations

from . import _regex
from ._regex import AltNode, CharNode, Intervals, Node, RepNode, SeqNode


# -- node builders that simplify as they go ---------------------------------------------------------------
EPS = SeqNode(())
"""The empty sequence: matches the empty string only."""


def is_eps(n: Node) -> bool:
    return isinstance(n, SeqNode) and not n.items


def alt(a: Node | None, b: Node) -> Node:
    if a is None:
        return b
    if isinstance(a, CharNode) and isinstance(b, CharNode):
        return CharNode(_regex.union(a.chars, b.chars))
    options: list[Node] = []
    for x in (a, b):
        options.extend(x.options if isinstance(x, AltNode) else [x])
    # merge single characters; keep one copy of equal options
    chars: Intervals = ()
    rest: list[Node] = []
    for o in options:
        if isinstance(o, CharNode):
            chars = _regex.union(chars, o.chars)
        elif o not in rest:
            rest.append(o)
    if chars:
        rest.insert(0, CharNode(chars))
    if len(rest) == 2 and any(is_eps(o) for o in rest):
        other = rest[0] if is_eps(rest[1]) else rest[1]
        return opt(other)
    return rest[0] if len(rest) == 1 else AltNode(tuple(rest))


def opt(n: Node) -> Node:
    if is_eps(n):
        return n
    if isinstance(n, RepNode) and n.lo <= 1:
        return RepNode(n.body, 0, n.hi)
    return RepNode(n, 0, 1)


def seq(*parts: Node) -> Node:
    items: list[Node] = []
    for p in parts:
        items.extend(p.items if isinstance(p, SeqNode) else [p])
    return items[0] if len(items) == 1 else SeqNode(tuple(items))


def star(n: Node) -> Node:
    if is_eps(n):
        return n
    if isinstance(n, RepNode) and n.hi is None and n.lo <= 1:
        return RepNode(n.body, 0, None)
    return RepNode(n, 0, None)


# -- derivatives of a pattern AST by a prefix ------------------------------------------------------------
def nullable(node: Node) -> bool:
    if isinstance(node, CharNode):
        return False
    if isinstance(node, SeqNode):
        return all(nullable(i) for i in node.items)
    if isinstance(node, AltNode):
        return any(nullable(o) for o in node.options)
    if isinstance(node, RepNode):
        return node.lo == 0 or nullable(node.body)
    return True


def derivative(node: Node, cp: int) -> Node | None:
    """The strings s such that chr(cp) + s is in ``node`` (None: none)."""
    if isinstance(node, CharNode):
        return EPS if _regex.contains(node.chars, cp) else None
    if isinstance(node, SeqNode):
        out: Node | None = None
        items = node.items
        for k, item in enumerate(items):
            d = derivative(item, cp)
            if d is not None:
                out = alt(out, seq(d, *items[k + 1 :]))
            if not nullable(item):
                break
        return out
    if isinstance(node, AltNode):
        out = None
        for option in node.options:
            d = derivative(option, cp)
            if d is not None:
                out = alt(out, d)
        return out
    if isinstance(node, RepNode):
        if node.hi == 0:
            return None
        d = derivative(node.body, cp)
        if d is None:
            return None
        lo = 0 if nullable(node.body) else max(node.lo - 1, 0)
        rest = RepNode(node.body, lo, None if node.hi is None else node.hi - 1)
        return seq(d, rest) if rest.hi != 0 else d
    return None


def prefixes(pattern: str, limit: int = 32) -> list[str] | None:
    """For a pattern that says "starts with one of these strings" (``^(https?|ftp)://``): the minimal
    such strings (none a prefix of another); None for any other pattern."""
    try:
        tree = _regex.simplify(_regex.parse(pattern))
    except _regex.PatternError:
        return None
    words: list[str] = []
    for branch in _regex._branches(tree):
        try:
            start, body, end = _regex._anchors(branch)
        except _regex.PatternError:
            return None
        if not start or end or _regex.has_anchor(body):
            return None
        found = _finite(body, limit)
        if found is None:
            return None
        words += found
        if len(words) > limit:
            return None
    words = sorted(set(words), key=lambda word: (len(word), word))
    minimal: list[str] = []
    for w in words:
        if not any(w.startswith(m) for m in minimal):
            minimal.append(w)
    return minimal


def _finite(node: Node, limit: int) -> list[str] | None:
    if isinstance(node, CharNode):
        size = sum(hi - lo + 1 for lo, hi in node.chars)
        if size > limit:
            return None
        return [chr(c) for lo, hi in node.chars for c in range(lo, hi + 1)]
    if isinstance(node, SeqNode):
        out = [""]
        for item in node.items:
            sub = _finite(item, limit)
            if sub is None:
                return None
            out = [a + b for a in out for b in sub]
            if len(out) > limit:
                return None
        return out
    if isinstance(node, AltNode):
        out = []
        for option in node.options:
            sub = _finite(option, limit)
            if sub is None:
                return None
            out += sub
        return out if len(out) <= limit else None
    if isinstance(node, RepNode):
        if node.hi is None:
            return None
        sub = _finite(node.body, limit)
        if sub is None:
            return None
        out = []
        for count in range(node.lo, node.hi + 1):
            cur = [""]
            for _ in range(count):
                cur = [a + b for a in cur for b in sub]
                if len(cur) > limit:
                    return None
            out += cur
        return out if len(out) <= limit else None
    return None
