"""``minLength`` / ``maxLength``, ``pattern`` and ``format``, and the ``not`` of strings. One pattern or
format with length bounds is written directly; several together (their intersection), a complement or
bounds the regex cannot state side by side go through automata (``_automaton``). Characters are spelt
literally except where JSON requires an escape."""

from __future__ import annotations

import re
from typing import Any

from ...errors import JSONSchemaError
from .. import _automaton, _derivatives, _formats, _regex
from .context import CompilerContext, pointer_join


class StringKeywords(CompilerContext):
    """The regex of the string tokens a schema admits (quotes included)."""

    def string(self, schema: dict[str, Any], ptr: str) -> str | None:
        min_len = schema.get("minLength", 0)
        max_len = schema.get("maxLength")
        for key, val in (("minLength", min_len), ("maxLength", max_len)):
            if val is not None and (not isinstance(val, (int, float)) or val < 0 or val != int(val)):
                raise JSONSchemaError(f"{key} must be a non-negative integer", keyword=key, pointer="#" + pointer_join(ptr, key))
        min_len = int(min_len)
        max_len = None if max_len is None else int(max_len)
        if max_len is not None and max_len < min_len:
            return None
        for key, val in (("minLength", min_len), ("maxLength", max_len)):
            if val is not None and val > self.limits.max_string_length:
                raise JSONSchemaError(
                    f"{key} {val:,} is over the limit of {self.limits.max_string_length:,}",
                    keyword=key,
                    pointer="#" + pointer_join(ptr, key),
                )
        fmt = schema.get("format")
        fmt_body: str | None = None
        pptr = pointer_join(ptr, "pattern")
        patterns: list[tuple[str, _regex.Translation | None]] = []
        if isinstance(fmt, str) and fmt in _formats.FORMATS:
            fmt_body = _formats.FORMATS[fmt]
        elif isinstance(fmt, str) and fmt in _formats.GRAMMAR_PATTERNS:
            # a format whose check is exactly a regex: stated like a pattern anchored at both ends
            fpattern = "^(?:" + _formats.GRAMMAR_PATTERNS[fmt] + ")$"
            tr = self._pattern(fpattern, pointer_join(ptr, "format"), "format")
            if tr is not False:
                patterns.append((fpattern, tr))
        elif isinstance(fmt, str) and fmt in _formats.asserted_formats():
            self.refuse(f"format {fmt!r} cannot be expressed in the grammar", "format", pointer_join(ptr, "format"))
        elif isinstance(fmt, str) and fmt in _formats.STANDARD_FORMATS:
            # a format the specification defines, but neither the grammar nor the validator checks
            raise JSONSchemaError(
                f"format {fmt!r} can be checked neither by the grammar nor by the validator",
                keyword="format",
                pointer="#" + pointer_join(ptr, "format"),
            )
        for pattern in ([schema["pattern"]] if "pattern" in schema else []) + list(schema.get("__patterns__", ())):
            tr = self._pattern(pattern, pptr, "pattern")
            if tr is not False:
                patterns.append((pattern, tr))
        not_patterns = [p for p in schema.get("__not_patterns__", ()) if self._pattern(p, pointer_join(ptr, "not"), "not") is not False]
        excluded = sorted(set(schema.get("__not_strings__", ())))
        simple = (fmt_body is not None) + len(patterns) <= 1 and not not_patterns and not (excluded and (fmt_body or patterns))
        if simple and not any(tr is None for _, tr in patterns):
            out = self._simple_string(fmt_body, patterns[0][1] if patterns else None, excluded, min_len, max_len, fmt)
            if out is not False:
                return out  # type: ignore[return-value]
        # intersections, complements and length bounds the regexes cannot state side by side: automata
        key = (fmt_body, tuple(p for p, _ in patterns), tuple(not_patterns), tuple(excluded), min_len, max_len)
        if key not in self.string_memo:
            try:
                self.string_memo[key] = self._string_automaton(fmt_body, [p for p, _ in patterns], not_patterns, excluded, min_len, max_len)
            except (_automaton.TooLarge, _regex.PatternError) as exc:
                self.string_memo[key] = exc
        rx = self.string_memo[key]
        if not isinstance(rx, Exception):
            return None if rx is None else _regex.QUOTE + rx + _regex.QUOTE
        reason = str(rx)
        # widened (or refused): the first of the format and patterns, without what it cannot state
        if not_patterns or excluded:
            self.refuse(f"'not' of strings here cannot be expressed ({reason})", "not", pointer_join(ptr, "not"))
        if (fmt_body is not None) + len(patterns) > 1:
            self.refuse(f"pattern together with format or another pattern cannot be expressed ({reason})", "pattern", pptr)
        body = fmt_body if fmt_body is not None else next((tr.regex for _, tr in patterns if tr is not None), None)
        if body is None and patterns:
            self.refuse(f"pattern cannot be translated ({reason})", "pattern", pptr)
        if min_len > 0 or max_len is not None:
            self.refuse(
                f"minLength/maxLength together with this pattern or format cannot be expressed ({reason})",
                "maxLength" if max_len is not None else "minLength",
                ptr,
            )
        if body is None:
            return _regex.QUOTE + _regex.JSON_CHAR_FULL + "*" + _regex.QUOTE
        return _regex.QUOTE + body + _regex.QUOTE

    def _pattern(self, pattern: Any, pptr: str, keyword: str) -> _regex.Translation | None | bool:
        """The translation of a pattern; None where only an automaton reads it (nested repetition a
        backtracking matcher could not take); False where it is refused (widened)."""
        if not isinstance(pattern, str):
            raise JSONSchemaError("pattern must be a string", keyword="pattern", pointer="#" + pptr)
        try:
            return _regex.translate(pattern)
        except _regex.PatternError as exc:
            first = exc
        try:
            _automaton.from_pattern(pattern)
            return None
        except (_regex.PatternError, _automaton.TooLarge):
            pass
        if not _python_compiles(pattern):
            raise JSONSchemaError(
                f"pattern cannot be translated ({first}) nor checked by the validator", keyword="pattern", pointer="#" + pptr
            ) from None
        self.refuse(f"pattern cannot be translated: {first}", keyword, pptr)
        return False

    def _simple_string(
        self, fmt_body: str | None, tr: _regex.Translation | None, excluded: list[str], min_len: int, max_len: int | None, fmt: Any
    ) -> str | None | bool:
        """One format or pattern (or none) and length bounds, written directly; False: needs automata."""
        body: str | None = None
        fixed: tuple[int, int | None] | None = None  # length bounds of a fully anchored body
        node: _regex.Node | None = None
        if fmt_body is not None:
            body = fmt_body
            node = _regex.parse(body)
            fixed = _regex.length_bounds(node)
            if fixed[1] is None and fmt in _formats.CHECKED_MAX_LENGTH and max_len is not None and max_len >= _formats.CHECKED_MAX_LENGTH[fmt]:
                fixed = (fixed[0], max_len)  # the check already refuses what the bound would
        elif tr is not None:
            body, node = tr.regex, tr.node
            fixed = tr.length if tr.anchored else None
        if body is None:
            if excluded:
                rx = _string_exclusion(excluded, min_len, max_len)
                return None if rx is None else _regex.QUOTE + rx + _regex.QUOTE
            return _regex.QUOTE + _regex.quantify(_regex.JSON_CHAR_FULL, min_len, max_len) + _regex.QUOTE
        if min_len > 0 or max_len is not None:
            if fixed is not None and fixed[0] >= min_len and (max_len is None or (fixed[1] is not None and fixed[1] <= max_len)):
                pass  # the pattern already implies the length bounds
            else:
                narrowed = _narrow_repetition(node, min_len, max_len) if fixed is not None and node is not None else None
                if narrowed is None and fixed is None and node is not None and max_len is not None:
                    narrowed = _whole_match(node, min_len, max_len)
                if narrowed is None:
                    return False
                body = narrowed
        return _regex.QUOTE + body + _regex.QUOTE

    def _prefix_restricted(
        self, fmt_body: str | None, patterns: list[str], not_patterns: list[str], excluded: list[str], min_len: int, max_len: int | None
    ) -> str | None:
        """A format (or one anchored pattern) and patterns that only fix how the string starts
        (``format: uri`` with ``^https?://``): for each allowed start w, w then the format's regex
        derived by w (what may follow w). None when the schema is not of this shape or nothing matches."""
        if not_patterns or excluded or min_len or max_len is not None:
            return None
        base: _regex.Node | None = None
        starts: list[list[str]] = []
        for pattern in patterns:
            words = _derivatives.prefixes(pattern)
            if words is not None:
                starts.append(words)
                continue
            if base is not None or fmt_body is not None:
                return None
            try:
                tr = _regex.translate(pattern)
            except _regex.PatternError:
                return None
            branches = _regex._branches(tr.node)
            if not tr.anchored or len(branches) != 1:
                return None
            base = _regex._anchors(branches[0])[1]
        if fmt_body is not None:
            base = _regex.parse(fmt_body)
        if base is None or not starts:
            return None
        allowed = starts[0]
        for words in starts[1:]:  # strings starting with one word of each list
            allowed = sorted({a if a.startswith(b) else b for a in allowed for b in words if a.startswith(b) or b.startswith(a)})
        options = []
        for word in allowed:
            node: _regex.Node | None = base
            for ch in word:
                node = _derivatives.derivative(node, ord(ch)) if node is not None else None
            if node is not None:
                literal = "".join(_regex.json_char(_regex.chars(ch)) for ch in word)
                options.append(literal + (_regex.emit(_regex.simplify(node)) if not _derivatives.is_eps(node) else ""))
        if not options:
            return None
        rx = options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"
        return rx if len(rx) <= _automaton.MAX_REGEX_CHARS else None

    def _string_automaton(
        self, fmt_body: str | None, patterns: list[str], not_patterns: list[str], excluded: list[str], min_len: int, max_len: int | None
    ) -> str | None:
        """The strings meeting every part, as a regex over JSON text (None: no string does). Where the
        result is the language of one part (a pattern the format implies, bounds the pattern implies),
        that part's own regex is written."""
        restricted = self._prefix_restricted(fmt_body, patterns, not_patterns, excluded, min_len, max_len)
        if restricted is not None:
            return restricted
        parts: list[tuple[_automaton.DFA, str | None]] = []
        if fmt_body is not None:
            parts.append((_automaton.from_node(_regex.parse(fmt_body)), fmt_body))
        for pattern in patterns:
            try:
                own: str | None = _regex.translate(pattern).regex
            except _regex.PatternError:
                own = None
            parts.append((_automaton.from_pattern(pattern), own))
        dfa = parts[0][0] if parts else _automaton.everything()
        for other, _ in parts[1:]:
            dfa = _automaton.intersect(dfa, other)
        for pattern in not_patterns:
            dfa = _automaton.minus(dfa, _automaton.from_pattern(pattern))
        if excluded:
            dfa = _automaton.minus(dfa, _automaton.strings(excluded))
        if min_len > 0 or max_len is not None:
            bounds = _automaton.length_bounds(dfa)
            if bounds is None:
                return None
            if bounds[0] < min_len or (max_len is not None and (bounds[1] is None or bounds[1] > max_len)):
                dfa = _automaton.restrict_length(dfa, min_len, max_len)
        if _automaton.is_empty(dfa):
            return None
        for part, own in parts:
            if own is not None and _automaton.equivalent(dfa, part):
                return own
        return _automaton.to_regex(dfa)


