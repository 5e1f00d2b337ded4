"""``Grammar``: one Lark grammar text, validated by lark-python and llguidance alike; and loading one.

``load_grammar`` gives a packaged grammar (its includes resolved, its typed value attached; ``json``
as ``JSONGrammar``) or a ``.lark`` file.
"""

from __future__ import annotations

import functools
import random
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar, overload

import lark

from ..engines import lark_engine, llg_engine
from ..errors import Diagnostic, GrammarError, InputError, ValidationError
from . import _compose
from ._json_syntax import syntax_parser
from ._packaged import Example, GrammarInfo, ParserChoice, catalog, packaged_text, read_header
from ._typed import Typer, run_transformer, typer_for
from ._values import json_value, pydantic_value
from .lint import check_grammar

__all__ = ["DEFAULT_MAX_BYTES", "Grammar", "JSONGrammar", "available_grammars", "load_grammar"]

DEFAULT_MAX_BYTES = 1 << 20
"""Inputs larger than this are refused (model outputs are far smaller; this keeps validation bounded)."""

T = TypeVar("T")


class Grammar:
    """A Lark grammar in the subset that lark-python and llguidance both accept.

    ``text`` is exactly what is sent to a provider. Validation re-parses with both engines;
    ``parse_typed`` turns an accepted text into the grammar's typed value.
    """

    def __init__(
        self,
        text: str,
        *,
        name: str = "<string>",
        parser: ParserChoice = "auto",
        start: str = "start",
        description: str | None = None,
        examples: Sequence[str | Example] | None = None,
        max_tokens: int | None = None,
        written_as: Grammar | str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        listed_values: Mapping[str, Sequence[str]] | None = None,
        _typer: Typer | None = None,
    ) -> None:
        if not isinstance(text, str) or not text.strip():
            raise GrammarError("grammar text is empty", grammar=name)
        if max_tokens is not None and max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
        header = read_header(text)
        self._text = text
        self.name = name
        self.parser_choice: ParserChoice = parser
        self.start = start
        # what the model is told about the language (the prompt, a tool's description) and the longest
        # output a right answer needs; unless given, from the grammar's own `// description:`,
        # `// example:` and `// max-tokens:` lines (the summary line when there is no description)
        self.description: str = description if description is not None else (header.guide or header.summary)
        self.examples: tuple[Example, ...] = (
            tuple(e if isinstance(e, Example) else Example(e) for e in examples) if examples is not None else header.examples
        )
        self._max_tokens: int | None = max_tokens if max_tokens is not None else header.max_tokens
        # the only values a field (a key, a dotted path) takes, where a bound grammar lists them: the
        # prompt points out those a request names (``providers._guide.named_values``)
        self.listed_values: dict[str, tuple[str, ...]] = {
            str(k): tuple(str(v) for v in values) for k, values in (listed_values or {}).items() if values}
        # the grammar a model writes this one's values in (``// written-as:``), see ``written_as``
        self._written_as: Grammar | str | None = written_as if written_as is not None else header.written_as
        self._longest: tuple[int | None] | None = None
        self.max_bytes = max_bytes
        self._lexer_last = header.lexer_last
        self._typer = _typer
        self._lock = threading.Lock()
        self._lark: lark.Lark | None = None
        self._parser_used: str | None = None
        self._matcher: llg_engine.Matcher | None = None

    @property
    def written_as(self) -> Grammar | None:
        """The grammar a model writes this grammar's values in, or None: its typed value's ``str()`` is a
        text of this grammar (``dsl/cron`` is written as ``dsl/schedule``, words a small model copies from
        the request). ``generate`` asks for that form and returns this grammar's text and value."""
        if isinstance(self._written_as, str):
            self._written_as = load_grammar(self._written_as)
        return self._written_as

    def from_written(self, text: str) -> str:
        """The text of this grammar that ``text``, written in ``written_as``, stands for; located
        ``ValidationError`` when the written form is refused or stands for no text of this grammar."""
        written = self.written_as
        if written is None:
            raise InputError(f"grammar {self.name} has no written form (// written-as:)")
        return str(written.parse_typed(text))

    @property
    def max_tokens(self) -> int | None:
        """The most tokens a right answer needs, the bound of each attempt: as declared (``max_tokens=``,
        ``// max-tokens:``), else for a grammar whose language is finite its longest output (4 tokens a
        character: a character outside ASCII may take one token per byte), else None."""
        if self._max_tokens is not None:
            return self._max_tokens
        if self._longest is None:
            longest = lark_engine.longest_output(self._lark_parser())
            self._longest = (None if longest is None else 4 * longest,)
        return self._longest[0]

    # -- identity -----------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The Lark source exactly as it will be sent to a provider."""
        return self._text

    def __repr__(self) -> str:
        return f"Grammar(name={self.name!r}, lines={self._text.count(chr(10)) + 1})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grammar) and other._text == self._text and other.start == self.start

    def __hash__(self) -> int:
        return hash((self._text, self.start))

    # -- engines ------------------------------------------------------------------------------------
    @property
    def parser(self) -> str:
        """The Lark parser in use: ``"lalr"`` where the grammar is LALR(1), else ``"earley"``."""
        self._lark_parser()
        assert self._parser_used is not None
        return self._parser_used

    def _lark_parser(self) -> lark.Lark:
        if self._lark is None:
            with self._lock:
                if self._lark is None:
                    self._lark, self._parser_used = self._build_lark()
        return self._lark

    def _build_lark(self) -> tuple[lark.Lark, str]:
        choices: tuple[lark_engine.ParserKind, ...] = (
            ("lalr", "earley") if self.parser_choice == "auto" else (self.parser_choice,)
        )
        last: Exception | None = None
        for kind in choices:
            try:
                return lark_engine.build(self._text, kind, self.start, self._lexer_last), kind
            except lark.exceptions.GrammarError as exc:  # LALR conflicts land here too
                last = exc
            except Exception as exc:  # LarkError, OSError (imports), re.error, SyntaxError (bad escapes)
                last = exc
                break
        raise GrammarError(
            f"grammar {self.name} does not build in lark-python ({'/'.join(choices)}): {last}".splitlines()[0],
            self._error_diagnostics(),
            grammar=self.name,
        )

    def _error_diagnostics(self) -> list[Diagnostic]:
        return [d for d in check_grammar(self) if d.severity == "error"]

    def _llg(self) -> llg_engine.Matcher:
        if self._matcher is None:
            with self._lock:
                if self._matcher is None:
                    try:
                        self._matcher = llg_engine.Matcher(self._text)
                    except ValueError:
                        raise GrammarError(
                            f"grammar {self.name} is refused by llguidance (so by OpenAI)",
                            self._error_diagnostics(),
                            grammar=self.name,
                        ) from None
        return self._matcher

    # -- validation ---------------------------------------------------------------------------------
    def _encode(self, text: str) -> bytes:
        if not isinstance(text, str):
            raise InputError(f"expected str, got {type(text).__name__} (decode bytes as UTF-8 first)")
        data = text.encode("utf-8")
        if len(data) > self.max_bytes:
            raise InputError(
                f"input is {len(data):,} bytes, over the limit of {self.max_bytes:,} bytes "
                f"(raise Grammar.max_bytes to validate it)",
                offset=self.max_bytes,
            )
        return data

    def parse(self, text: str) -> lark.Tree:
        """Parse with lark-python; raises ``ValidationError`` with line, column and expected terminals."""
        self._encode(text)
        return lark_engine.parse(self._lark_parser(), text, self.name)

    def matches(self, text: str) -> bool:
        """Whether llguidance (the engine behind OpenAI's grammar tools) accepts exactly this text."""
        return self._llg().match(self._encode(text)).ok

    def llg_error(self, text: str) -> ValidationError | None:
        """llguidance's verdict as an error with the byte offset of the first refused byte, or None."""
        data = self._encode(text)
        result = self._llg().match(data)
        if result.ok:
            return None
        char_pos = len(data[: result.offset].decode("utf-8", errors="ignore"))
        line, column = lark_engine.line_column(text, char_pos)
        return ValidationError(
            result.message,
            text=text,
            offset=result.offset,
            line=line,
            column=column,
            expected=result.expected,
            engine="llguidance",
            grammar=self.name,
        )

    def validate(self, text: str) -> lark.Tree:
        """Require both engines to accept ``text``; return the Lark tree or raise ``ValidationError``."""
        error = self.llg_error(text)
        if error is not None:
            raise error
        return self.parse(text)

    # -- typed results ------------------------------------------------------------------------------
    def parse_typed(self, text: str) -> Any:
        """Validate with both engines and return the grammar's typed value (the tree if it has none)."""
        tree = self.validate(text)
        return self._typer(text, tree) if self._typer else tree

    @overload
    def parse_json(self, text: str) -> Any: ...
    @overload
    def parse_json(self, text: str, model: type[T]) -> T: ...
    def parse_json(self, text: str, model: Any = None) -> Any:
        """Validate a JSON text with both engines; return the Python value (or the grammar's typed value),
        or with ``model`` (a pydantic model or any type pydantic accepts) an instance of it."""
        tree = self.validate(text)
        value = json_value(text, tree, self.name)
        if model is not None:
            return pydantic_value(model, value, text, self.name)
        return self._typer(text, tree) if self._typer else value

    def with_transformer(self, transformer: lark.Transformer | Callable[[lark.Tree], T]) -> Grammar:
        """A copy of this grammar whose ``parse_typed`` returns ``transformer``'s result for the tree."""
        if isinstance(transformer, lark.visitors.Transformer):
            fn: Callable[[lark.Tree], Any] = transformer.transform
        else:
            fn = transformer
        # an exception raised inside the transformer becomes a located ValidationError
        return self._with_typer(lambda text, tree: run_transformer(fn, text, tree, self.name))

    def _with_typer(self, typer: Typer) -> Grammar:
        clone = type(self)(
            self._text,
            name=self.name,
            parser=self.parser_choice,
            start=self.start,
            description=self.description,
            examples=self.examples,
            max_tokens=self._max_tokens,
            written_as=self._written_as,
            max_bytes=self.max_bytes,
            listed_values=self.listed_values,
            _typer=typer,
        )
        clone._lark, clone._parser_used, clone._matcher = self._lark, self._parser_used, self._matcher
        return clone

    # -- authoring ----------------------------------------------------------------------------------
    def check(self, *, targets: Sequence[str] = ()) -> list[Diagnostic]:
        """Diagnostics from lark-python, llguidance and the lint for known traps, each with line:column.

        ``targets`` (``"openai"``, ``"vllm"``, ``"llamacpp"``) add what each deployment refuses or treats
        differently. Never raises for a broken grammar: the breakage is an ``error`` diagnostic.
        """
        return check_grammar(self, targets=tuple(targets))

    def to_gbnf(self) -> str:
        """This grammar as GBNF (llama.cpp server, SGLang/xgrammar); root rule ``root``.

        Raises ``GrammarError`` naming what GBNF cannot express. See ``constrain.engines.gbnf``.
        """
        from ..engines.gbnf import lark_to_gbnf  # loaded on first use: the converter is large

        return lark_to_gbnf(self._text, start=self.start, grammar=self.name)

    def sample(self, n: int = 10, *, seed: int | None = None, max_bytes: int = 400) -> list[str]:
        """``n`` random strings the grammar admits (llguidance random walk over bytes)."""
        rng = random.Random(seed)
        out: list[str] = []
        tries = 0
        while len(out) < n and tries < n * 50:
            tries += 1
            data = self._llg().sample(rng, max_bytes=max_bytes)
            if data is None:
                continue
            try:
                out.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                continue
        return out


