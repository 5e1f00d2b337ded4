"""``properties``, ``required``, ``additionalProperties``, ``patternProperties``, ``propertyNames``,
``minProperties`` / ``maxProperties``: which members an object has and which keys they take. The keys
beyond the declared ones are split by automata into the regions the patterns cut, so each region is one
key terminal (spelt without escapes). ``object_rules`` then writes the members as rules."""

from __future__ import annotations

import json
import re
from typing import Any

from ...errors import JSONSchemaError
from .. import _automaton, _regex
from .._patterns import compiled_pattern, ecma_pattern
from .context import key_literal, pointer_join
from .object_rules import Member, ObjectRules


MAX_EXCLUSION_CHARS = 12_500
"""Largest key-exclusion regex written where additional properties may come between the declared ones
(about 80 declared names): lark's contextual lexer compiles it once per position, and beyond this size
lark-python needs seconds to build and first use the generation grammar. A larger one is written with
the additional properties before the declared ones (two lexer states), up to the next bound."""
MAX_LEADING_EXCLUSION_CHARS = 120_000
"""Largest key-exclusion regex written at all (additional properties first)."""


class ObjectKeywords(ObjectRules):
    """The rule of the objects a schema admits: its members, and the keys beyond the declared ones."""

    def obj(self, schema: dict[str, Any], ptr: str, depth: int) -> str | None:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise JSONSchemaError("properties must be an object", keyword="properties", pointer="#" + ptr)
        required = schema.get("required") or []
        if not isinstance(required, list):
            raise JSONSchemaError("required must be an array", keyword="required", pointer="#" + ptr)
        required_set = {r for r in required if isinstance(r, str)}
        forbidden = set(schema.get("__forbid__", []))
        if required_set & forbidden:
            return None
        patterns = schema.get("patternProperties") or {}
        for p in patterns:
            _checkable_pattern(p, pointer_join(ptr, "patternProperties", p))
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        names_dfa: _automaton.DFA | None = None
        if names is not None and names is not True and names != {}:
            if names is False:
                if required_set:
                    return None
                return self.rule(f"{self.punct('{')} {self.punct('}')}", "o")
            names_dfa = self._names_language(names, pointer_join(ptr, "propertyNames"), depth)
            if names_dfa is None:
                self.refuse("propertyNames cannot be expressed in a grammar", "propertyNames", pointer_join(ptr, "propertyNames"))
        members: list[Member] = []
        declared = list(props)
        for name in declared + [r for r in required if isinstance(r, str) and r not in props]:
            if name in forbidden:
                continue
            if names_dfa is not None and not _automaton.accepts(names_dfa, name):
                if name in required_set:
                    return None  # a required key propertyNames refuses
                continue
            if name in props:
                sub: Any = props[name]
                sptr = pointer_join(ptr, "properties", name)
            else:
                sub, sptr = self._undeclared_schema(name, patterns, additional, ptr)
            matching = [p for p in patterns if pattern_matches(p, name, ptr)]
            if matching and name in props:
                sub = {"allOf": [sub] + [patterns[p] for p in matching]}
            alts = self.value(sub, sptr, depth + 1)
            if alts.empty():
                if name in required_set:
                    return None
                continue
            members.append(Member(key_literal(name), self.expr(alts), name in required_set))
        if self.declared_keys and props and "additionalProperties" not in schema and not patterns:
            # a model writing a config is not invited to invent keys: an object that declares its
            # properties and says nothing of others gets only those (OpenAI's and XGrammar's strict
            # mode); the validator still accepts the extra keys the schema allows
            additional = False
        if names_dfa is not None:
            extra = self._key_regions(patterns, additional, sorted(set(props) | forbidden), names_dfa, ptr, depth)
            if extra is False:
                self.refuse("propertyNames next to these keys cannot be expressed", "propertyNames", pointer_join(ptr, "propertyNames"))
                extra = self._extra_member(props, patterns, additional, forbidden, ptr, depth)
        else:
            extra = self._extra_member(props, patterns, additional, forbidden, ptr, depth)
        min_p = schema.get("minProperties")
        max_p = schema.get("maxProperties")
        n_required = sum(m.required for m in members)
        nonempty = min_p == 1 and n_required == 0  # some member, whichever: the first one is not optional
        if max_p is not None and max_p < n_required:
            return None
        counted_min = min_p is not None and min_p > n_required and not nonempty
        counted_max = max_p is not None and (extra is not None or max_p < len(members))
        if (counted_min or counted_max) and not self.widen:
            if extra is None and min_p is not None and min_p > len(members):
                return None
            rule = self.counted_object_rule(members, extra, int(min_p or 0), int(max_p) if counted_max else None)
            if rule is not False:
                return rule  # type: ignore[return-value]
        if counted_min:
            self.refuse("minProperties beyond the required properties cannot be expressed", "minProperties", ptr)
        if counted_max:
            self.refuse("maxProperties cannot be expressed for this object", "maxProperties", ptr)
        if self.widen and len(members) > 1:
            # declared order is one spelling among n!; widen mode admits every order (one repeated
            # alternation, linear in n) and leaves required keys and duplicates to the validator
            self.widenings.append(("properties", "#" + pointer_join(ptr, "properties")))
            return self.any_order_rule(members, extra, nonempty)
        return self.object_rule(members, extra, nonempty)

    def _undeclared_schema(self, name: str, patterns: dict[str, Any], additional: Any, ptr: str) -> tuple[Any, str]:
        matching = [p for p in patterns if pattern_matches(p, name, ptr)]
        if matching:
            if len(matching) == 1:
                return patterns[matching[0]], pointer_join(ptr, "patternProperties", matching[0])
            return {"allOf": [patterns[p] for p in matching]}, pointer_join(ptr, "patternProperties")
        return additional, pointer_join(ptr, "additionalProperties")

    def _extra_member(
        self, props: dict[str, Any], patterns: dict[str, Any], additional: Any, forbidden: set[str], ptr: str, depth: int
    ) -> Member | None:
        excluded = sorted(set(props) | forbidden)
        if patterns:
            pptr = pointer_join(ptr, "patternProperties")
            if additional is not False:
                distinct = {json.dumps(v, sort_keys=True) for v in patterns.values()}
                universal = [p for p in patterns if _universal_pattern(p)]
                if all(v is True or v == {} for v in patterns.values()) and (additional is True or additional == {}):
                    patterns = {}
                elif universal and len(distinct) == 1:
                    # every key matches: additionalProperties never applies, every extra key takes the pattern's schema
                    additional = patterns[universal[0]]
                    patterns = {}
                    ptr_extra = pointer_join(pptr, universal[0])
                    return self._open_member(excluded, additional, ptr_extra, ptr, depth)
                else:
                    split = self._class_run_split(patterns, excluded, additional, pptr, depth)
                    if split is not False:
                        return split
                    regions = self._key_regions(patterns, additional, excluded, None, ptr, depth)
                    if regions is not False:
                        return regions
                    self.refuse("patternProperties together with additionalProperties cannot be expressed", "patternProperties", pptr)
                    patterns = {}
                    additional = True  # widened: a key may take either schema, the validator tells which
            else:
                distinct = {json.dumps(v, sort_keys=True) for v in patterns.values()}
                clashes = [name for name in props if any(pattern_matches(p, name, ptr) for p in patterns)]
                if len(distinct) > 1 or clashes:
                    regions = self._key_regions(patterns, False, excluded, None, ptr, depth)
                    if regions is not False:
                        return regions
                if len(distinct) > 1:
                    self.refuse("several patternProperties with different schemas may overlap", "patternProperties", pptr)
                if clashes:
                    self.refuse(
                        f"property {clashes[0]!r} also matches a patternProperties pattern", "patternProperties", pptr
                    )
                bodies = []
                for p in patterns:
                    try:
                        bodies.append(_regex.translate(p).regex)
                    except _regex.PatternError as exc:
                        self.refuse(f"pattern cannot be translated: {exc}", "patternProperties", pointer_join(pptr, p))
                        return None
                if not bodies:
                    return None
                first = next(iter(patterns))
                value = patterns[first] if len(distinct) == 1 else True
                alts = self.value(value, pointer_join(pptr, first), depth + 1)
                if alts.empty():
                    return None
                key = self.terminal(_regex.QUOTE + ("(?:" + "|".join(bodies) + ")" if len(bodies) > 1 else bodies[0]) + _regex.QUOTE, "K")
                return Member(key, self.expr(alts), False)
        if additional is False:
            return None
        return self._open_member(excluded, additional, pointer_join(ptr, "additionalProperties"), ptr, depth)

    def _key_regions(
        self, patterns: dict[str, Any], additional: Any, excluded: list[str], names: _automaton.DFA | None, ptr: str, depth: int
    ) -> Member | None | bool:
        """Keys beyond the declared ones, split by automata into the regions the patterns cut: keys that
        match exactly the patterns in S take the ``allOf`` of their schemas, keys that match none the
        ``additionalProperties`` schema. The regions are disjoint, so each is one key terminal and the
        grammar is exact (keys spelt without escapes, as for any additional property); ``names`` (from
        ``propertyNames``) bounds every key. False: the automata would be too large."""
        pptr = pointer_join(ptr, "patternProperties")
        if len(patterns) > 4:
            return False
        plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
        colon = self.punct(":")
        try:
            universe = _automaton.everything(plain)
            if names is not None:
                universe = _automaton.intersect(universe, names)
            if excluded:
                universe = _automaton.minus(universe, _automaton.strings(excluded))
            keys = list(patterns)
            dfas = [_automaton.intersect(universe, _automaton.from_pattern(p)) for p in keys]
            regions: list[tuple[str, Any, str]] = []
            for mask in range(2 ** len(keys)):
                if mask == 0 and additional is False:
                    continue
                region = universe
                for i, dfa in enumerate(dfas):
                    region = _automaton.intersect(region, dfa) if mask >> i & 1 else _automaton.minus(region, dfa)
                if _automaton.is_empty(region):
                    continue
                chosen = [keys[i] for i in range(len(keys)) if mask >> i & 1]
                if not chosen:
                    value, vptr = additional, pointer_join(ptr, "additionalProperties")
                elif len(chosen) == 1:
                    value, vptr = patterns[chosen[0]], pointer_join(pptr, chosen[0])
                else:
                    value, vptr = {"allOf": [patterns[c] for c in chosen]}, pptr
                rx = _automaton.to_regex(region)
                regions.append((rx or "", value, vptr))
        except (_automaton.TooLarge, _regex.PatternError):
            return False
        pairs = []
        for rx, value, vptr in regions:
            try:
                alts = self.value(value, vptr, depth + 1)
            except JSONSchemaError:
                return False  # e.g. the allOf of recursive pattern schemas: left to the other paths
            if alts.empty():
                continue
            key = self.terminal(_regex.QUOTE + rx + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(alts)}")
        return self.pairs_member(pairs)

    def _names_language(self, names: Any, ptr: str, depth: int) -> _automaton.DFA | None:
        """The keys ``propertyNames`` admits, as an automaton: its ``type``, ``enum`` / ``const``,
        ``pattern`` and length bounds (merged through ``$ref`` and ``allOf``); None for anything else."""
        parts = self.flatten(names, ptr, depth + 1, set())
        if parts is None:
            return _automaton.strings([])
        try:
            dfa = _automaton.everything()
            for part, _ in parts:
                if not set(part) <= {"type", "enum", "const", "pattern", "minLength", "maxLength"}:
                    return None
                t = part.get("type")
                if t is not None and "string" not in ([t] if isinstance(t, str) else t):
                    return _automaton.strings([])
                if "enum" in part or "const" in part:
                    values = [part["const"]] if "const" in part else part["enum"]
                    dfa = _automaton.intersect(dfa, _automaton.strings([v for v in values if isinstance(v, str)]))
                if isinstance(part.get("pattern"), str):
                    dfa = _automaton.intersect(dfa, _automaton.from_pattern(part["pattern"]))
                lo, hi = part.get("minLength", 0), part.get("maxLength")
                if lo or hi is not None:
                    dfa = _automaton.restrict_length(dfa, int(lo), None if hi is None else int(hi))
            return dfa
        except (_automaton.TooLarge, _regex.PatternError, TypeError, ValueError):
            return None

    def _class_run_split(
        self, patterns: dict[str, Any], excluded: list[str], additional: Any, pptr: str, depth: int
    ) -> Member | None | bool:
        """One pattern next to additionalProperties, of a shape whose complement is a small regex:
        ``^[C]+$`` / ``^[C]*$`` (whole key in C; declared names must be such keys too) or an unanchored
        ``[C]`` (some character in C; no declared names). Keys matching take the pattern's schema, the
        others the additional schema: two disjoint key terminals, so exact. Keys are spelt without
        escapes, as for any additional property. False: not one of these shapes."""
        if len(patterns) != 1:
            return False
        (pattern, pschema), = patterns.items()
        run = _class_run(pattern)
        if run is None:
            return False
        chars, lo, whole = run
        plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
        inside, outside = _regex.intersect(plain, chars), _regex.minus(plain, chars)
        tail = _regex.char_class(plain) + "*"
        if whole:
            if any(len(name) < lo or any(not _regex.contains(inside, ord(c)) for c in name) for name in excluded):
                return False  # a declared name that is not such a key would need excluding from the rest
            if not inside:
                return False
            key_in = _exclusion_regex(excluded + ([""] if lo else []), inside)
            key_out: str | None = (tail + _regex.char_class(outside) + tail) if outside else None
            if lo:
                key_out = f"(?:{key_out})?" if key_out else ""
        else:
            if excluded or not inside:
                return False
            key_in = tail + _regex.char_class(inside) + tail
            key_out = _regex.char_class(outside) + "*" if outside else ""
        colon = self.punct(":")
        pairs = []
        p_alts = self.value(pschema, pointer_join(pptr, pattern), depth + 1)
        if not p_alts.empty() and key_in:
            key = self.terminal(_regex.QUOTE + key_in + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(p_alts)}")
        a_alts = self.value(additional, pptr.rsplit("/", 1)[0] + "/additionalProperties", depth + 1)
        if not a_alts.empty() and key_out is not None:
            key = self.terminal(_regex.QUOTE + key_out + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(a_alts)}")
        return self.pairs_member(pairs)

    def _open_member(self, excluded: list[str], value: Any, vptr: str, ptr: str, depth: int) -> Member | None:
        """Any key but the ``excluded`` names (spelt without escapes), with a value conforming to ``value``."""
        alts = self.value(value, vptr, depth + 1)
        if alts.empty():
            return None
        exclusion = _exclusion_regex(excluded) if excluded else _regex.JSON_CHAR_FULL + "*"
        leading = len(exclusion) > MAX_EXCLUSION_CHARS
        if len(exclusion) > MAX_LEADING_EXCLUSION_CHARS:
            self.refuse(
                f"additional properties next to {len(excluded)} declared ones make too large a key regex",
                "additionalProperties",
                ptr,
            )
            exclusion = _regex.JSON_CHAR_FULL + "*"
            leading = False
            self.needs_earley = True  # this key regex overlaps the declared keys
        key_rx = _regex.QUOTE + exclusion + _regex.QUOTE
        return Member(self.terminal(key_rx, "K"), self.expr(alts), False, leading=leading)


