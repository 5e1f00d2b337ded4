"""Grammar checks: does it build in lark-python, does llguidance (OpenAI's engine) accept it, and
does it fall into one of the known traps (DESIGN.md §2). Every finding has a line and column.

The traps are data: ``RULES`` lists every lint finding (code, severity, message) and the patterns
that trigger it; ``TARGETS`` lists what each deployment target treats differently. One checker
walks a tokenized grammar and applies both tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Literal

import lark

from .engines import lark_engine, llg_engine
from .errors import ConstrainError, Diagnostic, GrammarError, ValidationError

if TYPE_CHECKING:
    from .grammar import Grammar

__all__ = [
    "COMMON_IMPORTS",
    "RULES",
    "TARGETS",
    "SampleVerdict",
    "check_grammar",
    "judge_sample",
    "typed_refusals",
    "lark_build_diagnostic",
    "lint_text",
    "llguidance_diagnostics",
    "tokenize",
]

Severity = Literal["error", "warning", "info"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# -------------------------------------------------------------------------------------------------
# The data: what is outside the subset both engines accept, and the traps inside it.
# -------------------------------------------------------------------------------------------------

COMMON_IMPORTS = frozenset(
    "DIGIT HEXDIGIT INT SIGNED_INT DECIMAL FLOAT SIGNED_FLOAT NUMBER SIGNED_NUMBER ESCAPED_STRING "
    "LCASE_LETTER UCASE_LETTER LETTER WORD CNAME WS_INLINE WS CR LF NEWLINE SH_COMMENT CPP_COMMENT "
    "C_COMMENT SQL_COMMENT _EXP".split()
)
"""``%import common.NAME`` names that lark-python and llguidance both provide (DESIGN §2)."""

# common terminals that match runs of unbounded length (whitespace first, then free-text comments)
_COMMON_UNBOUNDED_WHITESPACE = frozenset({"WS", "WS_INLINE", "NEWLINE"})
_COMMON_UNBOUNDED_TEXT = frozenset({"SH_COMMENT", "CPP_COMMENT", "C_COMMENT", "SQL_COMMENT", "ESCAPED_STRING"})

# ASCII letters that a case-insensitive match also lets through as a non-ASCII character, and which
# engines do so (measured with lark 1.3.1 and llguidance 1.9.1).
_CASEFOLD_WIDENING: dict[str, tuple[str, str]] = {
    "s": ("\u017f", "both engines"),
    "k": ("\u212a", "both engines"),
    "i": ("\u0130\u0131", "lark-python only, so the engines disagree"),
}

_ALLOWED_REGEX_FLAGS = frozenset("is")


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


@dataclass(frozen=True)
class Target:
    """How a deployment target differs from the two engines this library validates with."""

    name: str
    summary: str
    # lint codes the target treats more strictly (code -> (severity, why))
    stricter: dict[str, tuple[Severity, str]] = field(default_factory=dict)
    notes: tuple[tuple[Severity, str, str], ...] = ()  # (severity, code, message) facts about the target
    check: Callable[[Grammar, list[_Token]], list[Diagnostic]] | None = None


# -------------------------------------------------------------------------------------------------
# A tokenizer of Lark grammar text, with positions.
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int
    line: int
    column: int

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


_TOKEN_SPEC = (
    ("newline", r"\r?\n"),
    ("space", r"[ \t\f\r]+"),
    ("comment", r"//[^\n]*|#[^\n]*"),
    ("string", r'"(?:\\"|\\\\|[^"\n])*?"i?'),
    ("regex", r"/(?!/)(?:\\/|\\\\|[^/\n])*?/[imslux]*"),
    ("directive", r"%[A-Za-z_]+"),
    ("name", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("number", r"\d+"),
    ("op", r"->|\.\.|[:|()\[\]{}?*+~.,=!&@<>-]"),
    ("other", r"."),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _TOKEN_SPEC))


def tokenize(text: str) -> list[_Token]:
    """Lark grammar text as tokens (comments and spaces included), each with offset, line, column."""
    out: list[_Token] = []
    line, line_start = 1, 0
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        out.append(_Token(kind, m.group(), m.start(), line, m.start() - line_start + 1))
        if kind == "newline":
            line, line_start = line + 1, m.end()
    return out


def _code_tokens(tokens: list[_Token]) -> list[_Token]:
    return [t for t in tokens if t.kind not in ("space", "comment")]


def _statements(tokens: list[_Token]) -> list[list[_Token]]:
    """Split into top-level statements: a new one starts at a line whose first token is not ``|``
    and which is not indented (Lark continues definitions on indented or ``|`` lines)."""
    statements: list[list[_Token]] = []
    current: list[_Token] = []
    at_line_start, indented = True, False
    depth = 0
    for tok in tokens:
        if tok.kind == "newline":
            at_line_start, indented = True, False
            continue
        if tok.kind == "space":
            indented = indented or at_line_start
            continue
        if tok.kind == "comment":
            continue
        if at_line_start and depth == 0 and not indented and tok.text != "|" and current:
            statements.append(current)
            current = []
        at_line_start = False
        if tok.text in "([{":
            depth += 1
        elif tok.text in ")]}" and depth:
            depth -= 1
        current.append(tok)
    if current:
        statements.append(current)
    return statements


# -------------------------------------------------------------------------------------------------
# Regex bodies, split into the pieces the rules look at.
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RegexPiece:
    kind: str  # "escape" | "class" | "group" | "close" | "quantifier" | "alt" | "dot" | "literal"
    text: str
    start: int  # offset inside the regex body
    broad: bool = False  # matches (nearly) any character: free text


_BROAD_ESCAPES = frozenset({"\\S", "\\W", "\\D"})
_REGEX_ESCAPE = re.compile(r"\\(?:[xu]\{[0-9a-fA-F]*\}?|x[0-9a-fA-F]{0,2}|u[0-9a-fA-F]{0,4}|[pP]\{[^}]*\}?|k<[^>]*>?|.|$)", re.S)
_QUANTIFIER = re.compile(r"(?:[*+?]|\{\d*(?:,\d*)?\})[?+]?")


def _regex_pieces(body: str) -> list[_RegexPiece]:
    pieces: list[_RegexPiece] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            m = _REGEX_ESCAPE.match(body, i)
            assert m is not None  # a lone trailing backslash matches the `$` branch
            text = m.group()
            pieces.append(_RegexPiece("escape", text, i, broad=text in _BROAD_ESCAPES))
            i = m.end()
        elif ch == "[":
            j = i + 1
            if j < len(body) and body[j] == "^":
                j += 1
            if j < len(body) and body[j] == "]":
                j += 1
            while j < len(body) and body[j] != "]":
                if body[j] == "\\":
                    j += 1
                elif body[j] == "[" and body.startswith("[:", j):
                    end = body.find(":]", j + 2)
                    j = end + 1 if end != -1 else j
                j += 1
            text = body[i : j + 1]
            pieces.append(_RegexPiece("class", text, i, broad=text.startswith("[^")))
            i = j + 1
        elif ch == "(":
            m = re.compile(r"\((?:\?(?:<?[=!]|>|P=\w+\)?|P?<\w+>|[a-zA-Z-]*:|[a-zA-Z]+\)|:|#[^)]*\)?))?").match(body, i)
            assert m is not None
            pieces.append(_RegexPiece("group", m.group(), i))
            i = m.end()
        elif ch == ")":
            pieces.append(_RegexPiece("close", ch, i))
            i += 1
        elif ch == "|":
            pieces.append(_RegexPiece("alt", ch, i))
            i += 1
        elif ch == "." :
            pieces.append(_RegexPiece("dot", ch, i, broad=True))
            i += 1
        elif (m := _QUANTIFIER.match(body, i)) and pieces and pieces[-1].kind not in ("group", "alt"):
            pieces.append(_RegexPiece("quantifier", m.group(), i))
            i = m.end()
        else:
            pieces.append(_RegexPiece("literal", ch, i))
            i += 1
    return pieces


def _unbounded_broad_runs(pieces: list[_RegexPiece]) -> Iterator[_RegexPiece]:
    """Quantifiers with no upper bound applied to a broad atom (or a group containing one)."""
    stack: list[bool] = [False]  # per open group: does it contain a broad atom?
    previous_broad = False
    for piece in pieces:
        if piece.kind == "group":
            stack.append(False)
            previous_broad = False
        elif piece.kind == "close":
            inner = stack.pop() if len(stack) > 1 else False
            stack[-1] = stack[-1] or inner
            previous_broad = inner
        elif piece.kind == "quantifier":
            unbounded = piece.text[0] in "*+" or re.match(r"^\{\d*,\}", piece.text) is not None
            if previous_broad and unbounded:
                yield piece
            previous_broad = False
        else:
            previous_broad = piece.broad
            stack[-1] = stack[-1] or piece.broad


def _unbounded(pieces: list[_RegexPiece]) -> bool:
    return any(
        p.kind == "quantifier" and (p.text[0] in "*+" or re.match(r"^\{\d*,\}", p.text) is not None) for p in pieces
    )


# -------------------------------------------------------------------------------------------------
# The checker.
# -------------------------------------------------------------------------------------------------


@dataclass
class _Definition:
    name: str
    is_terminal: bool
    head: _Token
    body: list[_Token]


class _Linter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.statements = _statements(self.tokens)
        self.findings: list[Diagnostic] = []
        self.definitions: dict[str, _Definition] = {}
        self.imports: set[str] = set()

    # -- emitting ------------------------------------------------------------------------------------
    def emit(self, scope: str, subject: str, offset: int, shown: str, *, message: str = "") -> None:
        for rule in RULES:
            if rule.scope == scope and re.search(rule.pattern, subject):
                line, column = lark_engine.line_column(self.text, offset)
                self.findings.append(
                    Diagnostic(rule.severity, rule.code, message or rule.message, line, column, text=shown, engine="lint")
                )

    # -- walking ---------------------------------------------------------------------------------------
    def run(self) -> list[Diagnostic]:
        self._scan_names()
        for statement in self.statements:
            first = statement[0]
            if first.kind == "directive":
                self._directive(statement)
            else:
                self._definition(statement)
        for statement in self.statements:
            if statement[0].kind == "directive" and statement[0].text == "%ignore":
                self._ignore(statement)
        for token in self.tokens:
            if token.kind == "regex":
                self._regex(token)
            elif token.kind == "string":
                self._string(token)
        return self.findings

    def _scan_names(self) -> None:
        code = _code_tokens(self.tokens)
        for a, dash, b in zip(code, code[1:], code[2:]):
            if a.kind == "name" and dash.text == "-" and b.kind == "name" and a.end == dash.offset and dash.end == b.offset:
                self.emit("name", "-", a.offset, f"{a.text}-{b.text}")

    def _definition(self, statement: list[_Token]) -> None:
        i = 0
        while i < len(statement) and statement[i].text in ("?", "!"):
            i += 1
        if i >= len(statement) or statement[i].kind != "name":
            return
        head = statement[i]
        j = i + 1
        if j + 1 < len(statement) and statement[j].text == "." and statement[j + 1].kind == "number":
            self.emit("definition-priority", ".", statement[j].offset, head.text + "." + statement[j + 1].text)
            j += 2
        elif j + 2 < len(statement) and statement[j].text == "." and statement[j + 1].text == "-":
            self.emit("definition-priority", ".", statement[j].offset, head.text + ".-" + statement[j + 2].text)
            j += 3
        if j < len(statement) and statement[j].text in ("{", "["):
            close = "}" if statement[j].text == "{" else "]"
            k = j
            while k < len(statement) and statement[k].text != close:
                k += 1
            if k + 1 < len(statement) and statement[k + 1].text == ":":
                scope = "definition-template" if close == "}" else "definition-options"
                shown = self.text[statement[j].offset : statement[k].end]
                self.emit(scope, shown, statement[j].offset, head.text + shown)
                j = k + 1
        if j >= len(statement) or statement[j].text != ":":
            return
        body = statement[j + 1 :]
        self.definitions[head.text] = _Definition(head.text, head.text.lstrip("_")[:1].isupper(), head, body)
        self._expression(body)

    def _expression(self, body: list[_Token]) -> None:
        for k, tok in enumerate(body):
            if tok.text == "{" and k > 0 and body[k - 1].end == tok.offset and body[k - 1].text not in ("|", "("):
                end = k
                while end < len(body) and body[end].text != "}":
                    end += 1
                shown = self.text[tok.offset : body[min(end, len(body) - 1)].end]
                self.emit("expression-braces", shown, tok.offset, self.text[body[k - 1].offset : tok.offset] + shown)
            elif tok.kind == "directive":
                self.emit("directive", tok.text, tok.offset, tok.text)

    def _directive(self, statement: list[_Token]) -> None:
        first = statement[0]
        self.emit("directive", first.text, first.offset, first.text)
        if first.text == "%import":
            self._import(statement)

    def _import(self, statement: list[_Token]) -> None:
        rest = statement[1:]
        shown = self.text[statement[0].offset : statement[-1].end]
        if not rest or rest[0].kind != "name" or rest[0].text != "common":
            where = rest[0].offset if rest else statement[0].offset
            self.emit("import", "x", where, shown, message="only %import common.NAME is portable: llguidance (OpenAI) "
                      "ships no other module, so it refuses this import")
            return
        names: list[_Token] = []
        if len(rest) >= 3 and rest[1].text == "." and rest[2].kind == "name":
            names = [rest[2]]  # with "-> Y" the imported name is still X
        elif len(rest) >= 2 and rest[1].text == "(":
            names = [t for t in rest[2:] if t.kind == "name"]
        for name in names:
            self.imports.add(name.text)
            if name.text not in COMMON_IMPORTS:
                self.emit("import", "x", name.offset, shown,
                          message=f"common.{name.text} is not in the list both engines ship "
                          f"({', '.join(sorted(COMMON_IMPORTS))})")

    def _ignore(self, statement: list[_Token]) -> None:
        first = statement[0]
        shown = self.text[first.offset : statement[-1].end]
        self.emit("ignore-ends", "x", first.offset, shown)
        for tok in statement[1:]:
            if self._unbounded_token(tok, set()):
                self.emit("ignore-unbounded", "x", tok.offset, tok.text)
                break

    def _unbounded_token(self, tok: _Token, seen: set[str]) -> bool:
        """Whether ``tok`` (a name, regex or string in an %ignore) can match an unbounded run."""
        if tok.kind == "regex":
            return _unbounded(_regex_pieces(_regex_body(tok.text)[0]))
        if tok.kind != "name" or tok.text in seen:
            return False
        seen.add(tok.text)
        if tok.text in self.definitions:
            body = self.definitions[tok.text].body
            if any(t.text in ("*", "+") for t in body):
                return True
            return any(self._unbounded_token(t, seen) for t in body if t.kind in ("regex", "name"))
        return tok.text in self.imports and tok.text in (_COMMON_UNBOUNDED_WHITESPACE | _COMMON_UNBOUNDED_TEXT)

    def _regex(self, tok: _Token) -> None:
        body, flags = _regex_body(tok.text)
        base = tok.offset + 1
        pieces = _regex_pieces(body)
        for piece in pieces:
            scope = {"escape": "regex-escape", "class": "regex-class", "group": "regex-group",
                     "quantifier": "regex-quantifier"}.get(piece.kind)
            if scope:
                self.emit(scope, piece.text, base + piece.start, piece.text)
        for piece in _unbounded_broad_runs(pieces):
            self.emit("regex-unbounded", "x", base + piece.start, tok.text)
        for k, flag in enumerate(flags):
            if flag not in _ALLOWED_REGEX_FLAGS:
                self.emit("regex-flag", flag, tok.end - len(flags) + k, tok.text)
        if "i" in flags:
            letters = {p.text.lower() for p in pieces if p.kind == "literal"}
            letters |= {c.lower() for p in pieces if p.kind == "class" for c in p.text if c.isalpha()}
            self._casefold(tok, letters)

    def _string(self, tok: _Token) -> None:
        self.emit("string", tok.text, tok.offset, tok.text)
        if tok.text.endswith('"i'):
            self._casefold(tok, set(tok.text[1:-2].lower()))

    def _casefold(self, tok: _Token, letters: set[str]) -> None:
        hits = sorted(letter for letter in letters if letter in _CASEFOLD_WIDENING)
        if not hits:
            return
        widened = ", ".join(
            f"{letter!r} also matches " + " ".join(f"U+{ord(c):04X} {c}" for c in _CASEFOLD_WIDENING[letter][0])
            + f" ({_CASEFOLD_WIDENING[letter][1]})"
            for letter in hits
        )
        suggestion = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in tok.text[1:-2]) \
            if tok.kind == "string" else ""
        hint = f"; write /{suggestion}/ to keep it ASCII" if suggestion else "; use explicit [xX] classes to keep it ASCII"
        self.emit("string-casefold", "x", tok.offset, tok.text, message=f"case-insensitive match is Unicode-wide: {widened}{hint}")


def _regex_body(token_text: str) -> tuple[str, str]:
    end = token_text.rfind("/")
    return token_text[1:end], token_text[end + 1 :]


def lint_text(text: str) -> list[Diagnostic]:
    """The lint findings alone (no engine builds): traps and features outside the common subset."""
    return _Linter(text).run()


# -------------------------------------------------------------------------------------------------
# Engines: lark-python builds, llguidance validation.
# -------------------------------------------------------------------------------------------------

_LLG_LOCATION = re.compile(r"(?:^|\bat )(\d+)\((\d+)\)")
_LARK_LOCATION = re.compile(r"line (\d+),? col(?:umn)? (\d+)")
_LARK_NAMES = re.compile(r"(?:Rule|Terminal|token|Terminals?\(|<)\s*'?\"?([A-Za-z_][A-Za-z0-9_]*)")


def _lark_diagnostics(grammar: Grammar) -> list[Diagnostic]:
    try:
        lark_engine.build(grammar.text, "lalr", grammar.start)
        return []
    except lark.exceptions.GrammarError as exc:
        lalr_error: Exception = exc
    except Exception as exc:  # lark raises LarkError, OSError (imports), re.error, SyntaxError (escapes)
        return [lark_build_diagnostic(exc, grammar.text)]
    if grammar.parser_choice == "lalr":
        return [_conflict(lalr_error, grammar.text, "error", "the grammar pins parser: lalr but is not LALR(1)")]
    try:
        lark_engine.build(grammar.text, "earley", grammar.start)
    except Exception as exc:
        return [lark_build_diagnostic(exc, grammar.text)]
    if grammar.parser_choice == "earley":
        return []
    return [_conflict(lalr_error, grammar.text, "info", "not LALR(1), so lark-python uses Earley (slower)")]


def _conflict(exc: Exception, text: str, severity: Severity, lead: str) -> Diagnostic:
    detail = " ".join(str(exc).split())
    line, column, shown = _locate_lark_message(str(exc), text)
    return Diagnostic(severity, "lalr-conflict", f"{lead}: {detail}", line, column, text=shown, engine="lark")


def lark_build_diagnostic(exc: Exception, text: str) -> Diagnostic:
    """The error lark-python raised while building ``text``, located at a line and column."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    message = re.split(r" in <string>:| Expected one of", message)[0]
    if isinstance(exc, OSError):
        message = f"cannot resolve an import: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        for statement in _statements(tokenize(text)):
            if statement[0].text == "%import" and (len(statement) < 2 or statement[1].text != "common"):
                shown = text[statement[0].offset : statement[-1].end]
                return Diagnostic("error", "lark-build", message, statement[0].line, statement[0].column, text=shown,
                                  engine="lark")
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    if isinstance(line, int) and isinstance(column, int) and line > 0:
        shown = text.split("\n")[line - 1].strip() if line <= text.count("\n") + 1 else ""
        return Diagnostic("error", "lark-build", message.split(" Expected one of")[0], line, column, text=shown, engine="lark")
    line, column, shown = _locate_lark_message(str(exc), text)
    return Diagnostic("error", "lark-build", message, line, column, text=shown, engine="lark")