class JSONGrammar(Grammar):
    """The packaged ``json`` grammar: ``validate`` judges with both engines, Lark through the lexer-friendly
    ``_json_syntax.SYNTAX_GRAMMAR``.

    The returned tree has no ``meta`` positions (tokens keep theirs); ``parse`` still parses the
    packaged grammar with positions.
    """

    def validate(self, text: str) -> lark.Tree:
        data = self._encode(text)
        if not self._llg().match(data).ok:
            error = self.llg_error(text)
            assert error is not None
            raise error
        try:
            return syntax_parser().parse(text)
        except lark.UnexpectedInput:
            return self.parse(text)  # the packaged grammar, with positions, locates the refusal


def available_grammars() -> list[GrammarInfo]:
    """The packaged grammars with a one-line description each."""
    return list(catalog().values())


def _read_grammar_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read grammar file: {exc.strerror}", source=str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"grammar file is not valid UTF-8 at byte {exc.start}", source=str(path), offset=exc.start) from None


@functools.lru_cache(maxsize=64)
def _load_packaged(name: str) -> Grammar:
    info = catalog().get(name)
    if info is None:
        packaged_text(name)  # raises with the list of known names
        raise AssertionError
    text = _compose.expand(packaged_text(name), packaged_text)
    # json: validation checks the syntax with a lexer-friendly copy on the Lark side
    grammar_class: type[Grammar] = JSONGrammar if name == "json" else Grammar
    grammar = grammar_class(text, name=name, parser=info.parser)
    typer = typer_for(name)
    return grammar if typer is None else grammar._with_typer(typer)


def load_grammar(name_or_path: str | Path) -> Grammar:
    """A packaged grammar by name (``"json"``, ``"sql/sqlite"``) or a ``.lark`` file by path."""
    if isinstance(name_or_path, str) and name_or_path in catalog():
        return _load_packaged(name_or_path)
    path = Path(name_or_path)
    if not (path.suffix == ".lark" or path.exists()):
        return _load_packaged(str(name_or_path))  # raises, listing the packaged names
    text = _compose.expand(_read_grammar_file(path), packaged_text)
    return Grammar(text, name=str(path), parser=read_header(text).parser)
