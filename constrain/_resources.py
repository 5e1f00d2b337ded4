"""Where the packaged grammars live, and what each one is.

In a wheel they sit at ``constrain/grammars``; in a source checkout at the repo's top-level ``grammars/``.
Each ``.lark`` file opens with ``// <one-line description>``; an optional ``// parser: lalr|earley``
line pins the Lark parser.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ParserChoice = Literal["auto", "lalr", "earley"]

_PACKAGE_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def grammars_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "grammars", _PACKAGE_DIR.parent / "grammars"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("packaged grammars directory not found")


def data_dir() -> Path:
    """Package data other than grammars (databases, licence notices)."""
    return _PACKAGE_DIR / "data"


@dataclass(frozen=True)
class GrammarInfo:
    name: str
    description: str
    path: Path
    parser: ParserChoice


def read_header(text: str) -> tuple[str, ParserChoice]:
    """The leading ``//`` comment block: (description, parser choice)."""
    description, parser = "", "auto"
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("//"):
            break
        body = line[2:].strip()
        if body.startswith("parser:"):
            parser = body.split(":", 1)[1].strip()
        elif not description and not body.startswith("include:"):
            description = body
    if parser not in ("auto", "lalr", "earley"):
        parser = "auto"
    return description, parser  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, GrammarInfo]:
    root = grammars_dir()
    out: dict[str, GrammarInfo] = {}
    for path in sorted(root.rglob("*.lark")):
        rel = path.relative_to(root).with_suffix("").as_posix()
        if any(part.startswith("_") for part in rel.split("/")):
            continue  # fragments shared by other grammars, not grammars of their own
        description, parser = read_header(path.read_text(encoding="utf-8"))
        out[rel] = GrammarInfo(rel, description, path, parser)
    return out