def _locate_lark_message(message: str, text: str) -> tuple[int, int, str]:
    """lark's grammar errors name rules or terminals but not positions: point at the first named one."""
    m = _LARK_LOCATION.search(message)
    if m:
        return int(m.group(1)), int(m.group(2)), ""
    tokens = tokenize(text)
    heads = {s[0].offset for s in _statements(tokens)} | {s[1].offset for s in _statements(tokens) if len(s) > 1 and s[0].text in "?!"}
    for name in _LARK_NAMES.findall(message):
        uses = [t for t in tokens if t.kind == "name" and t.text == name]
        uses.sort(key=lambda t: (t.offset not in heads, t.offset))  # its definition first, else the first use
        if uses:
            return uses[0].line, uses[0].column, uses[0].text
    for piece in re.findall(r"'([^']+)'|\((\"[^)]*)\)", message):
        piece = "".join(piece)
        at = text.find(piece)
        if at != -1:
            line, column = lark_engine.line_column(text, at)
            return line, column, piece
    return 1, 1, ""


HANG_SECONDS = 5.0
"""How long one token mask may take in ``check()``'s termination probe before it counts as a hang."""


def llguidance_diagnostics(text: str) -> list[Diagnostic]:
    error, warnings = llg_engine.validate_lark(text)
    if not error:
        try:
            llg_engine.Matcher(text)  # a few refusals (e.g. the m flag) only show when compiling
        except ValueError as exc:
            error = str(exc)
    out: list[Diagnostic] = []
    if not error:
        hang = llg_engine.find_hang(text, seconds=HANG_SECONDS)
        if hang is not None:
            out.append(Diagnostic(
                "error", "llguidance-hang",
                "llguidance did not finish computing the token mask "
                + (f"after {hang.decode('utf-8', 'replace')!r} " if hang else "at the start of the output ")
                + f"within {HANG_SECONDS:g} s (random walks in a child process); sampling, servers and local "
                "decoding would hang there. Known trigger: a terminal that can swallow the one after it "
                '(A: /a+/ followed by "a"); make the boundary explicit',
                1, 1, engine="llguidance",
            ))
    for severity, message in ([("error", error)] if error else []) + [("warning", w) for w in warnings]:
        m = _LLG_LOCATION.search(message)
        # measured: llguidance's "at L(C)" is 1-based in both line and column
        line, column = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        lines_of_message = [ln for ln in message.strip().splitlines() if not re.match(r"^\s+\d+ \|", ln)]
        details = [ln.strip() for ln in lines_of_message[1:] if ln.strip().startswith("error:")]
        headline = " ".join([lines_of_message[0].strip() if lines_of_message else message.strip()] + details)
        headline = _LLG_LOCATION.sub("", headline, count=1).lstrip(": ").strip() or headline
        lines = text.split("\n")
        shown = lines[line - 1][column - 1 :].split()[0] if 0 < line <= len(lines) and lines[line - 1][column - 1 :].split() else ""
        out.append(Diagnostic(severity, "llguidance", headline, line, column, text=shown, engine="llguidance"))
    return out


