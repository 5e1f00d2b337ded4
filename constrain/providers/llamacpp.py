"""llama.cpp's server (``llama-server``): the grammar converted to GBNF, sent as ``grammar``."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import GrammarError
from .base import Constraint
from .chat import ChatCompletions

__all__ = ["LlamaCppServer", "gbnf_of"]


def gbnf_of(constraint: Constraint) -> str:
    """The constraint as GBNF (``Grammar.to_gbnf()``); a grammar the converter cannot express is an error."""
    to_gbnf = getattr(constraint.grammar, "to_gbnf", None)
    if to_gbnf is None:
        raise GrammarError("this build of constrain has no Lark-to-GBNF converter (Grammar.to_gbnf)")
    return str(to_gbnf())


class LlamaCppServer(ChatCompletions):
    name: ClassVar[str] = "llamacpp"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "http://127.0.0.1:8080/v1"
    api_key_env: ClassVar[str | None] = "LLAMA_API_KEY"

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        return {"grammar": gbnf_of(constraint)}