def _exclusion_regex(excluded: list[str], alphabet: _regex.Intervals | None = None) -> str:
    """Regex for string contents spelling any key except those in ``excluded``.

    Such keys are written without escapes (a documented narrowing): that keeps one spelling per key,
    so excluding the declared names is exact, and keeps the regex small. The complement of the trie
    of excluded names is written as two tries sharing no tail: a walk down the trie that leaves it by
    one character no child starts with (then any tail), or a node of the trie that ends no name.
    """
    plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
    if alphabet is not None:
        plain = _regex.intersect(plain, alphabet)
    trie: dict[str, Any] = {}
    for word in excluded:
        if any(not _regex.contains(plain, ord(ch)) for ch in word):
            continue  # a name with an escaped character can never be spelt by this regex anyway
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def group(alts: list[str]) -> str:
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    def leave(node: dict[str, Any]) -> str | None:
        """Walks that end with the first character off the trie."""
        children = sorted(k for k in node if k)
        alts = [_regex.literal_char(ord(ch)) + sub for ch in children if (sub := leave(node[ch])) is not None]
        other = _regex.minus(plain, _regex.chars("".join(children)))
        if other:
            alts.append(_regex.char_class(other))
        return group(alts) if alts else None

    def inner(node: dict[str, Any]) -> str | None:
        """Nodes (relative to ``node``) that end no excluded name."""
        children = sorted(k for k in node if k)
        alts = [_regex.literal_char(ord(ch)) + sub for ch in children if (sub := inner(node[ch])) is not None]
        if "" in node:
            return group(alts) if alts else None
        if not alts:
            return ""
        return "(?:" + "|".join(alts) + ")?"

    tail = _regex.char_class(plain) + "*"
    off = leave(trie)
    on = inner(trie)
    out = [off + tail] if off is not None else []
    if on == "":
        return "(?:" + out[0] + ")?" if out else ""
    if on is not None:
        out.append(on)
    return group(out) if len(out) == 1 else "(?:" + "|".join(out) + ")"