def _string_exclusion(excluded: list[str], lo: int, hi: int | None) -> str | None:
    """Regex for string contents (no quotes) of a length in [lo, hi] code points, spelling any string
    except those in ``excluded``; None if there is none. Inside the trie of the excluded strings each
    character is spelt as ``json_char`` spells it (literally, or the escape JSON requires), so every
    spelling read there decodes along one path; past the trie any spelling is read."""
    trie: dict[str, Any] = {}
    for word in excluded:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def tail(d: int) -> str | None:
        a, b = max(lo - d, 0), None if hi is None else hi - d
        if b is not None and b < a:
            return None
        return _regex.quantify(_regex.JSON_CHAR_FULL, a, b)

    def walk(node: dict[str, Any], d: int) -> tuple[list[str], bool]:
        """Continuations of the path to ``node`` (depth ``d``): non-empty ones, and whether it may end here."""
        can_end = "" not in node and lo <= d and (hi is None or d <= hi)
        alts: list[str] = []
        if hi is not None and d >= hi:
            return alts, can_end
        children = sorted(k for k in node if k)
        other = _regex.minus(_regex.ANY, _regex.chars("".join(children)))
        rest = tail(d + 1)
        if other and rest is not None:
            alts.append(_regex.json_char(other) + rest)
        for ch in children:
            sub, sub_end = walk(node[ch], d + 1)
            inner = _alternation(sub, sub_end)
            if inner is not None:
                alts.append(_regex.json_char(_regex.chars(ch)) + inner)
        return alts, can_end

    top, top_end = walk(trie, 0)
    return _alternation(top, top_end)


