"""``items``, ``prefixItems``, ``additionalItems``, ``minItems`` / ``maxItems``: an array as its prefix
items, each optional once ``minItems`` is met, then the repeated rest. (``uniqueItems`` and
``contains`` are refused by the walk, or left to the validator.)"""

from __future__ import annotations

from typing import Any

from ...errors import JSONSchemaError
from .context import CompilerContext, pointer_join


class ArrayKeywords(CompilerContext):
    """The rule of the arrays a schema admits."""

    def array(self, schema: dict[str, Any], ptr: str, depth: int) -> str | None:
        min_items = int(schema.get("minItems", 0))
        max_items = schema.get("maxItems")
        max_items = None if max_items is None else int(max_items)
        if max_items is not None and max_items < min_items:
            return None
        for key, val in (("minItems", min_items), ("maxItems", max_items)):
            if val is not None and val > self.limits.max_items_count:
                if key == "maxItems" and min_items <= self.limits.max_items_count:
                    self.refuse(
                        f"maxItems {val:,} is over the limit of {self.limits.max_items_count:,}", key, pointer_join(ptr, key)
                    )
                    max_items = None
                else:
                    raise JSONSchemaError(
                        f"{key} {val:,} is over the limit of {self.limits.max_items_count:,}",
                        keyword=key,
                        pointer="#" + pointer_join(ptr, key),
                    )
        if isinstance(schema.get("prefixItems"), list):
            prefix_schemas = schema["prefixItems"]
            prefix_key = "prefixItems"
            rest_schema = schema.get("items", True)
            rest_key = "items"
        elif isinstance(schema.get("items"), list):
            prefix_schemas = schema["items"]
            prefix_key = "items"
            rest_schema = schema.get("additionalItems", True)
            rest_key = "additionalItems"
        else:
            prefix_schemas, prefix_key = [], "prefixItems"
            rest_schema, rest_key = schema.get("items", True), "items"
        prefix: list[str | None] = []
        for i, sub in enumerate(prefix_schemas[: max_items if max_items is not None else None]):
            alts = self.value(sub, pointer_join(ptr, prefix_key, i), depth + 1)
            prefix.append(None if alts.empty() else self.expr(alts))
        rest_alts = self.value(rest_schema, pointer_join(ptr, rest_key), depth + 1)
        rest = None if rest_alts.empty() else self.expr(rest_alts)
        # a missing prefix item makes every longer array impossible
        for i, p in enumerate(prefix):
            if p is None:
                if min_items > i:
                    return None
                prefix = prefix[:i]
                max_items = i if max_items is None else min(max_items, i)
                rest = None
                break
        k = len(prefix)
        ls, rs, comma = self.punct("["), self.punct("]"), self.punct(",")
        rest_lo = max(min_items - k, 0)
        rest_hi = None if max_items is None else max(max_items - k, 0)
        if rest is None:
            if min_items > k:
                return None
            rest_hi = 0
        # elements after the prefix, each preceded by a comma (or not, if the prefix is empty)
        tail = _repeat(f"{comma} {rest}", rest_lo, rest_hi) if rest is not None and rest_hi != 0 else ""
        if k == 0:
            if rest is None or rest_hi == 0:
                return self.rule(f"{ls} {rs}", "a")
            first_rest = _repeat(f"{comma} {rest}", max(rest_lo - 1, 0), None if rest_hi is None else rest_hi - 1)
            inner = f"{rest} {first_rest}".strip()
            body = f"{ls} {inner} {rs}" if rest_lo >= 1 else f"{ls} ({inner})? {rs}"
            return self.rule(body, "a")
        # prefix items: the array may stop after any of them once minItems is met
        seq = tail
        for i in range(k - 1, -1, -1):
            item = prefix[i]
            part = f"{item} {seq}".strip() if i == 0 else f"{comma} {item} {seq}".strip()
            if i >= min_items and i > 0:
                seq = f"({part})?"
            else:
                seq = part
        if min_items == 0:
            return self.rule(f"{ls} ({seq})? {rs}", "a")
        return self.rule(f"{ls} {seq} {rs}", "a")


def _repeat(item: str, lo: int, hi: int | None) -> str:
    if hi is not None and hi <= 0:
        return ""
    if hi is None:
        if lo == 0:
            return f"({item})*"
        if lo == 1:
            return f"({item})+"
        return f"({item}) ~ {lo} ({item})*"
    if (lo, hi) == (0, 1):
        return f"({item})?"
    if lo == hi:
        return f"({item}) ~ {lo}"
    return f"({item}) ~ {lo}..{hi}"
