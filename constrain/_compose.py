"""Composition of packaged grammars without copy-paste.

A grammar file may say ``// include: NAME`` (NAME is a packaged grammar such as ``sql/_base``).
The included text is spliced in, and any rule or terminal the including file defines again replaces
the included definition of the same name: per-dialect differences stay small data files, and the
text sent to a provider is one self-contained grammar.
"""

from __future__ import annotations

import re
from typing import Callable

from .errors import GrammarError

_INCLUDE = re.compile(r"^//\s*include:\s*(?P<name>[\w/.-]+)\s*$")
_DEFINITION = re.compile(r"^(?P<mods>[?!_]*)(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\.-?\d+)?\s*:")
_HEADER = re.compile(r"^//\s*(parser:|include:)")

Loader = Callable[[str], str]


def expand(text: str, load: Loader, *, _seen: tuple[str, ...] = ()) -> str:
    """Resolve ``// include:`` lines recursively; later definitions override earlier ones."""
    lines = text.splitlines()
    includes = [m.group("name") for line in lines if (m := _INCLUDE.match(line.strip()))]
    if not includes:
        return text
    own = "\n".join(line for line in lines if not _INCLUDE.match(line.strip()))
    base_parts = []
    for name in includes:
        if name in _seen:
            raise GrammarError(f"grammar include cycle: {' -> '.join(_seen + (name,))}")
        base_parts.append(expand(load(name), load, _seen=_seen + (name,)))
    own_blocks = split_definitions(own)
    overridden = {name for name, _ in own_blocks if name}
    merged: list[str] = []
    for base in base_parts:
        for name, block in split_definitions(base):
            if name and name in overridden:
                continue
            if not name and _HEADER.match(block.strip()):
                continue
            merged.append(block)
    merged.extend(block for _, block in own_blocks)
    return "\n".join(b.rstrip("\n") for b in merged if b.strip()) + "\n"


def split_definitions(text: str) -> list[tuple[str | None, str]]:
    """Split grammar text into top-level blocks: (rule/terminal name or None, block text)."""
    blocks: list[tuple[str | None, list[str]]] = []
    for line in text.splitlines():
        m = _DEFINITION.match(line)
        if m:
            blocks.append((m.group("name"), [line]))
        elif line[:1] in (" ", "\t", "|") or (line.strip().startswith("|") and blocks and blocks[-1][0]):
            if blocks:
                blocks[-1][1].append(line)
            else:
                blocks.append((None, [line]))
        else:
            blocks.append((None, [line]))
    return [(name, "\n".join(body)) for name, body in blocks]
