"""The lexeme trap of llguidance's GBNF reader, found on the structure ``constrain.engines.gbnf`` prints.

llguidance's GBNF reader (``llguidance.gbnf_to_lark``: SGLang's llguidance backend; the script
llama.cpp's docs give GBNF users for its LLGuidance build) turns a GBNF rule whose alternatives are all
terminal (literals, classes, references to such rules, to a fixpoint; never the root) into ONE Lark
terminal: a lexeme, lexed greedily. Where such a rule can end after a complete token and also go on
with a next token, and a character that starts that next token can also start the text after the
rule, the lexer takes that character as the rule's continuation: "int" with an optional "(n)" whose
"(" may be preceded by blanks swallows the blank of "CAST(a AS int )" and then refuses the ")". A
continuation inside one lark token is not a trap: every reading lexes a token greedily.
"""

from __future__ import annotations

from typing import Iterator

from ._linter import rule_heads
from ._subject import CheckedGrammar

_Chars = tuple[tuple[int, int], ...]
_NO_CHARS: _Chars = ()
_MAX_SUBSETS = 4000  # automaton states a lexeme's search visits at most
_MAX_UNROLL = 8  # x{m,n} with a larger bound counts as unbounded
_MAX_DEPTH = 64  # rules inside a lexeme are not recursive; a guard all the same


class _TokenNfa:
    """A finite automaton over tokens, with empty moves."""

    def __init__(self) -> None:
        self.moves: list[list[tuple[tuple[str, ...], int]]] = []
        self.eps: list[list[int]] = []

    def state(self) -> int:
        self.moves.append([])
        self.eps.append([])
        return len(self.moves) - 1

    def closure(self, states: frozenset[int]) -> frozenset[int]:
        out, todo = set(states), list(states)
        while todo:
            for nxt in self.eps[todo.pop()]:
                if nxt not in out:
                    out.add(nxt)
                    todo.append(nxt)
        return frozenset(out)


