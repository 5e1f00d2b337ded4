"""The packaged grammars: where they live, what each one is, and what a grammar's header says.

In a wheel they sit at ``constrain/grammars``; in a source checkout at the repo's top-level ``grammars/``.
Each ``.lark`` file opens with ``// <one-line description>``; an optional ``// parser: lalr|earley``
line pins the Lark parser. What the model is told about the language comes from the same comment block:
``// description: ...`` lines (joined with a space), ``// example: ...`` lines (one output each; ``\n``
inside stands for a newline, ``\\`` for a backslash), each optionally preceded by a ``// request: ...``
line (the request it answers: the pair is shown to the model as a worked example), and
``// max-tokens: N`` (the longest output a right answer needs, the bound on every attempt).
``// lexer-last: A B ...`` names terminals lark's lexer tries after every other one, in that order: what
``A.-1``, ``B.-2`` say in lark, which llguidance refuses. Names need it once they are unbounded
(``/[a-z_][a-z0-9_]*/``): lark tries the widest terminal first and would read ``NOT x`` as the name
``NO``; bounded names (``{0,63}``) cost llguidance a new lexer state per character, which over a large
vocabulary took a mask step past its 50,000-item limit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from ..errors import GrammarError

ParserChoice = Literal["auto", "lalr", "earley"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # constrain/


@functools.lru_cache(maxsize=1)
def grammars_dir() -> Path:
    """The directory of the packaged ``.lark`` files."""
    for candidate in (_PACKAGE_DIR / "grammars", _PACKAGE_DIR.parent / "grammars"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("packaged grammars directory not found")


@dataclass(frozen=True)
class GrammarInfo:
    """A packaged grammar: its name, its summary line, its file and the Lark parser it pins."""

    name: str
    description: str
    path: Path
    parser: ParserChoice


class Example(NamedTuple):
    """An output in a grammar's language, with the request it answers when there is one."""

    output: str
    request: str | None = None


@dataclass(frozen=True)
class Header:
    """What the leading ``//`` comment block of a grammar says (see the module docs)."""

    summary: str = ""
    parser: ParserChoice = "auto"
    guide: str = ""  # the ``// description:`` lines
    examples: tuple[Example, ...] = ()
    example_lines: tuple[int, ...] = ()  # 1-based line of each example, for diagnostics
    max_tokens: int | None = None
    written_as: str | None = None  # ``// written-as: NAME``: the packaged grammar a model writes values in
    lexer_last: tuple[str, ...] = ()  # ``// lexer-last: A B``: terminals lark tries last, in this order


_KEYS = ("parser:", "include:", "description:", "example:", "request:", "max-tokens:", "written-as:", "lexer-last:")


def _unescape_example(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in "n\\":
            out.append("\n" if body[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def read_header(text: str) -> Header:
    """The leading ``//`` comment block of a grammar text."""
    summary, parser, guide, max_tokens = "", "auto", [], None
    written_as: str | None = None
    lexer_last: tuple[str, ...] = ()
    examples: list[Example] = []
    lines: list[int] = []
    request: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("//"):
            break
        body = line[2:].strip()
        value = body.partition(":")[2].strip()
        if body.startswith("parser:"):
            parser = value
        elif body.startswith("description:"):
            guide.append(value)
        elif body.startswith("request:"):
            request = value
        elif body.startswith("example:"):
            examples.append(Example(_unescape_example(value), request))
            lines.append(number)
            request = None
        elif body.startswith("written-as:"):
            written_as = value or None
        elif body.startswith("lexer-last:"):
            lexer_last = tuple(value.split())
        elif body.startswith("max-tokens:"):
            max_tokens = int(value) if value.isdigit() and int(value) > 0 else None
        elif not summary and not body.startswith(_KEYS):
            summary = body
    if parser not in ("auto", "lalr", "earley"):
        parser = "auto"
    return Header(summary, parser, " ".join(guide), tuple(examples), tuple(lines), max_tokens,  # type: ignore[arg-type]
                  written_as, lexer_last)


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, GrammarInfo]:
    """Every packaged grammar by name (``"json"``, ``"sql/sqlite"``); fragments (``_name``) are not grammars."""
    root = grammars_dir()
    out: dict[str, GrammarInfo] = {}
    for path in sorted(root.rglob("*.lark")):
        rel = path.relative_to(root).with_suffix("").as_posix()
        if any(part.startswith("_") for part in rel.split("/")):
            continue  # fragments shared by other grammars, not grammars of their own
        header = read_header(path.read_text(encoding="utf-8"))
        out[rel] = GrammarInfo(rel, header.summary, path, header.parser)
    return out


def packaged_text(name: str) -> str:
    """The text of the packaged grammar ``name`` as shipped (its ``// include:`` lines unresolved)."""
    path = grammars_dir() / f"{name}.lark"
    if not path.is_file():
        known = ", ".join(sorted(catalog()))
        raise GrammarError(f"no packaged grammar named {name!r}; packaged grammars: {known}")
    return path.read_text(encoding="utf-8")
