"""What the model is told about a JSON Schema target, and how long a conforming answer may be.

``describe(schema)`` is a compact field list for the prompt (and a tool's description): each field's
name, type, allowed values, ranges, format, description and whether it is required, nested objects
indented under their field. ``token_bound(schema)`` is the longest answer worth waiting for, in model
tokens (digits count one token each, as in Qwen's and Llama 3's tokenizers); an attempt that runs past
it is cut (``TruncatedError``) instead of spending the provider's whole default limit.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["describe", "listed_values", "token_bound"]

_MAX_DEPTH = 6
_MAX_FIELDS = 200  # fields listed in a description; a larger schema is cut with a note
_FREE_STRING_TOKENS = 96  # a string with no maxLength, enum or format
_FORMAT_TOKENS = {"date": 8, "time": 10, "date-time": 16, "uuid": 26, "email": 24, "ipv4": 12, "ipv6": 30, "uri": 48}
_DEFAULT_ITEMS = 8  # items assumed for an array with no maxItems
_MAX_BOUND = 2048


def _resolve(node: Any, root: Any, seen: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
    """Follow local ``$ref``s (``#/$defs/X``, ``#/definitions/X``); ``seen`` stops recursion."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        ref = node["$ref"]
        if ref in seen:
            return {}, seen
        seen = seen + (ref,)
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            return {}, seen
        if not isinstance(target, dict):  # a boolean schema
            return target, seen
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra} if extra else target
    return node, seen


def _branches(node: dict[str, Any]) -> list[Any]:
    return list(node.get("anyOf") or node.get("oneOf") or [])


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _type_text(node: Any, root: Any, seen: tuple[str, ...]) -> str:
    """One line's worth of type: ``integer 1..65535``, ``one of "dev", "prod"``, ``array of string``."""
    node, seen = _resolve(node, root, seen)
    if node is True or node == {}:
        return "any JSON value"
    if not isinstance(node, dict):
        return "nothing (no value is allowed)"
    if "const" in node:
        return f"exactly {_literal(node['const'])}"
    if "enum" in node:
        return "one of " + ", ".join(_literal(v) for v in node["enum"][:40]) + (" ..." if len(node["enum"]) > 40 else "")
    branches = _branches(node)
    if branches:
        kinds = [_type_text(b, root, seen) for b in branches]
        nullable = "null" in kinds
        kinds = [k for k in kinds if k != "null"]
        text = " or ".join(dict.fromkeys(kinds)) or "null"
        return text + (" or null" if nullable and kinds else "")
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    parts = [str(kind) if kind else ("object" if "properties" in node else "any JSON value")]
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        if isinstance(node.get("exclusiveMinimum"), (int, float)) and "minimum" not in node:
            parts.append(f"> {low}")
        elif low is not None and not isinstance(low, bool):
            parts.append(f">= {low}")
        if isinstance(node.get("exclusiveMaximum"), (int, float)) and "maximum" not in node:
            parts.append(f"< {high}")
        elif high is not None and not isinstance(high, bool):
            parts.append(f"<= {high}")
        if "multipleOf" in node:
            parts.append(f"multiple of {node['multipleOf']}")
    elif kind == "string":
        if "format" in node:
            parts.append(f"format {node['format']}")
        if "pattern" in node:
            parts.append(f"matching /{node['pattern']}/")
        if "minLength" in node or "maxLength" in node:
            parts.append(f"length {node.get('minLength', 0)}..{node.get('maxLength', '')}".rstrip("."))
    elif kind == "array":
        items = node.get("items")
        if isinstance(items, (dict, bool)):
            parts = [f"array of {_type_text(items, root, seen)}"]
        if "minItems" in node or "maxItems" in node:
            parts.append(f"{node.get('minItems', 0)}..{node.get('maxItems', '')} items".replace("..  ", " "))
    return ", ".join(parts)


def _fields(node: Any, root: Any, seen: tuple[str, ...], indent: str, depth: int, out: list[str]) -> None:
    node, seen = _resolve(node, root, seen)
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return
    required = set(node.get("required") or ())
    for name, sub in (node.get("properties") or {}).items():
        if len(out) >= _MAX_FIELDS:
            out.append(f"{indent}... (more fields)")
            return
        resolved, sub_seen = _resolve(sub, root, seen)
        line = f"{indent}- {name} ({_type_text(resolved, root, sub_seen)}, {'required' if name in required else 'optional'})"
        if isinstance(resolved, dict):
            text = resolved.get("description") or (sub.get("description") if isinstance(sub, dict) else None)
            if isinstance(text, str) and text.strip():
                line += ": " + " ".join(text.split())[:300]
            if "default" in resolved:
                line += f" (default {_literal(resolved['default'])})"
        out.append(line)
        nested = _object_of(resolved, root, sub_seen)
        if nested is not None:
            _fields(nested, root, sub_seen, indent + "  ", depth + 1, out)