class _LexemeScan:
    """The lexemes llguidance's GBNF reader makes of ``constrain.engines.gbnf``'s rules, and the
    characters each can go on with after a complete token (``continuations``) or be followed by
    (``follows``), all from the structure ``lark_to_gbnf`` printed."""

    def __init__(self, form: object) -> None:
        from ...engines import gbnf as g  # loaded by the target checks only: the converter is large

        self.g = g
        self.form = form
        self.rules: dict[tuple[str, ...], object] = dict(form.rules)  # type: ignore[attr-defined]
        self.terminal = self._terminal_keys()
        self.nullable: set[tuple[str, ...]] = set()
        self.first: dict[tuple[str, ...], _Chars] = {}
        self._follow: dict[tuple[str, ...], _Chars] = {}
        self._starts_of: dict[tuple[str, ...], dict[tuple[str, ...], _Chars]] = {}
        changed = True
        while changed:
            changed = False
            for key in self._all_keys():
                body = self._body(key)
                if key not in self.nullable and self._nullable(body):
                    self.nullable.add(key)
                    changed = True
                chars = self._first(body)
                if chars != self.first.get(key, _NO_CHARS):
                    self.first[key] = chars
                    changed = True

    # structure ---------------------------------------------------------------------------------------
    def _all_keys(self) -> list[tuple[str, ...]]:
        inline = [("term", name) for name in sorted(self.form.inline)]  # type: ignore[attr-defined]
        return list(self.rules) + [k for k in inline if k not in self.rules]

    def _body(self, key: tuple[str, ...]) -> object:
        if key in self.rules:
            return self.rules[key]
        return self.form.terminals[key[1]]  # type: ignore[attr-defined]

    def _refs(self, node: object) -> Iterator[tuple[str, ...]]:
        g = self.g
        if isinstance(node, g.Ref):
            yield node.key
        elif isinstance(node, (g.Seq, g.Alt)):
            for item in node.items:
                yield from self._refs(item)
        elif isinstance(node, g.Repeat):
            yield from self._refs(node.item)

    def _terminal_keys(self) -> set[tuple[str, ...]]:
        """llguidance's fixpoint (``resolve``): a rule is terminal when every rule it names is; the root
        (its ``start``) never is. Terminals printed in place count as what they print."""
        terminal: set[tuple[str, ...]] = set()
        keys = self._all_keys()
        changed = True
        while changed:
            changed = False
            for key in keys:
                if key == ("root",) or key in terminal:
                    continue
                if all(ref in terminal for ref in self._refs(self._body(key))):
                    terminal.add(key)
                    changed = True
        return terminal

    # character-level sets ----------------------------------------------------------------------------
    def _union(self, *parts: _Chars) -> _Chars:
        return self.g._normalize(r for part in parts for r in part)

    def _nullable(self, node: object) -> bool:
        g = self.g
        if isinstance(node, g.Chars):
            return False
        if isinstance(node, g.Lit):
            return node.text == ""
        if isinstance(node, g.Seq):
            return all(self._nullable(i) for i in node.items)
        if isinstance(node, g.Alt):
            return any(self._nullable(i) for i in node.items)
        if isinstance(node, g.Repeat):
            return node.min == 0 or self._nullable(node.item)
        if isinstance(node, g.Ref):
            return node.key in self.nullable
        raise AssertionError(node)

    def _first(self, node: object) -> _Chars:
        g = self.g
        if isinstance(node, g.Chars):
            return node.ranges
        if isinstance(node, g.Lit):
            return ((ord(node.text[0]), ord(node.text[0])),) if node.text else _NO_CHARS
        if isinstance(node, g.Seq):
            parts = []
            for item in node.items:
                parts.append(self._first(item))
                if not self._nullable(item):
                    break
            return self._union(*parts)
        if isinstance(node, g.Alt):
            return self._union(*(self._first(i) for i in node.items))
        if isinstance(node, g.Repeat):
            return self._first(node.item) if node.max != 0 else _NO_CHARS
        if isinstance(node, g.Ref):
            return self.first.get(node.key, _NO_CHARS)
        raise AssertionError(node)

    def _first_of_rest(self, items: tuple[object, ...]) -> tuple[_Chars, bool]:
        """What ``items`` (in sequence) can start with, and whether they can all be empty."""
        parts = []
        for item in items:
            parts.append(self._first(item))
            if not self._nullable(item):
                return self._union(*parts), False
        return self._union(*parts), True

    # the trap ----------------------------------------------------------------------------------------
    @staticmethod
    def _atomic(key: tuple[str, ...]) -> bool:
        """A lark token (lexed on its own, greedily, by every reading) or the ignored run."""
        return key[0] in ("term", "ignored")

    def traps(self) -> dict[tuple[str, ...], _Chars]:
        """Each lexeme made of several tokens that swallows text the grammar lets follow a lexeme -> the
        characters it takes. The lexer runs every lexeme that may start at a point side by side and goes
        on while one of them can take the next character; a text that ends one lexeme (``w``, tokens
        ``a b``) while another (or the same) can go on with a token after ``w`` is not ended there when
        the next character fits that token, though it also starts what follows the first lexeme."""
        follow: dict[tuple[str, ...], _Chars] = {}
        after_entries: dict[tuple[str, ...], dict[tuple[str, ...], _Chars]] = {}
        self._follow = follow  # grows in place until the fixpoint
        changed = True
        while changed:  # what may follow each non-terminal rule: characters, and lexemes with their follow
            changed = False
            self._starts_of = {}
            for key in self._nonterminal_keys():
                seen: list[tuple[tuple[str, ...], _Chars, dict[tuple[str, ...], _Chars]]] = []
                self._walk(self.rules[key], follow.get(key, _NO_CHARS), after_entries.get(key, {}), seen, None)
                for ref, chars, entries in seen:
                    merged = self._union(follow.get(ref, _NO_CHARS), chars)
                    merged_entries = self._merge(after_entries.get(ref, {}), entries)
                    if merged != follow.get(ref, _NO_CHARS) or merged_entries != after_entries.get(ref, {}):
                        follow[ref], after_entries[ref] = merged, merged_entries
                        changed = True
        points: list[dict[tuple[str, ...], _Chars]] = []
        self._starts_of = {}
        for key in self._nonterminal_keys():
            self._walk(self.rules[key], follow.get(key, _NO_CHARS), after_entries.get(key, {}), None, points)
        out: dict[tuple[str, ...], _Chars] = {}
        done: set[tuple[tuple[tuple[str, ...], _Chars], ...]] = set()
        for entries in points:
            frozen = tuple(sorted(entries.items()))
            if frozen in done or all(self._atomic(lexeme) for lexeme in entries):
                continue
            done.add(frozen)
            for lexeme, chars in self._swallowed(entries).items():
                out[lexeme] = self._union(out.get(lexeme, _NO_CHARS), chars)
        return out

    def _nonterminal_keys(self) -> list[tuple[str, ...]]:
        return [key for key in self.rules if key not in self.terminal]

    def _merge(self, *dicts: dict[tuple[str, ...], _Chars]) -> dict[tuple[str, ...], _Chars]:
        out: dict[tuple[str, ...], _Chars] = {}
        for entries in dicts:
            for lexeme, chars in entries.items():
                out[lexeme] = self._union(out.get(lexeme, _NO_CHARS), chars)
        return out

    def _starts(self, node: object, chars: _Chars, entries: dict[tuple[str, ...], _Chars]) -> dict[tuple[str, ...], _Chars]:
        """The lexemes that may start ``node`` (with the characters that may follow each), when ``chars``
        and the lexemes ``entries`` may follow ``node``."""
        g = self.g
        if isinstance(node, g.Seq):
            if not node.items:
                return entries
            rest = g.Seq(node.items[1:])
            rest_first, rest_nullable = self._first_of_rest(node.items[1:])
            after = self._union(rest_first, chars) if rest_nullable else rest_first
            return self._starts(node.items[0], after, self._starts(rest, chars, entries))
        if isinstance(node, g.Alt):
            return self._merge(*(self._starts(item, chars, entries) for item in node.items))
        if isinstance(node, g.Repeat):
            if node.max == 0:
                return entries
            inner_chars, inner_entries = chars, entries
            if node.max is None or node.max > 1:
                inner_chars = self._union(chars, self._first(node.item))
                inner_entries = self._merge(entries, self._starts(node.item, chars, entries))
            starts = self._starts(node.item, inner_chars, inner_entries)
            return self._merge(starts, entries) if self._nullable(node) else starts
        if isinstance(node, g.Ref):
            key = node.key
            if key in self.terminal:
                starts = {key: chars}
            else:
                if key not in self._starts_of:
                    self._starts_of[key] = {}  # no left recursion reaches here (the converter refuses it)
                    body = self.rules[key]
                    self._starts_of[key] = self._starts(body, self._follow_of(key), {})
                starts = self._starts_of[key]
            return self._merge(starts, entries) if key in self.nullable else starts
        return entries

    def _follow_of(self, key: tuple[str, ...]) -> _Chars:
        return self._follow.get(key, _NO_CHARS)

    def _walk(self, node: object, chars: _Chars, entries: dict[tuple[str, ...], _Chars],
              seen: list[tuple[tuple[str, ...], _Chars, dict[tuple[str, ...], _Chars]]] | None,
              points: list[dict[tuple[str, ...], _Chars]] | None) -> None:
        """Visit every point of a non-terminal rule's body: note what follows each rule it names
        (``seen``) or the lexemes that may start there (``points``)."""
        g = self.g
        if isinstance(node, g.Seq):
            for i, item in enumerate(node.items):
                rest_first, rest_nullable = self._first_of_rest(node.items[i + 1 :])
                after = self._union(rest_first, chars) if rest_nullable else rest_first
                after_entries = self._starts(g.Seq(node.items[i + 1 :]), chars, entries)
                if points is not None:
                    points.append(self._starts(item, after, after_entries))
                self._walk(item, after, after_entries, seen, points)
        elif isinstance(node, g.Alt):
            for item in node.items:
                if points is not None:
                    points.append(self._starts(item, chars, entries))
                self._walk(item, chars, entries, seen, points)
        elif isinstance(node, g.Repeat) and node.max != 0:
            inner_chars, inner_entries = chars, entries
            if node.max is None or node.max > 1:
                inner_chars = self._union(chars, self._first(node.item))
                inner_entries = self._merge(entries, self._starts(node.item, chars, entries))
            if points is not None:
                points.append(self._starts(node.item, inner_chars, inner_entries))
            self._walk(node.item, inner_chars, inner_entries, seen, points)
        elif isinstance(node, g.Ref) and node.key not in self.terminal and seen is not None:
            seen.append((node.key, chars, entries))

    def _swallowed(self, entries: dict[tuple[str, ...], _Chars]) -> dict[tuple[str, ...], _Chars]:
        """For the lexemes that may start at one point: which go on, after a token string that ends one
        of them, with a character that may follow the one it ends (a lexeme made of one token never
        goes on: what it would swallow, its own reading swallows too)."""
        nfa = _TokenNfa()
        starts: list[int] = []
        finals: dict[int, tuple[str, ...]] = {}
        follows: dict[tuple[str, ...], _Chars] = {}
        owner: list[tuple[str, ...]] = []
        for lexeme, chars in entries.items():
            start, final = nfa.state(), nfa.state()
            self._build(nfa, self.g.Ref(lexeme), start, final, 0)
            starts.append(start)
            finals[final] = lexeme
            follows[lexeme] = chars
            owner += [lexeme] * (len(nfa.moves) - len(owner))
        first_set = nfa.closure(frozenset(starts))
        seen = {first_set}
        todo = [(first_set, False)]
        out: dict[tuple[str, ...], _Chars] = {}
        while todo and len(seen) <= _MAX_SUBSETS:
            states, after_token = todo.pop()
            moves: dict[tuple[str, ...], set[int]] = {}
            for state in states:
                for symbol, target in nfa.moves[state]:
                    moves.setdefault(symbol, set()).add(target)
            ended = self._union(*(follows[finals[s]] for s in states if s in finals)) if after_token else _NO_CHARS
            if ended:
                for state in states:
                    for symbol, _target in nfa.moves[state]:
                        taken = self.g._intersect(self.first.get(symbol, _NO_CHARS), ended)
                        if taken:
                            out[owner[state]] = self._union(out.get(owner[state], _NO_CHARS), taken)
            for targets in moves.values():
                nxt = nfa.closure(frozenset(targets))
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, True))
        return {lexeme: chars for lexeme, chars in out.items() if not self._atomic(lexeme)}

    def _build(self, nfa: _TokenNfa, node: object, start: int, end: int, depth: int) -> None:
        """``node`` as moves over tokens from ``start`` to ``end``; rules are expanded, tokens and the
        ignored run (which may be empty) are the symbols."""
        g = self.g
        if isinstance(node, g.Seq):
            current = start
            for i, item in enumerate(node.items):
                nxt = end if i == len(node.items) - 1 else nfa.state()
                self._build(nfa, item, current, nxt, depth)
                current = nxt
            if not node.items:
                nfa.eps[start].append(end)
        elif isinstance(node, g.Alt):
            for item in node.items:
                self._build(nfa, item, start, end, depth)
        elif isinstance(node, g.Repeat):
            lo = min(node.min, _MAX_UNROLL)
            hi = node.max if node.max is not None and node.max <= _MAX_UNROLL else None  # larger: unbounded
            current = start
            for _ in range(lo):
                nxt = nfa.state()
                self._build(nfa, node.item, current, nxt, depth)
                current = nxt
            if hi is None:
                loop, back = nfa.state(), nfa.state()
                nfa.eps[current].append(loop)
                nfa.eps[loop].append(end)
                self._build(nfa, node.item, loop, back, depth)
                nfa.eps[back].append(loop)
            else:
                for _ in range(hi - lo):
                    nxt = nfa.state()
                    nfa.eps[current].append(end)
                    self._build(nfa, node.item, current, nxt, depth)
                    current = nxt
                nfa.eps[current].append(end)
        elif isinstance(node, g.Ref) and not self._atomic(node.key) and depth < _MAX_DEPTH:
            self._build(nfa, self._body(node.key), start, end, depth + 1)
        elif isinstance(node, g.Ref):
            nfa.moves[start].append((node.key, end))
            if node.key in self.nullable:  # the ignored run may be empty
                nfa.eps[start].append(end)
        else:  # a literal or class in a rule body (none today): a token of its own
            symbol = ("chars", str(id(node)))
            self.first[symbol] = self._first(node)
            nfa.moves[start].append((symbol, end))


