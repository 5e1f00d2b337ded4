"""What the two engines say about a grammar: lark-python's build (and LALR conflicts), llguidance's
validation and its termination probe, each finding located at a line and column."""

from __future__ import annotations

import re

import lark

from ...engines import lark_engine, llg_engine
from ...errors import Diagnostic
from .._tokens import statements, tokenize
from ._rules import Severity
from ._subject import CheckedGrammar

_LLG_LOCATION = re.compile(r"(?:^|\bat )(\d+)\((\d+)\)")
_LARK_LOCATION = re.compile(r"line (\d+),? col(?:umn)? (\d+)")
_LARK_NAMES = re.compile(r"(?:Rule|Terminal|token|Terminals?\(|<)\s*'?\"?([A-Za-z_][A-Za-z0-9_]*)")


def lark_diagnostics(grammar: CheckedGrammar) -> list[Diagnostic]:
    """Whether lark-python builds the grammar with the parser it asks for (LALR where it can)."""
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
    line, column, shown = locate_lark_message(str(exc), text)
    return Diagnostic(severity, "lalr-conflict", f"{lead}: {detail}", line, column, text=shown, engine="lark")


def lark_build_diagnostic(exc: Exception, text: str) -> Diagnostic:
    """The error lark-python raised while building ``text``, located at a line and column."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    message = re.split(r" in <string>:| Expected one of", message)[0]
    if isinstance(exc, OSError):
        message = f"cannot resolve an import: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        for statement in statements(tokenize(text)):
            if statement[0].text == "%import" and (len(statement) < 2 or statement[1].text != "common"):
                shown = text[statement[0].offset : statement[-1].end]
                return Diagnostic("error", "lark-build", message, statement[0].line, statement[0].column, text=shown,
                                  engine="lark")
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    if isinstance(line, int) and isinstance(column, int) and line > 0:
        shown = text.split("\n")[line - 1].strip() if line <= text.count("\n") + 1 else ""
        return Diagnostic("error", "lark-build", message.split(" Expected one of")[0], line, column, text=shown, engine="lark")
    line, column, shown = locate_lark_message(str(exc), text)
    return Diagnostic("error", "lark-build", message, line, column, text=shown, engine="lark")


def locate_lark_message(message: str, text: str) -> tuple[int, int, str]:
    """lark's grammar errors name rules or terminals but not positions: point at the first named one."""
    m = _LARK_LOCATION.search(message)
    if m:
        return int(m.group(1)), int(m.group(2)), ""
    tokens = tokenize(text)
    heads = {s[0].offset for s in statements(tokens)} | {s[1].offset for s in statements(tokens) if len(s) > 1 and s[0].text in "?!"}
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
    """llguidance's refusal and warnings, and an error when its token mask does not finish in time."""
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