# -------------------------------------------------------------------------------------------------
# Targets: what each deployment will refuse or treat differently.
# -------------------------------------------------------------------------------------------------

# vLLM's xgrammar backend converts Lark to GBNF line by line; these constructs do not survive it.
_VLLM_XGRAMMAR_LOSSES: tuple[tuple[str, Callable[[_Token], bool], str], ...] = (
    ("regex", lambda t: t.kind == "regex", "/regex/ terminals are passed through as text, which GBNF cannot read"),
    ("directive", lambda t: t.kind == "directive", "%import / %ignore lines are dropped, so imported names are undefined "
     "and ignored whitespace is no longer allowed"),
    ("casefold", lambda t: t.kind == "string" and t.text.endswith('"i'), '"..."i literals have no GBNF form'),
    ("repeat", lambda t: t.text == "~", "x ~ n..m repetition has no GBNF form in that converter"),
    ("alias", lambda t: t.text == "->", "-> aliases are copied into the GBNF text and break it"),
    ("range", lambda t: t.text == "..", '"a".."z" ranges have no GBNF form in that converter'),
    ("comment-char", lambda t: t.kind == "string" and ("#" in t.text or "//" in t.text),
     "'#' or '//' inside a literal is cut off as a comment by that converter"),
)


def _vllm_xgrammar(grammar: Grammar, tokens: list[_Token]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key, predicate, message in _VLLM_XGRAMMAR_LOSSES:
        hits = [t for t in tokens if predicate(t)]
        if hits:
            first = hits[0]
            count = f" ({len(hits)} uses; first shown)" if len(hits) > 1 else ""
            out.append(Diagnostic("warning", f"vllm-xgrammar-{key}", f"vLLM xgrammar backend: {message}{count}; "
                                  "use the guidance backend", first.line, first.column, text=first.text, engine="vllm"))
    return out


def _gbnf_text(grammar: Grammar, engine: str, reader: str) -> tuple[str | None, list[Diagnostic]]:
    """The grammar as GBNF, else the located findings that say why there is none."""
    to_gbnf = getattr(grammar, "to_gbnf", None)
    if to_gbnf is None:
        return None, [Diagnostic("info", "gbnf-unavailable", f"no Lark-to-GBNF converter in this build; {reader} needs "
                                 "GBNF (no %ignore: whitespace must be explicit; regexes become character classes)", 1, 1,
                                 engine=engine)]
    try:
        return to_gbnf(), []
    except GrammarError as exc:
        if exc.diagnostics:
            return None, [Diagnostic("error", d.code or "gbnf", d.message, d.line, d.column, text=d.text, engine=engine)
                          for d in exc.diagnostics]
        message = str(exc).splitlines()[0]
        line, column, shown = _locate_lark_message(message, grammar.text)
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {message}", line, column, text=shown,
                                 engine=engine)]
    except ConstrainError as exc:
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {exc}", 1, 1, engine=engine)]
    except Exception as exc:  # the converter reads the grammar with lark, which raises non-lark errors too
        line, column, shown = _locate_lark_message(str(exc), grammar.text)
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {type(exc).__name__}: {exc}", line,
                                 column, text=shown, engine=engine)]


