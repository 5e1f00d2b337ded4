"""Composition of packaged grammars without copy-paste.

Two forms of include line, resolved recursively before a grammar is built:

``// include: NAME``
    Splices the packaged grammar NAME in; any rule or terminal the including file defines again
    replaces the included definition of the same name. Dialects stay small override files, and the
    text sent to a provider is one self-contained grammar.

``// include: NAME as PREFIX``
    Embeds NAME in its own namespace, the way Lark's ``%import`` names things: rules become
    ``PREFIX__rule`` (``_rule`` becomes ``_PREFIX__rule``), terminals ``PREFIX__TERM`` with the prefix
    upper-cased, aliases likewise, so ``lark.visitors.merge_transformers(base, PREFIX=transformer)``
    routes the embedded subtrees to the embedded grammar's own transformer. Only the definitions the
    including grammar reaches are kept (so the included ``start`` goes unless ``PREFIX__start`` is
    used) and the text sent stays small; the included ``%ignore`` lines are dropped, as Lark's
    ``%import`` drops them (embed grammars with explicit whitespace); names taken from
    ``%import common`` keep their names and the import lines are de-duplicated.

Renaming works on tokens of the grammar language: names inside string literals, regular
expressions and comments are never touched.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import GrammarError
from ._packaged import read_header
from ._tokens import Token, tokenize

__all__ = ["expand", "mangle_name"]

Loader = Callable[[str], str]

_INCLUDE = re.compile(r"^//\s*include:\s*(?P<name>[\w/.-]+)(?:\s+as\s+(?P<prefix>\S+))?\s*$")
_PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^//\s*(parser:|include:|lexer-last:)")
_LEXER_LAST = re.compile(r"^//\s*lexer-last:")


def mangle_name(name: str, prefix: str) -> str:
    """The name Lark's ``%import`` would give ``name`` inside namespace ``prefix``."""
    is_terminal = name.lstrip("_")[:1].isupper()
    ns = prefix.upper() if is_terminal else prefix
    return f"_{ns}__{name[1:]}" if name.startswith("_") else f"{ns}__{name}"


@dataclass
class _Block:
    """A top-level statement (definition or directive) or a run of comments/blank lines."""

    kind: str  # "definition" | "directive" | "trivia"
    tokens: list[Token]
    name: str | None = None  # defined rule/terminal name, or the directive ("%import", "%ignore")
    embedded: bool = field(default=False)

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    def body_names(self) -> set[str]:
        """Rule and terminal names this block refers to (not its own name, not aliases)."""
        names: set[str] = set()
        significant = [t for t in self.tokens if t.kind not in ("space", "newline", "comment")]
        if self.kind == "definition":
            colon = next(i for i, t in enumerate(significant) if t.text == ":")
            significant = significant[colon + 1 :]
        elif self.name != "%ignore":
            return names
        previous = ""
        for token in significant:
            if token.kind == "name" and previous != "->":
                names.add(token.text)
            previous = token.text
        return names


def _split_blocks(text: str) -> list[_Block]:
    lines: list[list[Token]] = [[]]
    for token in tokenize(text):
        lines[-1].append(token)
        if token.kind == "newline":
            lines.append([])
    blocks: list[_Block] = []
    for line in lines:
        if not line:
            continue
        first = next((t for t in line if t.kind not in ("space", "newline")), None)
        indented = line[0].kind == "space"
        if first is None or first.kind == "comment":
            blocks.append(_Block("trivia", line))
        elif (first.text == "|" or indented) and blocks and blocks[-1].kind == "definition":
            blocks[-1].tokens.extend(line)
        elif (first.text == "|" or indented) and _continues_after_trivia(blocks):
            _absorb_trivia_into_definition(blocks)
            blocks[-1].tokens.extend(line)
        elif first.kind == "directive":
            blocks.append(_Block("directive", line, name=first.text))
        else:
            name = next((t.text for t in line if t.kind == "name"), None)
            if name is None or not any(t.text == ":" for t in line):
                where = _line_of(text, first.offset)
                raise GrammarError(f"grammar line {where}: cannot read statement {first.text!r}")
            blocks.append(_Block("definition", line, name=name))
    return blocks


def _continues_after_trivia(blocks: list[_Block]) -> bool:
    i = len(blocks) - 1
    while i >= 0 and blocks[i].kind == "trivia":
        i -= 1
    return i >= 0 and i < len(blocks) - 1 and blocks[i].kind == "definition"


def _absorb_trivia_into_definition(blocks: list[_Block]) -> None:
    trailing: list[Token] = []
    while blocks[-1].kind == "trivia":
        trailing = blocks.pop().tokens + trailing
    blocks[-1].tokens.extend(trailing)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _common_imports(block: _Block) -> list[str] | None:
    """For ``%import common.X [-> Y]`` or ``%import common (X, Y)``: the local names. Else None."""
    significant = [t.text for t in block.tokens if t.kind not in ("space", "newline", "comment")]
    if block.name != "%import" or len(significant) < 3 or significant[1] != "common":
        return None
    rest = significant[2:]
    if rest[0] == "." and len(rest) >= 2:
        return [rest[-1]] if len(rest) >= 4 and rest[2] == "->" else [rest[1]]
    return [t for t in rest if t not in ("(", ")", ",")]


