"""Chat Completions (``POST /chat/completions``): OpenAI's nested custom-tool shape, and the base that
OpenAI-compatible servers (vLLM, llama.cpp, SGLang) specialise with their own constraint field."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Sequence

from ..errors import ProviderConnectionError, ResponseFormatError
from .base import Completion, Constraint, DeltaCallback, Message, Usage
from ._http import CheckedStream, HTTPProvider, HTTPRequest, StreamReader, items, messages_as_dicts

__all__ = ["ChatCompletions", "OpenAIChat"]


def _usage(data: dict[str, Any]) -> Usage:
    found = data.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    details = usage.get("completion_tokens_details") or {}
    return Usage(
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(details.get("reasoning_tokens") or 0),
    )


def custom_tool_fields(constraint: Constraint) -> dict[str, Any]:
    """The request fields that send ``constraint`` as OpenAI's nested Chat Completions custom tool, forced."""
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


class ChatCompletions(HTTPProvider):
    """A Chat Completions server whose constraint travels in a top-level field (``constraint_fields``);
    the answer is the assistant message's content. With ``on_delta`` the answer is streamed
    (``stream: true`` with ``stream_options.include_usage``) and each content delta is checked against
    the grammar as it arrives."""

    path: ClassVar[str] = "/chat/completions"
    max_tokens_field: ClassVar[str] = "max_tokens"
    supports_streaming: ClassVar[bool] = True

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, messages: Sequence[Message], constraint: Constraint, *, max_tokens: int | None, stream: bool) -> HTTPRequest:
        body: dict[str, Any] = {"messages": messages_as_dicts(messages), **self.constraint_fields(constraint)}
        if self.model is not None:
            body["model"] = self.model
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return HTTPRequest(self.path, body, stream=stream)

    def stream_reader(self, constraint: Constraint, on_delta: DeltaCallback | None) -> StreamReader:
        return ChatStream(self, constraint, on_delta)

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
        return Completion(
            text=text,
            usage=_usage(data),
            finish_reason=finish,
            request_id=request_id,
            model=data.get("model") or self.model,
            elapsed=elapsed,
            raw=data,
        )


class ChatStream(CheckedStream):
    """Reads Chat Completions chunks: ``choices[].delta.content`` pieces, the ``finish_reason``, and the
    usage chunk (``choices: []``) that ``include_usage`` adds before ``data: [DONE]``."""

    def __init__(self, provider: ChatCompletions, constraint: Constraint, on_delta: DeltaCallback | None) -> None:
        super().__init__(provider, constraint, on_delta)
        self.finish_reason: str | None = None
        self.usage_chunk: dict[str, Any] = {}
        self.model: str | None = None

    def on_event(self, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise ResponseFormatError(f"{self.provider.name}: a stream chunk is not a JSON object", provider=self.provider.name)
        error = data.get("error") if isinstance(data.get("error"), dict) else (data if data.get("object") == "error" else None)
        if error is not None:
            raise self.stream_error(error.get("code") or error.get("type"), str(error.get("message") or "stream error"))
        self.model = data.get("model") or self.model
        if isinstance(data.get("usage"), dict):
            self.usage_chunk = data
        for choice in items(data, "choices"):
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str) and content:
                self.text_delta(content)
            if choice.get("finish_reason") is not None:
                self.finish_reason = str(choice["finish_reason"])

    def finish(self, *, request_id: str | None, elapsed: float) -> Completion:
        if self.finish_reason is None:
            raise ProviderConnectionError(
                f"{self.provider.name}: the stream ended before a finish_reason", request_id=request_id, provider=self.provider.name
            )
        return Completion(
            text="".join(self.parts),
            usage=_usage(self.usage_chunk),
            finish_reason="length" if self.finish_reason == "length" else "stop",
            request_id=request_id,
            model=self.model or self.provider.model,
            elapsed=elapsed,
            raw={"model": self.model, "finish_reason": self.finish_reason, "usage": self.usage_chunk.get("usage")},
        )


class OpenAIChat(ChatCompletions):
    """OpenAI Chat Completions with the nested custom-tool shape, forced by ``tool_choice``.

    Not streamed: the chunk form of a custom tool call's input is not part of the published wire format
    (``on_delta`` receives the whole answer once)."""

    name: ClassVar[str] = "openai-chat"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    key_required_for_default_url: ClassVar[bool] = True
    default_model: ClassVar[str | None] = "gpt-5-mini"
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    supports_streaming: ClassVar[bool] = False
    tool_descriptions: ClassVar[bool] = True

    def constraint_fields(self, constraint: Constraint) -> dict[str, Any]:
        return custom_tool_fields(constraint)

    def output_text(self, message: dict[str, Any], constraint: Constraint) -> str | None:
        for call in items(message, "tool_calls"):
            custom = call.get("custom")
            if call.get("type") == "custom" and isinstance(custom, dict) and custom.get("name") == constraint.name:
                value = custom.get("input")
                return value if isinstance(value, str) else None
        return None