def gbnf_lexeme_traps(grammar: CheckedGrammar) -> list[tuple[str, str]]:
    """The Lark rules of ``grammar`` that llguidance's GBNF reader makes into a lexeme that swallows the
    start of the text after it (see ``_LexemeScan.traps``), in grammar order, each with a character it
    takes (a blank when it takes one)."""
    from ...engines.gbnf import gbnf_rules

    form = gbnf_rules(grammar.text, start=grammar.start, grammar=grammar.name)
    scan = _LexemeScan(form)
    users: dict[tuple[str, ...], list[str]] = {}
    for key in scan._nonterminal_keys():
        for ref in scan._refs(scan.rules[key]):
            if key[0] == "rule" and key[1] not in users.setdefault(ref, []):
                users[ref].append(key[1])
    found: dict[str, str] = {}
    for lexeme, taken in scan.traps().items():
        # a part hoisted into a rule of its own: name the rules it stands in
        names = [lexeme[1]] if lexeme[0] == "rule" else users.get(lexeme, [])
        chars = [chr(c) for lo, hi in taken for c in range(lo, min(hi, lo + 127) + 1)]
        char = " " if " " in chars else next((c for c in chars if c.isprintable()), chars[0])
        for name in names:
            found.setdefault(name, char)
    heads = rule_heads(grammar.text)
    return sorted(found.items(), key=lambda item: (heads[item[0]].offset if item[0] in heads else len(grammar.text), item[0]))

