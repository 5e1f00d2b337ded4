"""Chat Completions (``POST /chat/completions``): OpenAI's nested custom-tool shape, and the base that
OpenAI-compatible servers (vLLM, llama.cpp, SGLang) specialise with their own constraint field."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Sequence

from ..errors import ResponseFormatError
from .base import Completion, Constraint, Message, Usage
from ._http import HTTPProvider, HTTPRequest, items, messages_as_dicts

__all__ = ["ChatCompletions", "OpenAIChat"]


class ChatCompletions(HTTPProvider):
    """A Chat Completions server whose constraint travels in a top-level field (``constraint_fields``);
    the answer is the assistant message's content."""

    path: ClassVar[str] = "/chat/completions"
    max_tokens_field: ClassVar[str] = "max_tokens"

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, messages: Sequence[Message], constraint: Constraint, *, max_tokens: int | None, stream: bool) -> HTTPRequest:
        body: dict[str, Any] = {"messages": messages_as_dicts(messages), **self.constraint_fields(constraint)}
        if self.model is not None:
            body["model"] = self.model
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        return HTTPRequest(self.path, body, stream=False)

    def output_text(self, message: dict[str, Any], constraint: Constraint) -> str | None:
        content = message.get("content")
        return content if isinstance(content, str) else None

    def read(self, data: Any, constraint: Constraint, *, request_id: str | None, elapsed: float) -> Completion:
        choice = next(items(data, "choices"), None)
        message = choice.get("message") if choice is not None else None
        if not isinstance(message, dict):
            raise ResponseFormatError(f"{self.name}: response has no choices[].message", request_id=request_id, provider=self.name)
        finish: Literal["stop", "length"] = "length" if choice.get("finish_reason") == "length" else "stop"  # type: ignore[union-attr]
        text = self.output_text(message, constraint)
        if text is None:
            if finish != "length":
                raise ResponseFormatError(
                    f"{self.name}: the message carries no output for {constraint.name!r}", request_id=request_id, provider=self.name
                )
            text = ""
        usage = data.get("usage") or {}
        details = usage.get("completion_tokens_details") or {}
        return Completion(
            text=text,
            usage=Usage(
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                int(details.get("reasoning_tokens") or 0),
            ),
            finish_reason=finish,
            request_id=request_id,
            model=data.get("model") or self.model,
            elapsed=elapsed,
            raw=data,
        )


class OpenAIChat(ChatCompletions):
    """OpenAI Chat Completions with the nested custom-tool shape, forced by ``tool_choice``."""

    name: ClassVar[str] = "openai-chat"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    key_required_for_default_url: ClassVar[bool] = True
    default_model: ClassVar[str | None] = "gpt-5-mini"
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        grammar = {"syntax": constraint.syntax, "definition": constraint.definition}
        tool = {
            "name": constraint.name,
            "description": constraint.description,
            "format": {"type": "grammar", "grammar": grammar},
        }
        return {
            "tools": [{"type": "custom", "custom": tool}],
            "tool_choice": {"type": "custom", "custom": {"name": constraint.name}},
            "parallel_tool_calls": False,
        }

    def output_text(self, message: dict[str, Any], constraint: Constraint) -> str | None:
        for call in items(message, "tool_calls"):
            custom = call.get("custom")
            if call.get("type") == "custom" and isinstance(custom, dict) and custom.get("name") == constraint.name:
                value = custom.get("input")
                return value if isinstance(value, str) else None
        return None
