"""The output lines: one ``results.jsonl`` record per success, one ``failures.jsonl`` record per failure."""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..errors import ConstrainError, GenerationError
from ..generate import Result
from ..providers.base import Usage
from ._pipeline import Pipeline
from ._state import Item

__all__ = ["success", "failure", "error_dict", "round_entry", "rounds_of", "usage_of"]


def _usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens, "total_tokens": usage.total_tokens}


def round_entry(round_: int, error: BaseException | dict[str, Any], *, output: str | None = None, usage: Usage | None = None,
                feedback: Sequence[Any] = (), **extra: Any) -> dict[str, Any]:
    """One Batch API round of an item that did not succeed in it: what it wrote, why it was refused, and the
    messages (``feedback``, ``[role, content]`` pairs) that the next round's request appends."""
    entry: dict[str, Any] = {"round": round_, "output": output, "error": error_dict(error)}
    if usage is not None:
        entry["usage"] = _usage(usage)
    entry.update({k: v for k, v in extra.items() if v is not None})
    entry["feedback"] = [list(m) for m in feedback]
    return entry


def rounds_of(history: Sequence[dict[str, Any]], last: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rounds as an output record shows them (every round's output and error, without the feedback)."""
    return [{k: v for k, v in e.items() if k != "feedback"} for e in (*history, *([last] if last else []))]


def usage_of(history: Sequence[dict[str, Any]], usage: Usage | None = None) -> Usage:
    """The tokens of every round: the refused ones in ``history`` plus ``usage``."""
    total = usage or Usage()
    for entry in history:
        spent = entry.get("usage") or {}
        total = total + Usage(spent.get("input_tokens", 0), spent.get("output_tokens", 0), spent.get("reasoning_tokens", 0))
    return total


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))


def _common(item: Item) -> dict[str, Any]:
    common: dict[str, Any] = {"line": item.line}
    if item.metadata:
        common["metadata"] = item.metadata
    return common


def success(item: Item, pipeline: Pipeline, output: str, value: Any, attempts: int, usage: Usage, **extra: Any) -> str:
    return _line({"id": item.id, "output": output, "value": pipeline.to_json(value), "attempts": attempts,
                  "usage": _usage(usage), **{k: v for k, v in extra.items() if v is not None}, **_common(item)})


def from_result(item: Item, pipeline: Pipeline, result: Result[Any]) -> str:
    return success(item, pipeline, result.raw, result.value, len(result.attempts), result.usage,
                   model=result.model, request_id=result.request_id)


def error_dict(error: BaseException | dict[str, Any]) -> dict[str, Any]:
    """``{"type", "message", ...}``: the error's class name and first line, plus its own fields."""
    if isinstance(error, dict):
        return error
    data: dict[str, Any] = {}
    to_dict = getattr(error, "to_dict", None)
    if callable(to_dict):
        data.update(to_dict())
    for name in ("status", "request_id", "server_message"):
        value = getattr(error, name, None)
        if value is not None:
            data[name] = value
    data.update(type=type(error).__name__, message=str(error).splitlines()[0] if str(error) else type(error).__name__)
    return data


def failure(item: Item, error: BaseException | dict[str, Any], attempts: int = 0, usage: Usage | None = None, **extra: Any) -> str:
    record: dict[str, Any] = {"id": item.id, "error": error_dict(error), "attempts": attempts}
    if isinstance(error, GenerationError) and error.attempts:
        record["attempts"] = len(error.attempts)
        record["last_output"] = error.attempts[-1].raw
        total = Usage()
        for attempt in error.attempts:
            total = total + attempt.usage
        usage = total
    if usage is not None:
        record["usage"] = _usage(usage)
    record.update({k: v for k, v in extra.items() if v is not None})
    record.update(_common(item))
    return _line(record)


def is_error(value: Any) -> bool:
    return isinstance(value, ConstrainError)
