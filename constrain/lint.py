"""Kept importable for code written against it: the grammar checks live in ``constrain.grammar.lint``."""

from typing import Any

from .grammar import lint as _lint

__all__ = _lint.__all__


def __getattr__(name: str) -> Any:
    return getattr(_lint, name)