def _gbnf_rule_count(gbnf: str) -> int:
    return sum(1 for line in gbnf.splitlines() if "::=" in line)


# -- llguidance's GBNF reader (``llguidance.gbnf_to_lark``: SGLang's llguidance backend; the script
# llama.cpp's docs give GBNF users for its LLGuidance build) turns a GBNF rule whose alternatives are all
# terminal (literals, classes, references to such rules, to a fixpoint; never the root) into ONE Lark
# terminal: a lexeme, lexed greedily. Where such a rule can end after a complete token and also go on
# with a next token, and a character that starts that next token can also start the text after the
# rule, the lexer takes that character as the rule's continuation: "int" with an optional "(n)" whose
# "(" may be preceded by blanks swallows the blank of "CAST(a AS int )" and then refuses the ")". A
# continuation inside one lark token is not a trap: every reading lexes a token greedily.

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
        from .engines import gbnf as g

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
            self._build(nfa, g_ref(self.g, lexeme), start, final, 0)
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
                        taken = _overlap(self.first.get(symbol, _NO_CHARS), ended)
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


def g_ref(g: object, key: tuple[str, ...]) -> object:
    return g.Ref(key)  # type: ignore[attr-defined]


def _overlap(a: _Chars, b: _Chars) -> _Chars:
    from .engines.gbnf import _intersect

    return _intersect(a, b)