def _object_of(node: Any, root: Any, seen: tuple[str, ...]) -> Any:
    """The object schema whose fields a field's line should list: the field's own, its array items',
    or its one non-null branch's."""
    node, seen = _resolve(node, root, seen)
    if not isinstance(node, dict):
        return None
    if node.get("properties"):
        return node
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return _object_of(node["items"], root, seen)
    real = [b for b in _branches(node) if _resolve(b, root, seen)[0] not in ({"type": "null"},)]
    return _object_of(real[0], root, seen) if len(real) == 1 else None


def listed_values(schema: Any) -> dict[str, tuple[str, ...]]:
    """The string values each field takes when the schema lists them (``enum``, ``const``, or an
    array's items that do), by dotted path: ``{"env": ("dev", "prod"), "limits.unit": ("cpu", "mem")}``."""
    out: dict[str, tuple[str, ...]] = {}

    def walk(node: Any, seen: tuple[str, ...], path: str, depth: int) -> None:
        node, seen = _resolve(node, schema, seen)
        if not isinstance(node, dict) or depth > _MAX_DEPTH or len(out) >= _MAX_FIELDS:
            return
        values = node["enum"] if isinstance(node.get("enum"), list) else [node["const"]] if "const" in node else []
        listed = tuple(v for v in values if isinstance(v, str))
        if path and listed:
            out[path] = listed
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, seen, f"{path}.{name}" if path else str(name), depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], seen, path, depth + 1)
        for branch in _branches(node):
            walk(branch, seen, path, depth + 1)

    walk(schema, (), "", 0)
    return out


def _closed(node: dict[str, Any]) -> bool:
    extra = node.get("additionalProperties")
    return extra is False or (extra is None and bool(node.get("properties")) and not node.get("patternProperties"))


def describe(schema: Any) -> str:
    """A compact description of the JSON a schema admits, for a model's prompt."""
    root = schema
    node, seen = _resolve(schema, root)
    lines: list[str] = []
    title = node.get("title") if isinstance(node, dict) else None
    summary = node.get("description") if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get("properties"):
        head = "A JSON object"
        if isinstance(title, str) and title.strip():
            head += f" ({title.strip()})"
        if isinstance(summary, str) and summary.strip():
            head += ": " + " ".join(summary.split())[:400]
        end = "" if head.endswith((".", "!", "?")) else "."  # a description's own full stop is kept, not doubled
        lines.append(head + end + " Its fields, in this order:")
        _fields(node, root, seen, "", 0, lines)
        if _closed(node):
            lines.append("Write only these fields (no other keys); leave out an optional field the request does not give.")
        else:
            lines.append("Leave out an optional field the request does not give.")
    else:
        lines.append(f"A JSON value: {_type_text(node, root, seen)}.")
        if isinstance(summary, str) and summary.strip():
            lines.append(" ".join(summary.split())[:400])
        nested = _object_of(node, root, seen)
        if nested is not None:
            _fields(nested, root, seen, "", 0, lines)
    return "\n".join(lines)


def _bound(node: Any, root: Any, seen: tuple[str, ...], depth: int) -> int:
    node, seen = _resolve(node, root, seen)
    if depth > _MAX_DEPTH:
        return 64
    if node is True or node == {}:
        return 128
    if not isinstance(node, dict):
        return 2
    if "const" in node:
        return len(_literal(node["const"])) + 2
    if "enum" in node:
        return max((len(_literal(v)) for v in node["enum"]), default=2) + 2
    branches = _branches(node)
    if branches:
        return max(_bound(b, root, seen, depth + 1) for b in branches)
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if "object" in kinds or (not kinds and "properties" in node):
        total = 2
        for name, sub in (node.get("properties") or {}).items():
            total += len(name) // 2 + 3 + _bound(sub, root, seen, depth + 1)
        if not _closed(node):
            total += 64
        return total
    if "array" in kinds:
        items = node.get("items", True)
        count = node.get("maxItems", max(_DEFAULT_ITEMS, node.get("minItems", 0)))
        return 2 + min(count, 64) * (_bound(items, root, seen, depth + 1) + 1)
    if "string" in kinds:
        if isinstance(node.get("maxLength"), int):
            return node["maxLength"] + 2
        return _FORMAT_TOKENS.get(node.get("format", ""), _FREE_STRING_TOKENS)
    if "number" in kinds or "integer" in kinds:
        return 24
    if kinds:
        return 4  # boolean, null
    return 128


def token_bound(schema: Any) -> int:
    """The most tokens a conforming answer needs (see the module docs), at most 2,048."""
    return max(16, min(_MAX_BOUND, _bound(schema, schema, (), 0)))
