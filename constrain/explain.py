"""Kept importable for code written against it: the engines' verdicts live in ``constrain.grammar.explain``."""

from typing import Any

from .grammar import explain as _explain

__all__ = _explain.__all__


def __getattr__(name: str) -> Any:
    return getattr(_explain, name)
