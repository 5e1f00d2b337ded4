"""SGLang's OpenAI-compatible server: GBNF in ``ebnf`` (xgrammar backend), or a regex in ``regex``."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Constraint
from .chat import ChatCompletions
from .llamacpp import gbnf_of

__all__ = ["SGLang"]


class SGLang(ChatCompletions):
    name: ClassVar[str] = "sglang"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "http://127.0.0.1:30000/v1"
    api_key_env: ClassVar[str | None] = "SGLANG_API_KEY"

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        if constraint.syntax == "regex":
            return {"regex": constraint.definition}
        return {"ebnf": gbnf_of(constraint)}