def gbnf_lexeme_traps(grammar: Grammar) -> list[tuple[str, str]]:
    """The Lark rules of ``grammar`` that llguidance's GBNF reader makes into a lexeme that swallows the
    start of the text after it (see ``_LexemeScan.traps``), in grammar order, each with a character it
    takes (a blank when it takes one)."""
    from .engines.gbnf import gbnf_rules

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
    heads = _rule_heads(grammar.text)
    return sorted(found.items(), key=lambda item: (heads[item[0]].offset if item[0] in heads else len(grammar.text), item[0]))


def _rule_heads(text: str) -> dict[str, _Token]:
    """Each rule or terminal definition's name token (where ``check`` locates findings about it)."""
    linter = _Linter(text)
    for statement in linter.statements:
        if statement[0].kind != "directive":
            linter._definition(statement)
    return {name: definition.head for name, definition in linter.definitions.items()}


_LEXEME_TRAP = (
    "llguidance's GBNF reader ({reader}) reads rule {rule}, made of terminals only, as ONE lexeme and lexes it "
    "greedily: after a complete {rule}, a {char} that starts the text after it is taken as the start of "
    "{rule}'s optional or repeated rest, so such texts are refused although the Lark grammar accepts them. "
    "Fix: move that optional or repeated part into the rules that use {rule} (as the SQL grammars' cast "
    "writes `TYPE_NAME type_args?` in place of a type_name rule), or make {rule} one terminal on purpose"
)


