"""Deployment targets (``check(targets=...)``): what OpenAI, vLLM, llama.cpp and SGLang refuse or treat
differently from the two engines this library validates with. ``TARGETS`` is the table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ...errors import ConstrainError, Diagnostic, GrammarError
from .._tokens import Token, code_tokens, tokenize
from ._engines import locate_lark_message
from ._lexemes import gbnf_lexeme_traps
from ._linter import rule_heads
from ._rules import SEVERITY_ORDER, Severity
from ._subject import CheckedGrammar


@dataclass(frozen=True)
class Target:
    """How a deployment target differs from the two engines this library validates with."""

    name: str
    summary: str
    # lint codes the target treats more strictly (code -> (severity, why))
    stricter: dict[str, tuple[Severity, str]] = field(default_factory=dict)
    notes: tuple[tuple[Severity, str, str], ...] = ()  # (severity, code, message) facts about the target
    check: Callable[[CheckedGrammar, list[Token]], list[Diagnostic]] | None = None


# vLLM's xgrammar backend converts Lark to GBNF line by line; these constructs do not survive it.
_VLLM_XGRAMMAR_LOSSES: tuple[tuple[str, Callable[[Token], bool], str], ...] = (
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


def _vllm_xgrammar(grammar: CheckedGrammar, tokens: list[Token]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key, predicate, message in _VLLM_XGRAMMAR_LOSSES:
        hits = [t for t in tokens if predicate(t)]
        if hits:
            first = hits[0]
            count = f" ({len(hits)} uses; first shown)" if len(hits) > 1 else ""
            out.append(Diagnostic("warning", f"vllm-xgrammar-{key}", f"vLLM xgrammar backend: {message}{count}; "
                                  "use the guidance backend", first.line, first.column, text=first.text, engine="vllm"))
    return out


def _gbnf_text(grammar: CheckedGrammar, engine: str, reader: str) -> tuple[str | None, list[Diagnostic]]:
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
        line, column, shown = locate_lark_message(message, grammar.text)
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {message}", line, column, text=shown,
                                 engine=engine)]
    except ConstrainError as exc:
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {exc}", 1, 1, engine=engine)]
    except Exception as exc:  # the converter reads the grammar with lark, which raises non-lark errors too
        line, column, shown = locate_lark_message(str(exc), grammar.text)
        return None, [Diagnostic("error", "gbnf", f"cannot be converted to GBNF: {type(exc).__name__}: {exc}", line,
                                 column, text=shown, engine=engine)]


def _gbnf_rule_count(gbnf: str) -> int:
    return sum(1 for line in gbnf.splitlines() if "::=" in line)


_LEXEME_TRAP = (
    "llguidance's GBNF reader ({reader}) reads rule {rule}, made of terminals only, as ONE lexeme and lexes it "
    "greedily: after a complete {rule}, a {char} that starts the text after it is taken as the start of "
    "{rule}'s optional or repeated rest, so such texts are refused although the Lark grammar accepts them. "
    "Fix: move that optional or repeated part into the rules that use {rule} (as the SQL grammars' cast "
    "writes `TYPE_NAME type_args?` in place of a type_name rule), or make {rule} one terminal on purpose"
)


def _shown_char(ch: str) -> str:
    return "blank" if ch == " " else repr(ch)


def _lexeme_traps(grammar: CheckedGrammar, engine: str, severity: Severity, reader: str, tail: str = "") -> list[Diagnostic]:
    heads = rule_heads(grammar.text)
    out: list[Diagnostic] = []
    for rule, char in gbnf_lexeme_traps(grammar):
        head = heads.get(rule)
        line, column, shown = (head.line, head.column, head.text) if head else (1, 1, rule)
        message = _LEXEME_TRAP.format(reader=reader, rule=rule, char=_shown_char(char)) + tail
        out.append(Diagnostic(severity, "llguidance-gbnf-lexeme", message, line, column, text=shown, engine=engine))
    return out


def _llamacpp_gbnf(grammar: CheckedGrammar, tokens: list[Token]) -> list[Diagnostic]:
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


def _sglang_gbnf(grammar: CheckedGrammar, tokens: list[Token]) -> list[Diagnostic]:
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


def known_target(name: str) -> Target:
    """The target named ``name``; ``GrammarError`` listing the known ones when there is none."""
    target = TARGETS.get(name)
    if target is None:
        raise GrammarError(f"unknown target {name!r}; known targets: {', '.join(sorted(TARGETS))}")
    return target


def target_diagnostics(grammar: CheckedGrammar, base: list[Diagnostic], target_name: str) -> list[Diagnostic]:
    """What the target adds to the engines' and the lint's findings ``base``: stricter severities, its
    notes, and its own check."""
    target = known_target(target_name)
    out: list[Diagnostic] = []
    for d in base:
        if d.code in target.stricter:
            severity, why = target.stricter[d.code]
            if SEVERITY_ORDER[severity] < SEVERITY_ORDER.get(d.severity, 2):
                out.append(Diagnostic(severity, d.code, f"{why}: {d.message}", d.line, d.column, text=d.text,
                                      engine=target.name))
    out += [Diagnostic(severity, code, message, 1, 1, engine=target.name) for severity, code, message in target.notes]
    if target.check is not None:
        out += target.check(grammar, code_tokens(tokenize(grammar.text)))
    return out

