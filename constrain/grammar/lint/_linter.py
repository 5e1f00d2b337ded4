"""The checker: one walk over a tokenized grammar that applies ``RULES`` (no engine builds)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...engines import lark_engine
from ...errors import Diagnostic
from .._tokens import Token, code_tokens, statements, tokenize
from ._regex import is_unbounded, regex_pieces, unbounded_broad_runs
from ._rules import (
    ALLOWED_REGEX_FLAGS,
    CASEFOLD_WIDENING,
    COMMON_IMPORTS,
    COMMON_UNBOUNDED_TEXT,
    COMMON_UNBOUNDED_WHITESPACE,
    RULES,
)


@dataclass
class _Definition:
    """A rule or terminal definition: its name token and the tokens after the colon."""

    name: str
    is_terminal: bool
    head: Token
    body: list[Token]


class _Linter:
    """One grammar text: its tokens, statements and definitions, and the findings of ``RULES`` on them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.statements = statements(self.tokens)
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
        code = code_tokens(self.tokens)
        for a, dash, b in zip(code, code[1:], code[2:]):
            if a.kind == "name" and dash.text == "-" and b.kind == "name" and a.end == dash.offset and dash.end == b.offset:
                self.emit("name", "-", a.offset, f"{a.text}-{b.text}")

    def _definition(self, statement: list[Token]) -> None:
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

    def _expression(self, body: list[Token]) -> None:
        for k, tok in enumerate(body):
            if tok.text == "{" and k > 0 and body[k - 1].end == tok.offset and body[k - 1].text not in ("|", "("):
                end = k
                while end < len(body) and body[end].text != "}":
                    end += 1
                shown = self.text[tok.offset : body[min(end, len(body) - 1)].end]
                self.emit("expression-braces", shown, tok.offset, self.text[body[k - 1].offset : tok.offset] + shown)
            elif tok.kind == "directive":
                self.emit("directive", tok.text, tok.offset, tok.text)

    def _directive(self, statement: list[Token]) -> None:
        first = statement[0]
        self.emit("directive", first.text, first.offset, first.text)
        if first.text == "%import":
            self._import(statement)

    def _import(self, statement: list[Token]) -> None:
        rest = statement[1:]
        shown = self.text[statement[0].offset : statement[-1].end]
        if not rest or rest[0].kind != "name" or rest[0].text != "common":
            where = rest[0].offset if rest else statement[0].offset
            self.emit("import", "x", where, shown, message="only %import common.NAME is portable: llguidance (OpenAI) "
                      "ships no other module, so it refuses this import")
            return
        names: list[Token] = []
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

    def _ignore(self, statement: list[Token]) -> None:
        first = statement[0]
        shown = self.text[first.offset : statement[-1].end]
        self.emit("ignore-ends", "x", first.offset, shown)
        for tok in statement[1:]:
            if self._unbounded_token(tok, set()):
                self.emit("ignore-unbounded", "x", tok.offset, tok.text)
                break

    def _unbounded_token(self, tok: Token, seen: set[str]) -> bool:
        """Whether ``tok`` (a name, regex or string in an %ignore) can match an unbounded run."""
        if tok.kind == "regex":
            return is_unbounded(regex_pieces(_regex_body(tok.text)[0]))
        if tok.kind != "name" or tok.text in seen:
            return False
        seen.add(tok.text)
        if tok.text in self.definitions:
            body = self.definitions[tok.text].body
            if any(t.text in ("*", "+") for t in body):
                return True
            return any(self._unbounded_token(t, seen) for t in body if t.kind in ("regex", "name"))
        return tok.text in self.imports and tok.text in (COMMON_UNBOUNDED_WHITESPACE | COMMON_UNBOUNDED_TEXT)

    def _regex(self, tok: Token) -> None:
        body, flags = _regex_body(tok.text)
        base = tok.offset + 1
        pieces = regex_pieces(body)
        for piece in pieces:
            scope = {"escape": "regex-escape", "class": "regex-class", "group": "regex-group",
                     "quantifier": "regex-quantifier"}.get(piece.kind)
            if scope:
                self.emit(scope, piece.text, base + piece.start, piece.text)
        for piece in unbounded_broad_runs(pieces):
            self.emit("regex-unbounded", "x", base + piece.start, tok.text)
        for k, flag in enumerate(flags):
            if flag not in ALLOWED_REGEX_FLAGS:
                self.emit("regex-flag", flag, tok.end - len(flags) + k, tok.text)
        if "i" in flags:
            letters = {p.text.lower() for p in pieces if p.kind == "literal"}
            letters |= {c.lower() for p in pieces if p.kind == "class" for c in p.text if c.isalpha()}
            self._casefold(tok, letters)

    def _string(self, tok: Token) -> None:
        self.emit("string", tok.text, tok.offset, tok.text)
        if tok.text.endswith('"i'):
            self._casefold(tok, set(tok.text[1:-2].lower()))

    def _casefold(self, tok: Token, letters: set[str]) -> None:
        hits = sorted(letter for letter in letters if letter in CASEFOLD_WIDENING)
        if not hits:
            return
        widened = ", ".join(
            f"{letter!r} also matches " + " ".join(f"U+{ord(c):04X} {c}" for c in CASEFOLD_WIDENING[letter][0])
            + f" ({CASEFOLD_WIDENING[letter][1]})"
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


def rule_heads(text: str) -> dict[str, Token]:
    """Each rule or terminal definition's name token (where ``check`` locates findings about it)."""
    linter = _Linter(text)
    for statement in linter.statements:
        if statement[0].kind != "directive":
            linter._definition(statement)
    return {name: definition.head for name, definition in linter.definitions.items()}