def _alternation(alts: list[str], optional: bool) -> str | None:
    if not alts:
        return "" if optional else None
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    if optional:
        return body + "?" if body.startswith("(?:") and _regex._balanced_group(body) else f"(?:{body})?"
    return body


def _narrow_repetition(node: _regex.Node | None, min_len: int, max_len: int | None) -> str | None:
    """``^A C{a,b} B$`` (A and B of fixed length F, C one character class) with length bounds becomes
    ``A C{max(a,min-F),min(b,max-F)} B``; other shapes: None."""
    while isinstance(node, _regex.SeqNode):
        items = [i for i in node.items if not isinstance(i, _regex.AnchorNode)]
        if len(items) != 1:
            break
        node = items[0]
    if node is None:
        return None
    items = [i for i in node.items if not isinstance(i, _regex.AnchorNode)] if isinstance(node, _regex.SeqNode) else [node]
    reps = [k for k, i in enumerate(items) if isinstance(i, _regex.RepNode) and isinstance(i.body, _regex.CharNode) and i.lo != i.hi]
    if len(reps) != 1:
        return None
    k = reps[0]
    fixed = 0
    for j, item in enumerate(items):
        if j != k:
            a, b = _regex.length_bounds(item)
            if a != b:
                return None
            fixed += a
    rep = items[k]
    assert isinstance(rep, _regex.RepNode)
    lo = max(rep.lo, min_len - fixed)
    hi = rep.hi if max_len is None else (max_len - fixed if rep.hi is None else min(rep.hi, max_len - fixed))
    if hi is not None and hi < lo:
        return None
    narrowed = _regex.SeqNode(tuple(items[:k]) + (_regex.RepNode(rep.body, lo, hi),) + tuple(items[k + 1 :]))
    return _regex.emit(narrowed)


def _whole_match(node: _regex.Node, min_len: int, max_len: int) -> str | None:
    """An unanchored pattern of one branch whose matches all have length ``max_len``: a string no longer
    than that contains a match only by being one (``[a-z]{3}`` with maxLength 3 is ``^[a-z]{3}$``)."""
    if _regex.has_anchor(node) or len(_regex._branches(node)) != 1:
        return None
    if _regex.length_bounds(node) != (max_len, max_len) or min_len > max_len:
        return None
    return _regex.emit(node)


def _python_compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True
