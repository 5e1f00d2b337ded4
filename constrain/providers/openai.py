"""OpenAI Responses API: the grammar goes out as a forced custom tool; the answer is the tool call's input."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping, Sequence

from ..errors import InputError, ProviderConnectionError, ResponseFormatError
from .base import Completion, Constraint, DeltaCallback, Message, Usage
from ._http import CheckedStream, HTTPProvider, HTTPRequest, StreamReader, items, messages_as_dicts

__all__ = ["OpenAI", "AzureOpenAI"]

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


def custom_tool(constraint: Constraint) -> dict[str, Any]:
    return {
        "type": "custom",
        "name": constraint.name,
        "description": constraint.description,
        "format": {"type": "grammar", "syntax": constraint.syntax, "definition": constraint.definition},
    }


def tool_fields(constraint: Constraint) -> dict[str, Any]:
    """The request fields that send ``constraint`` as a forced custom tool (custom tools are never parallel)."""
    return {
        "tools": [custom_tool(constraint)],
        "tool_choice": {"type": "custom", "name": constraint.name},
        "parallel_tool_calls": False,
    }


def _usage(data: Any) -> Usage:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("output_tokens_details") or {}
    return Usage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0,
    )


def _truncated(response: Mapping[str, Any]) -> bool:
    details = response.get("incomplete_details") or {}
    return response.get("status") == "incomplete" and (
        not isinstance(details, dict) or details.get("reason") in (None, "max_output_tokens")
    )


class OpenAI(HTTPProvider):
    """OpenAI's Responses API (``POST /responses``) with a grammar custom tool (Lark or regex syntax).

    The key comes from ``api_key=`` or ``OPENAI_API_KEY``; ``base_url`` points it at any server that
    speaks the same format (a proxy, ``constrain serve``). ``reasoning_effort`` is sent as
    ``reasoning.effort``. With ``on_delta`` the response is streamed and the growing text is checked
    against the grammar as it arrives.
    """

    name: ClassVar[str] = "openai"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    key_required_for_default_url: ClassVar[bool] = True
    default_model: ClassVar[str | None] = "gpt-5-mini"
    supports_streaming: ClassVar[bool] = True
    tool_descriptions: ClassVar[bool] = True
    path: ClassVar[str] = "/responses"
    seed_field: ClassVar[str | None] = None  # the Responses API takes a temperature but no seed

    def __init__(self, model: str | None = None, *, reasoning_effort: Effort | None = None, store: bool = False, **options: Any) -> None:
        super().__init__(model, **options)
        self.reasoning_effort = reasoning_effort
        self.store = store

    def build(self, messages: Sequence[Message], constraint: Constraint, *, max_tokens: int | None, stream: bool) -> HTTPRequest:
        body: dict[str, Any] = {
            "model": self.model,
            "input": messages_as_dicts(messages),
            **tool_fields(constraint),
            "store": self.store,
        }
        if max_tokens is not None:
            body["max_output_tokens"] = max_tokens
        if self.reasoning_effort is not None:
            body["reasoning"] = {"effort": self.reasoning_effort}
        if stream:
            body["stream"] = True
        return HTTPRequest(self.path, body, stream)

    def read(self, data: Any, constraint: Constraint, *, request_id: str | None, elapsed: float) -> Completion:
        if not isinstance(data, dict) or not isinstance(data.get("output"), list):
            raise ResponseFormatError(f"{self.name}: response has no `output` list", request_id=request_id, provider=self.name)
        calls = [i for i in items(data, "output") if i.get("type") == "custom_tool_call" and i.get("name") == constraint.name]
        truncated = _truncated(data)
        if not calls and not truncated:
            kinds = ", ".join(str(i.get("type")) for i in items(data, "output")) or "none"
            raise ResponseFormatError(
                f"{self.name}: no custom_tool_call named {constraint.name!r} in the response (output item types: {kinds})",
                request_id=request_id,
                provider=self.name,
            )
        text = calls[0].get("input", "") if calls else ""
        if not isinstance(text, str):
            raise ResponseFormatError(f"{self.name}: custom_tool_call.input is not a string", request_id=request_id, provider=self.name)
        return Completion(
            text=text,
            usage=_usage(data),
            finish_reason="length" if truncated else "stop",
            request_id=request_id,
            model=data.get("model") or self.model,
            elapsed=elapsed,
            raw=data,
        )

    def stream_reader(self, constraint: Constraint, on_delta: DeltaCallback | None) -> StreamReader:
        return ResponsesStream(self, constraint, on_delta)


class ResponsesStream(CheckedStream):
    """Reads Responses SSE: the tool call's input deltas, each checked against the grammar on arrival."""

    def __init__(self, provider: OpenAI, constraint: Constraint, on_delta: DeltaCallback | None) -> None:
        super().__init__(provider, constraint, on_delta)
        self.item_id: str | None = None
        self.final_input: str | None = None
        self.response: dict[str, Any] | None = None

    def on_event(self, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise ResponseFormatError(f"{self.provider.name}: a stream event is not a JSON object", provider=self.provider.name)
        if event == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") == "custom_tool_call" and item.get("name") == self.constraint.name:
                self.item_id = item.get("id")
        elif event == "response.custom_tool_call_input.delta":
            if self.item_id is None or data.get("item_id") in (None, self.item_id):
                self.text_delta(str(data.get("delta", "")))
        elif event == "response.custom_tool_call_input.done":
            if self.item_id is None or data.get("item_id") in (None, self.item_id):
                self.final_input = data.get("input")
        elif event in ("response.completed", "response.incomplete"):
            self.response = data.get("response") if isinstance(data.get("response"), dict) else {}
        elif event == "response.failed":
            response = data.get("response") or {}
            error = response.get("error") or {}
            raise self.stream_error(error.get("code"), error.get("message") or "response failed")
        elif event == "error":
            raise self.stream_error(data.get("code"), data.get("message") or "stream error")

    def finish(self, *, request_id: str | None, elapsed: float) -> Completion:
        if self.response is None:
            raise ProviderConnectionError(
                f"{self.provider.name}: the stream ended before response.completed", request_id=request_id, provider=self.provider.name
            )
        streamed = "".join(self.parts)
        if self.final_input is not None and self.final_input != streamed:
            raise ResponseFormatError(
                f"{self.provider.name}: custom_tool_call_input.done disagrees with the streamed deltas",
                request_id=request_id,
                provider=self.provider.name,
            )
        return Completion(
            text=streamed,
            usage=_usage(self.response),
            finish_reason="length" if _truncated(self.response) else "stop",
            request_id=request_id,
            model=self.response.get("model") or self.provider.model,
            elapsed=elapsed,
            raw=self.response,
        )


class AzureOpenAI(OpenAI):
    """Azure OpenAI's v1 Responses endpoint: ``api-key`` header and an ``api-version`` query parameter."""

    name: ClassVar[str] = "azure"  # type: ignore[misc]
    default_base_url: ClassVar[str] = "https://RESOURCE.openai.azure.com/openai/v1"
    base_url_env: ClassVar[str | None] = "AZURE_OPENAI_BASE_URL"
    api_key_env: ClassVar[str | None] = "AZURE_OPENAI_API_KEY"
    auth_header: ClassVar[str] = "api-key"
    auth_prefix: ClassVar[str] = ""
    default_query: ClassVar[Mapping[str, str]] = {"api-version": "preview"}
    default_model: ClassVar[str | None] = None

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        if self.base_url == self.default_base_url:
            raise InputError("azure: set AZURE_OPENAI_BASE_URL or pass base_url= (https://NAME.openai.azure.com/openai/v1)")

