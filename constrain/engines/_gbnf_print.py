"""Printing the grammar form (``_gbnf_form``) as GBNF text: literals and classes spelt the way llama.cpp
and llguidance's GBNF reader both read them, and rule names mapped from lark's."""

from __future__ import annotations

import re

from .._regex.charsets import ANY, SURROGATES, Intervals, minus
from ..errors import GrammarError
from ._gbnf_form import Alt, Chars, Lit, Node, Ref, Repeat, Seq


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
        if merged and merged[-1][1] == SURROGATES[0][0] - 1 and lo == SURROGATES[0][1] + 1:
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
    complement = minus(ANY, ranges)
    if complement:
        negative = "^" + _emit_ranges(complement)
        if len(negative) < len(positive):
            return f"[{negative}]"
    return f"[{positive}]"


class Emitter:
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


def gbnf_name(lark_name: str) -> str:
    """Lark names are ``_?[a-z][a-z0-9_]*`` (rules) or ``_?[A-Z][A-Z0-9_]*`` (terminals); GBNF allows
    ``[a-zA-Z0-9-]``. ``_`` becomes ``-``; a leading ``_`` becomes ``R-`` for rules and ``t-`` for
    terminals. Rules stay lowercase and terminals uppercase after the first character, so the map is
    injective and never produces the mixed case of helper names."""
    mapped = lark_name.replace("_", "-")
    if mapped.startswith("-"):
        mapped = ("t" if lark_name.upper() == lark_name else "R") + mapped
    return mapped


class Names:
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