def _universal_pattern(pattern: str) -> bool:
    """Whether an ECMA-262 pattern (search semantics) matches every string: some branch can match the
    empty string and is not anchored at both ends (``.*``, ``^``, ``a*``, ``""``)."""
    try:
        tree = _regex.parse(pattern)
    except _regex.PatternError:
        return False
    for branch in _regex._branches(tree):
        try:
            start, body, end = _regex._anchors(branch)
        except _regex.PatternError:
            return False
        if not (start and end) and _regex.length_bounds(body)[0] == 0 and not _regex.has_anchor(body):
            return True
    return False


def _class_run(pattern: str) -> tuple[_regex.Intervals, int, bool] | None:
    """(C, lo, True) for ``^[C]+$`` (lo 1) or ``^[C]*$`` (lo 0); (C, 1, False) for an unanchored
    ``[C]`` / ``[C]+`` / ``[C]{1,n}`` (the key contains a character in C); else None."""
    try:
        tree = _regex.parse(pattern)
    except _regex.PatternError:
        return None
    branches = _regex._branches(tree)
    if len(branches) != 1:
        return None
    try:
        start, body, end = _regex._anchors(branches[0])
    except _regex.PatternError:
        return None
    body = _regex._unwrap(body)
    if not start and not end:
        if isinstance(body, _regex.CharNode):
            return body.chars, 1, False
        if isinstance(body, _regex.RepNode) and body.lo == 1 and isinstance(body.body, _regex.CharNode):
            return body.body.chars, 1, False
        return None
    if not (start and end) or not isinstance(body, _regex.RepNode) or body.hi is not None or body.lo > 1:
        return None
    if not isinstance(body.body, _regex.CharNode):
        return None
    return body.body.chars, body.lo, True


def pattern_matches(pattern: str, name: str, ptr: str = "") -> bool:
    """Whether an ECMA-262 pattern matches ``name`` (search semantics), via the translated regex."""
    try:
        return compiled_pattern(pattern).search(name) is not None
    except (re.error, _regex.PatternError):
        raise JSONSchemaError(
            f"pattern {pattern!r} cannot be used", keyword="patternProperties", pointer="#" + pointer_join(ptr, "patternProperties")
        ) from None


def _checkable_pattern(pattern: str, ptr: str) -> None:
    """Refuse (in either mode) a pattern the validator could not check: nothing would enforce it."""
    try:
        ecma_pattern(pattern)
    except (re.error, OverflowError, RecursionError):
        raise JSONSchemaError(f"pattern {pattern!r} can be checked neither by the grammar nor by the validator", keyword="patternProperties", pointer="#" + ptr) from None