def _shown_char(ch: str) -> str:
    return "blank" if ch == " " else repr(ch)


def _lexeme_traps(grammar: Grammar, engine: str, severity: Severity, reader: str, tail: str = "") -> list[Diagnostic]:
    heads = _rule_heads(grammar.text)
    out: list[Diagnostic] = []
    for rule, char in gbnf_lexeme_traps(grammar):
        head = heads.get(rule)
        line, column, shown = (head.line, head.column, head.text) if head else (1, 1, rule)
        message = _LEXEME_TRAP.format(reader=reader, rule=rule, char=_shown_char(char)) + tail
        out.append(Diagnostic(severity, "llguidance-gbnf-lexeme", message, line, column, text=shown, engine=engine))
    return out


def _llamacpp_gbnf(grammar: Grammar, tokens: list[_Token]) -> list[Diagnostic]:
    gbnf, out = _gbnf_text(grammar, "llamacpp", "llama.cpp")
    if gbnf is None:
        return out
    out = [Diagnostic("info", "gbnf", f"converts to GBNF ({_gbnf_rule_count(gbnf)} rules) for llama.cpp's grammar "
                      "sampler, which is several times slower per token than llguidance", 1, 1, engine="llamacpp")]
    # llama.cpp reads GBNF with its own sampler; a LLGuidance build takes only "%llguidance" Lark, and its
    # docs send GBNF users to llguidance's gbnf_to_lark script: the trap is theirs only on that road
    return out + _lexeme_traps(grammar, "llamacpp", "info", "gbnf_to_lark, if you convert the GBNF for a "
                               "LLGuidance build", "; with LLGuidance, send the Lark text itself after a "
                               "%llguidance {} line instead")


