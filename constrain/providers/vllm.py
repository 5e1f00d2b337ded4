"""vLLM's OpenAI-compatible server: the Lark grammar in ``structured_outputs.grammar``.

Never the removed ``guided_grammar`` field: newer servers ignore it silently and answer unconstrained.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Constraint
from .chat import ChatCompletions

__all__ = ["VLLM"]


class VLLM(ChatCompletions):
    name: ClassVar[str] = "vllm"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "http://127.0.0.1:8000/v1"
    api_key_env: ClassVar[str | None] = "VLLM_API_KEY"

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        if constraint.syntax == "regex":
            return {"structured_outputs": {"regex": constraint.definition}}
        return {"structured_outputs": {"grammar": constraint.definition}}
