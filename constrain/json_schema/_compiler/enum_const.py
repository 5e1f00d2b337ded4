"""``enum`` and ``const``: the listed values the rest of the schema admits, written as literals (one
string terminal, one number terminal longest first, rules for arrays and objects)."""

from __future__ import annotations

import json
from typing import Any

from ...errors import JSONSchemaError
from .. import _regex
from .._validate import validator_for_pointers
from .context import VALIDATION_KEYWORDS, Alts, CompilerContext, Conjunction, json_type, key_literal
from .numbers import number_literal
from .refs import at_pointer


class EnumConst(CompilerContext):
    """``enum`` and ``const``, and literal values (also of arrays and objects)."""

    def enumeration(self, schema: dict[str, Any], parts: Conjunction, ptr: str) -> Alts:
        if "const" in schema:
            values = [schema["const"]]
            keyword = "const"
        else:
            values = schema["enum"]
            keyword = "enum"
            if not isinstance(values, list):
                raise JSONSchemaError("enum must be an array", keyword="enum", pointer="#" + ptr)
        if len(values) > self.limits.max_enum_values:
            raise JSONSchemaError(
                f"enum has {len(values):,} values, over the limit of {self.limits.max_enum_values:,}",
                keyword=keyword,
                pointer="#" + ptr,
            )
        check = _ConjunctionCheck.for_schema(self.root, parts, schema)
        out = Alts()
        strings: list[str] = []
        numbers: list[tuple[int, str]] = []
        for v in values:
            try:
                ok = check.ok(v)
            except Exception as exc:  # a pointer into a merged subschema the validator cannot follow
                raise JSONSchemaError(
                    f"cannot check the {keyword} values against the rest of the schema ({type(exc).__name__})",
                    keyword=keyword,
                    pointer="#" + ptr,
                ) from None
            if not ok:
                continue
            if isinstance(v, str):
                strings.append(_regex.canonical_literal(v))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                numbers.append((len(json.dumps(v)), number_literal(v)))
            else:
                out.merge(self.literal_value(v))
            self.tick(0, ptr)
        # one terminal per kind: inside quotes alternatives cannot end a token early; numbers go
        # longest first because lark's lexer takes the first alternative that matches
        if strings:
            body = strings[0] if len(strings) == 1 else "(?:" + "|".join(dict.fromkeys(strings)) + ")"
            out.strings.append(_regex.QUOTE + body + _regex.QUOTE)
        if numbers:
            alts = list(dict.fromkeys(rx for _, rx in sorted(numbers, key=lambda p: -p[0])))
            out.numbers.append(alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")")
        return out

    def literal_value(self, v: Any) -> Alts:
        if v is None:
            return Alts(literals={"null"})
        if v is True:
            return Alts(literals={"true"})
        if v is False:
            return Alts(literals={"false"})
        if isinstance(v, str):
            return Alts(strings=[_regex.QUOTE + _regex.canonical_literal(v) + _regex.QUOTE])
        if isinstance(v, (int, float)):
            return Alts(numbers=[number_literal(v)])
        return Alts(rules=[self.rule(self.literal_expr(v), "c")])

    def literal_expr(self, v: Any) -> str:
        if isinstance(v, dict):
            if not v:
                return f"{self.punct('{')} {self.punct('}')}"
            items = [f"{key_literal(k)} {self.punct(':')} {self.literal_expr(x)}" for k, x in v.items()]
            return f"{self.punct('{')} " + f" {self.punct(',')} ".join(items) + f" {self.punct('}')}"
        if isinstance(v, list):
            if not v:
                return f"{self.punct('[')} {self.punct(']')}"
            return f"{self.punct('[')} " + f" {self.punct(',')} ".join(self.literal_expr(x) for x in v) + f" {self.punct(']')}"
        return self.expr(self.literal_value(v))


class _ConjunctionCheck:
    """Validates candidate ``enum`` values against every part of a conjunction. A part is checked at its
    pointer into the root when the schema there is that part (``$id`` bases then apply as in the
    validator); a part the compiler built (merged properties, negations) is checked as it stands."""

    def __init__(self, root: Any, parts: Conjunction) -> None:
        items: list[str | dict[str, Any]] = []
        for part, ptr in parts:
            node = at_pointer(root, ptr)
            if isinstance(node, dict) and {k: v for k, v in node.items() if k in VALIDATION_KEYWORDS and k not in ("$ref", "allOf")} == part:
                items.append(ptr)
            else:
                items.append(part)
        self._validator = validator_for_pointers(root, items)

    @classmethod
    def for_schema(cls, root: Any, parts: Conjunction, merged: dict[str, Any]) -> _ConjunctionCheck | _TypeCheck:
        if len(parts) == 1 and set(merged) <= {"enum", "const", "type"} and not {"enum", "const"} <= set(merged):
            return _TypeCheck(merged.get("type"))
        return cls(root, parts)

    def ok(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))


class _TypeCheck:
    """The only constraint besides the enum itself is ``type``: no validator needed."""

    def __init__(self, types: Any) -> None:
        self.types = None if types is None else ({types} if isinstance(types, str) else set(types))

    def ok(self, value: Any) -> bool:
        if self.types is None:
            return True
        t = json_type(value)
        return t in self.types or (t == "integer" and "number" in self.types)
