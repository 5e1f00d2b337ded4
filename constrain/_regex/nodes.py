"""The regular-expression AST both flavours parse into (``ecma``, ``python_re``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .charsets import Intervals

__all__ = ["CharNode", "SeqNode", "AltNode", "RepNode", "AnchorNode", "Node", "PatternError"]


class PatternError(ValueError):
    """A pattern uses a construct that cannot be translated exactly (or safely)."""


@dataclass(frozen=True)
class CharNode:
    """One character from ``chars``.

    ``literal``: written as one character, matched case-sensitively (``a``, ``\\.``), not as a class or
    a case-folded letter. It does not change the language (nodes compare equal without it); the GBNF
    printer spells runs of literal characters as one string."""

    chars: Intervals
    literal: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class SeqNode:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AltNode:
    options: tuple[Node, ...]


@dataclass(frozen=True)
class RepNode:
    body: Node
    lo: int
    hi: int | None  # None: unbounded


@dataclass(frozen=True)
class AnchorNode:
    start: bool  # True for ^, False for $


Node = Union[CharNode, SeqNode, AltNode, RepNode, AnchorNode]