def _sglang_gbnf(grammar: Grammar, tokens: list[_Token]) -> list[Diagnostic]:
    gbnf, out = _gbnf_text(grammar, "sglang", "SGLang's ebnf field")
    if gbnf is None:
        return out
    from llguidance import LLMatcher
    from llguidance.gbnf_to_lark import gbnf_to_lark

    try:
        error = LLMatcher.validate_grammar(LLMatcher.grammar_from_lark(gbnf_to_lark(gbnf)))
    except Exception as exc:  # the reader raises plain Exceptions on text it cannot read
        error = f"{type(exc).__name__}: {exc}"
    if error:
        return [Diagnostic("warning", "llguidance-gbnf", "SGLang's llguidance backend (--grammar-backend llguidance) "
                           f"cannot read the GBNF: {' '.join(error.split())[:300]}", 1, 1, engine="sglang")]
    return _lexeme_traps(grammar, "sglang", "warning", "SGLang's --grammar-backend llguidance")


TARGETS: dict[str, Target] = {
    "openai": Target(
        "openai",
        "OpenAI custom tools (llguidance on the server; Rust regex syntax)",
        stricter={"regex-flag": ("error", "OpenAI's regexes are Rust regex syntax; only the i and s flags are safe")},
        notes=(("info", "openai-size", "OpenAI publishes no grammar size limit; a grammar it finds too complex "
                "comes back as HTTP 400 (GrammarRejectedError)"),),
    ),
    "vllm": Target(
        "vllm",
        "vLLM structured_outputs: guidance backend = llguidance Lark; xgrammar backend = a line-based Lark-to-GBNF conversion",
        notes=(("info", "vllm-field", "send the grammar as structured_outputs.grammar; the old guided_grammar field is "
                "ignored silently by newer servers"),),
        check=_vllm_xgrammar,
    ),
    "llamacpp": Target(
        "llamacpp",
        "llama.cpp server: GBNF in the grammar field (Lark only in builds with LLGuidance, prefixed %llguidance {})",
        notes=(("info", "llamacpp-tools", "llama.cpp refuses grammar together with tools (HTTP 400)"),),
        check=_llamacpp_gbnf,
    ),
    "sglang": Target(
        "sglang",
        "SGLang server: GBNF in the ebnf field, read by xgrammar (the default backend) or, with "
        "--grammar-backend llguidance, by llguidance's GBNF reader",
        notes=(("info", "sglang-backend", "SGLang reads the ebnf field's GBNF with its grammar backend: xgrammar by "
                "default; with --grammar-backend llguidance, llguidance's gbnf_to_lark turns every rule made of "
                "terminals only into one lexeme"),),
        check=_sglang_gbnf,
    ),
}


