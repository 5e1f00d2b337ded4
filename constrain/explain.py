"""Kept importable for code written against it: the engines' verdicts live in ``constrain.grammar.explain``."""

from .grammar.explain import Explanation, Verdict, explain, lark_verdict

__all__ = ["Explanation", "Verdict", "explain", "lark_verdict"]
