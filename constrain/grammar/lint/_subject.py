"""What the checks need of a grammar: a protocol, so that the lint does not import ``Grammar`` back."""

from __future__ import annotations

from typing import Any, Protocol

import lark

from .._packaged import Example, ParserChoice
from .._typed import Typer


class CheckedGrammar(Protocol):
    """The part of ``constrain.grammar.Grammar`` the checks read and call."""

    name: str
    start: str
    parser_choice: ParserChoice
    examples: tuple[Example, ...]
    _typer: Typer | None  # None: the grammar has no typed value, so there are no typed checks to run

    @property
    def text(self) -> str: ...

    def parse(self, text: str) -> lark.Tree: ...

    def parse_typed(self, text: str) -> Any: ...

    def sample(self, n: int = 10, *, seed: int | None = None, max_bytes: int = 400) -> list[str]: ...