def _rename(block: _Block, rename: Callable[[str], str]) -> _Block:
    tokens = [dataclasses.replace(t, text=rename(t.text)) if t.kind == "name" else t for t in block.tokens]
    name = rename(block.name) if block.kind == "definition" and block.name else block.name
    return _Block(block.kind, tokens, name=name, embedded=block.embedded)


@dataclass(frozen=True)
class _Include:
    name: str
    prefix: str | None
    line: int


def _read_includes(text: str) -> tuple[list[_Include], str]:
    includes: list[_Include] = []
    kept: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        m = _INCLUDE.match(line.strip())
        if not m:
            kept.append(line)
            continue
        prefix = m.group("prefix")
        if prefix is not None and not _PREFIX.match(prefix):
            raise GrammarError(
                f"grammar line {number}: include prefix {prefix!r} must be lower-case letters, digits "
                f"and '_', starting with a letter"
            )
        includes.append(_Include(m.group("name"), prefix, number))
    return includes, "".join(kept)


def expand(text: str, load: Loader, *, _seen: tuple[str, ...] = ()) -> str:
    """Resolve ``// include:`` lines recursively into one self-contained grammar text."""
    includes, own_text = _read_includes(text)
    if not includes:
        return text
    prefixes = [inc.prefix for inc in includes if inc.prefix]
    duplicates = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if duplicates:
        raise GrammarError(f"include prefix used twice: {', '.join(duplicates)}")
    own = _split_blocks(own_text)
    header_end = 0
    while header_end < len(own) and own[header_end].kind == "trivia" and own[header_end].text.strip():
        header_end += 1
    header, own_body = own[:header_end], own[header_end:]

    included: list[_Block] = []
    lexer_last = list(read_header(own_text).lexer_last)
    for inc in includes:
        if inc.name in _seen:
            raise GrammarError(f"grammar include cycle: {' -> '.join(_seen + (inc.name,))}")
        try:
            source = load(inc.name)
        except GrammarError as exc:
            raise GrammarError(f"grammar line {inc.line}: cannot include {inc.name!r}: {exc}") from None
        expanded = expand(source, load, _seen=_seen + (inc.name,))
        blocks = _split_blocks(expanded)
        names = read_header(expanded).lexer_last
        lexer_last += [mangle_name(n, inc.prefix) for n in names] if inc.prefix else names
        included.extend(_embed(blocks, inc.prefix) if inc.prefix else _without_header(blocks))
    if lexer_last:  # what an included grammar asks of lark's lexer holds in the whole (see _packaged)
        header = [b for b in header if not _LEXER_LAST.match(b.text.strip())]
        header += _split_blocks(f"// lexer-last: {' '.join(dict.fromkeys(lexer_last))}\n")

    overridden = {b.name for b in own_body if b.kind == "definition"}
    merged = [b for b in included if not (b.kind == "definition" and b.name in overridden)]
    blocks = _dedup_common_imports(header + merged + own_body)
    blocks = _drop_unreached_embedded(blocks)
    return "".join(_with_newline(b.text) for b in blocks)


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _without_header(blocks: list[_Block]) -> list[_Block]:
    return [b for b in blocks if not (b.kind == "trivia" and _HEADER.match(b.text.strip()))]


def _embed(blocks: list[_Block], prefix: str) -> list[_Block]:
    keep: set[str] = set()
    for block in blocks:
        keep.update(_common_imports(block) or ())

    def rename(name: str) -> str:
        return name if name in keep else mangle_name(name, prefix)

    out: list[_Block] = []
    for block in blocks:
        if block.kind == "trivia":
            continue  # comments of an embedded grammar would only repeat its header
        if block.kind == "directive" and block.name == "%ignore":
            continue
        if block.kind == "directive":
            out.append(block)
            continue
        renamed = _rename(block, rename)
        renamed.embedded = True
        out.append(renamed)
    return out


def _dedup_common_imports(blocks: list[_Block]) -> list[_Block]:
    seen: set[str] = set()
    out: list[_Block] = []
    for block in blocks:
        names = _common_imports(block)
        if names is None:
            out.append(block)
            continue
        key = block.text.strip()
        if key in seen:
            continue
        seen.add(key)
        out.append(block)
    return out


def _drop_unreached_embedded(blocks: list[_Block]) -> list[_Block]:
    definitions = {b.name: b for b in blocks if b.kind == "definition"}
    reached: set[str] = set()
    frontier = _names(b for b in blocks if not b.embedded)
    while frontier:
        name = frontier.pop()
        if name in reached:
            continue
        reached.add(name)
        block = definitions.get(name)
        if block is not None:
            frontier |= block.body_names() - reached
    return [b for b in blocks if not b.embedded or b.name in reached]


def _names(blocks: Iterable[_Block]) -> set[str]:
    out: set[str] = set()
    for block in blocks:
        out |= block.body_names()
    return out
