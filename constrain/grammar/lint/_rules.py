"""The lint's data: what is outside the subset both engines accept, and the traps inside it (DESIGN §2).

Each ``Rule`` names where in a grammar it applies (``scope``) and the pattern that triggers it there;
``_linter`` walks a grammar and applies the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

COMMON_IMPORTS = frozenset(
    "DIGIT HEXDIGIT INT SIGNED_INT DECIMAL FLOAT SIGNED_FLOAT NUMBER SIGNED_NUMBER ESCAPED_STRING "
    "LCASE_LETTER UCASE_LETTER LETTER WORD CNAME WS_INLINE WS CR LF NEWLINE SH_COMMENT CPP_COMMENT "
    "C_COMMENT SQL_COMMENT _EXP".split()
)
"""``%import common.NAME`` names that lark-python and llguidance both provide (DESIGN §2)."""

# common terminals that match runs of unbounded length (whitespace first, then free-text comments)
COMMON_UNBOUNDED_WHITESPACE = frozenset({"WS", "WS_INLINE", "NEWLINE"})
COMMON_UNBOUNDED_TEXT = frozenset({"SH_COMMENT", "CPP_COMMENT", "C_COMMENT", "SQL_COMMENT", "ESCAPED_STRING"})

# ASCII letters that a case-insensitive match also lets through as a non-ASCII character, and which
# engines do so (measured with lark 1.3.1 and llguidance 1.9.1).
CASEFOLD_WIDENING: dict[str, tuple[str, str]] = {
    "s": ("\u017f", "both engines"),
    "k": ("\u212a", "both engines"),
    "i": ("\u0130\u0131", "lark-python only, so the engines disagree"),
}

ALLOWED_REGEX_FLAGS = frozenset("is")


@dataclass(frozen=True)
class Rule:
    """One lint finding: where it applies (``scope``), what triggers it (``pattern``), what it says."""

    code: str
    severity: Severity
    scope: str  # "regex-group" | "regex-escape" | "regex-quantifier" | "regex-class" | "directive" | ...
    pattern: str  # a regex matched (``re.search``) against the text of a piece in that scope
    message: str


RULES: tuple[Rule, ...] = (
    # regex constructs outside the subset (llguidance = OpenAI uses Rust regex syntax)
    Rule("lookaround", "error", "regex-group", r"^\(\?<?[=!]",
         "regex lookaround is refused by llguidance (OpenAI); restructure with rules or explicit classes"),
    Rule("atomic-group", "error", "regex-group", r"^\(\?>", "atomic groups are Python-only; llguidance refuses them"),
    Rule("backreference", "error", "regex-group", r"^\(\?P=", "regex backreferences are refused by llguidance (OpenAI)"),
    Rule("inline-flags", "error", "regex-group", r"^\(\?[a-zA-Z]+\)$",
         "global inline flags break lark-python (it wraps terminals); use a /.../i flag or (?i:...) instead"),
    Rule("backreference", "error", "regex-escape", r"^\\(?:[1-9]|k<)", "regex backreferences are refused by llguidance (OpenAI)"),
    Rule("word-boundary", "error", "regex-escape", r"^\\[bB]$", r"\b and \B are lookarounds to llguidance (OpenAI), which refuses them"),
    Rule("end-anchor", "error", "regex-escape", r"^\\[Zz]$", r"\Z is refused by llguidance and \z by lark-python; terminals are anchored already"),
    Rule("octal-escape", "error", "regex-escape", r"^\\0", r"octal escapes are refused by llguidance (Rust regex); use \xNN"),
    Rule("unicode-property", "error", "regex-escape", r"^\\[pP]", r"\p{..} classes are Rust-only; lark-python (Python re) cannot compile them"),
    Rule("braced-escape", "error", "regex-escape", r"^\\[xu]\{", r"\x{..}/\u{..} are Rust-only; use \xNN or \uNNNN"),
    Rule("lazy-quantifier", "error", "regex-quantifier", r"^(?:[*+?]|\{[\d,]+\})\?$",
         "lazy quantifiers are not supported by OpenAI and change what lark-python's lexer matches"),
    Rule("possessive-quantifier", "error", "regex-quantifier", r"^(?:[*+?]|\{[\d,]+\})\+$",
         "possessive quantifiers are Python-only; Rust regex (llguidance, OpenAI) reads them differently"),
    Rule("posix-class", "error", "regex-class", r"\[:[a-z]+:\]",
         "POSIX classes like [[:alpha:]] work in llguidance but not in Python re; spell the ranges out"),
    Rule("class-set-operation", "error", "regex-class", r"(?<!\\)(?:&&|--|~~)",
         "&&, -- and ~~ inside a class are set operations to Rust regex but literals to Python re"),
    Rule("regex-flag", "error", "regex-flag", r"[ml]",
         "regex flags m and l are refused by llguidance; only i and s are in the common subset"),
    Rule("regex-flag", "warning", "regex-flag", r"[xu]", "regex flags x and u are outside the tested subset (only i and s)"),
    # Lark features llguidance (OpenAI) refuses, or llguidance syntax lark-python cannot read
    Rule("priority", "error", "definition-priority", r".", "rule and terminal priorities are refused by llguidance (OpenAI)"),
    Rule("template", "error", "definition-template", r".", "templates (rule{x}: ...) are refused by llguidance (OpenAI)"),
    Rule("template", "error", "expression-braces", r"^\{(?!\s*\d*\s*(?:,\s*\d*\s*)?\}$)",
         "template instantiation is refused by llguidance (OpenAI)"),
    Rule("brace-repetition", "error", "expression-braces", r"^\{\s*\d*\s*(?:,\s*\d*\s*)?\}$",
         "x{m,n} on rules is llguidance-only syntax that lark-python cannot read; write x ~ m..n"),
    Rule("rule-options", "error", "definition-options", r".",
         "rule options like [lazy] or [max_tokens=..] are llguidance-only; lark-python cannot read them"),
    Rule("dash-in-name", "error", "name", r"-", "'-' in names is llguidance-only; lark-python cannot read it (use '_')"),
    Rule("unsupported-directive", "error", "directive", r"^%(?:declare|override|extend)$",
         "this directive is refused by llguidance (OpenAI)"),
    Rule("llguidance-only", "error", "directive", r"^%(?:json|llguidance|regex|lark)$",
         "llguidance-only directive; lark-python cannot read it"),
    Rule("unknown-directive", "error", "directive", r"^%(?!(?:ignore|import|declare|override|extend|json|llguidance|regex|lark)$)",
         "unknown directive"),
    Rule("import", "error", "import", r".",
         "only %import common.NAME for the names both engines ship is portable (see COMMON_IMPORTS)"),
    Rule("empty-literal", "error", "string", r'^""i?$', "empty literals are refused by lark-python"),
    # traps inside the subset
    Rule("unicode-casefold", "warning", "string-casefold", r".", ""),
    Rule("unbounded-terminal", "warning", "regex-unbounded", r".",
         "unbounded free-text run: a constrained model can loop here until max_tokens; bound it with {m,n}"),
    Rule("unbounded-ignore", "warning", "ignore-unbounded", r".",
         "%ignore of an unbounded run lets a model emit whitespace or comments without end; "
         "put bounded separators in the grammar (e.g. /[ \\t\\n]{1,8}/)"),
    Rule("ignore-at-ends", "warning", "ignore-ends", r".",
         "with %ignore, lark-python accepts ignored text before the first and after the last token but "
         "llguidance (OpenAI) does not: such outputs fail validate(); put optional whitespace in the grammar instead"),
)