def _target_diagnostics(grammar: Grammar, base: list[Diagnostic], target_name: str) -> list[Diagnostic]:
    target = TARGETS.get(target_name)
    if target is None:
        raise GrammarError(f"unknown target {target_name!r}; known targets: {', '.join(sorted(TARGETS))}")
    out: list[Diagnostic] = []
    for d in base:
        if d.code in target.stricter:
            severity, why = target.stricter[d.code]
            if _SEVERITY_ORDER[severity] < _SEVERITY_ORDER.get(d.severity, 2):
                out.append(Diagnostic(severity, d.code, f"{why}: {d.message}", d.line, d.column, text=d.text,
                                      engine=target.name))
    out += [Diagnostic(severity, code, message, 1, 1, engine=target.name) for severity, code, message in target.notes]
    if target.check is not None:
        out += target.check(grammar, _code_tokens(tokenize(grammar.text)))
    return out


# -------------------------------------------------------------------------------------------------
# Typed checks: how much of the language the grammar's own typed value refuses.
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleVerdict:
    """The full validation of one random walk: ``lark_error`` when Lark refuses what llguidance wrote
    (the engines disagree: a grammar bug), else ``typed_error`` when the typed checks refuse it."""

    text: str
    lark_error: ValidationError | None = None
    typed_error: ValidationError | None = None

    @property
    def ok(self) -> bool:
        """Whether ``constrain validate --grammar`` (both engines, then the typed value) accepts the text."""
        return self.lark_error is None and self.typed_error is None


def judge_sample(grammar: Grammar, text: str) -> SampleVerdict:
    """Validate a string llguidance drew from ``grammar`` the way ``constrain validate --grammar`` does."""
    try:
        grammar.parse(text)
    except ValidationError as exc:
        return SampleVerdict(text, lark_error=exc)
    try:
        grammar.parse_typed(text)
    except GrammarError:
        raise
    except ValidationError as exc:
        return SampleVerdict(text, typed_error=exc)
    except ConstrainError as exc:  # a typed model refusing its value: still the typed check's verdict
        return SampleVerdict(text, typed_error=ValidationError(str(exc), text=text, engine="typed", grammar=grammar.name))
    return SampleVerdict(text)


TYPED_WALKS = 100
"""How many random walks ``check()`` runs through a grammar's typed checks."""


def _shorten(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def typed_refusals(grammar: Grammar, *, walks: int = TYPED_WALKS, seed: int = 0) -> list[Diagnostic]:
    """A ``typed-refusals`` warning when the grammar's typed checks refuse some of its random walks.

    Each such walk is a text a constrained model can write and the loop must re-ask: a check the grammar
    could state as a rule. Nothing for a grammar without a typed value, or when every walk passes."""
    if grammar._typer is None:
        return []
    verdicts = [judge_sample(grammar, text) for text in grammar.sample(walks, seed=seed)]
    refused = [v for v in verdicts if v.lark_error is None and v.typed_error is not None]
    if not refused:
        return []
    example = refused[0]
    assert example.typed_error is not None
    share = f"{len(refused)} of {len(verdicts)} random walks ({100 * len(refused) / len(verdicts):.0f}%)"
    return [Diagnostic(
        "warning", "typed-refusals",
        f"{share} pass both engines but the grammar's typed checks refuse them, e.g. {_shorten(example.text)}: "
        f"{str(example.typed_error).splitlines()[0]}. A model constrained by this grammar can write them, and "
        "each costs a round trip: state the check in the grammar where a rule can (`constrain sample --all` "
        "shows them)",
        1, 1, engine="typed",
    )]


def example_diagnostics(grammar: Grammar) -> list[Diagnostic]:
    """An ``example-refused`` error for each of the grammar's examples that it does not accept (both
    engines and its typed check): an example the model is shown must be an answer it may write."""
    from . import _resources

    header = _resources.read_header(grammar.text)
    lines = dict(zip((e.output for e in header.examples), header.example_lines))
    out: list[Diagnostic] = []
    for example, _ in grammar.examples:
        try:
            grammar.parse_typed(example)
        except ConstrainError as exc:
            line = lines.get(example, 1)
            out.append(Diagnostic(
                "error", "example-refused", f"the example {example[:60]!r} is not in the language: {str(exc).splitlines()[0]}",
                line, 1, grammar.text.splitlines()[line - 1][:80] if line in lines.values() else "", "lint",
            ))
    return out


def check_grammar(grammar: Grammar, *, targets: tuple[str, ...] = ()) -> list[Diagnostic]:
    """Every finding about ``grammar``: lark-python, llguidance, the lint, the share of random walks its
    typed checks refuse (grammars with a typed value), and each named target."""
    for name in targets:
        if name not in TARGETS:
            raise GrammarError(f"unknown target {name!r}; known targets: {', '.join(sorted(TARGETS))}")
    base = _lark_diagnostics(grammar) + llguidance_diagnostics(grammar.text) + lint_text(grammar.text)
    diagnostics = list(base)
    if not any(d.severity == "error" and d.engine in ("lark", "llguidance") for d in base):
        diagnostics += typed_refusals(grammar) + example_diagnostics(grammar)
    for name in targets:
        diagnostics += _target_diagnostics(grammar, base, name)
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (d.line, d.column, _SEVERITY_ORDER.get(d.severity, 3), d.code))
