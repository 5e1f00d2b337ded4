"""JSON Schema -> Lark grammar text (the subset lark-python and llguidance both read).

One ``Compiler`` walks the schema once. Each subschema becomes ``Alts``: the terminals and rules a
value conforming to it may start with. ``allOf`` (and ``$ref`` with sibling keywords) is merged into
one schema before compiling; ``anyOf`` is distributed over its siblings; ``oneOf`` is compiled like
``anyOf`` where its branches are provably disjoint, and otherwise as branch i conjoined with the
complement of each branch it may overlap. ``not``, ``if``/``then``/``else`` and the dependency
keywords are rewritten the same way, as ``anyOf`` of schemas the grammar states, through the
complement of a schema (``_negate``). Strings that several regexes constrain together (a pattern and a
format, two patterns, ``not: {pattern}``, length bounds around a pattern) and the keys of objects
(``patternProperties`` regions, ``propertyNames``) go through automata (``_automaton``). Anything the
grammar cannot state exactly raises ``JSONSchemaError`` naming the keyword and its JSON pointer — or,
with ``widen=True``, is dropped and recorded in ``widenings`` (the local validator still enforces it).

Objects: declared properties appear in declared order, each optional one may be left out, and
additional properties (when allowed) may appear between them (before them all when the regex for their
keys is large, see ``objects.MAX_EXCLUSION_CHARS``). Numbers with bounds are written
without an exponent. Strings under ``pattern`` spell characters literally except where JSON requires
an escape.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import JSONSchemaError
from .. import _automaton
from .arrays import ArrayKeywords
from .combinators import REWRITTEN, Combinators
from .context import VALIDATION_KEYWORDS, Alts, Conjunction, Limits, pointer_join
from .enum_const import EnumConst
from .numbers import NumberKeywords
from .objects import ObjectKeywords
from .strings import StringKeywords


_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Compiler(ObjectKeywords, ArrayKeywords, StringKeywords, NumberKeywords, EnumConst, Combinators):
    """One walk over the schema; the keyword families it inherits write the grammar for each keyword."""

    # -- entry -------------------------------------------------------------------------------------
    def compile(self) -> str:
        alts = self.value(self.root, "", 0)
        if alts.empty():
            raise JSONSchemaError("the schema admits no value", keyword="", pointer="#")
        start = self.expr(alts)
        used = self._reachable(start)
        lines = [f"start: {start}"]
        lines += [f"{name}: {body}" for name, body in self.rules.items() if name in used]
        lines += [f"{name}: /{rx}/" for rx, name in self.terminals.items() if name in used]
        text = "\n".join(lines) + "\n"
        if len(text) > self.limits.max_grammar_chars:
            raise JSONSchemaError(
                f"the grammar would be {len(text):,} characters, over the limit of {self.limits.max_grammar_chars:,}",
                keyword="",
                pointer="#",
            )
        return text

    def _reachable(self, start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            names = _NAME.findall(_QUOTED.sub(" ", todo.pop()))
            for name in names:
                if name not in seen:
                    seen.add(name)
                    if name in self.rules:
                        todo.append(self.rules[name])
        return seen

    # -- the walk ----------------------------------------------------------------------------------
    def value(self, schema: Any, ptr: str, depth: int) -> Alts:
        self.tick(depth, ptr)
        if schema is True:
            return Alts(any=True)
        if schema is False:
            return Alts()
        if not isinstance(schema, dict):
            raise JSONSchemaError("a schema must be an object or a boolean", keyword="", pointer="#" + ptr)
        keys = {k for k in schema if k in VALIDATION_KEYWORDS}
        if keys == {"$ref"} or (self.legacy and "$ref" in keys):
            return self.ref_value(schema["$ref"], ptr, depth)
        parts = self.flatten(schema, ptr, depth, set())
        if parts is None:
            return Alts()
        return self.conjunction(parts, depth)

    def flatten(self, schema: Any, ptr: str, depth: int, chain: set[str]) -> Conjunction | None:
        """The schema as a list of plain (no ``allOf``, no ``$ref``) schemas that must all hold; None if false."""
        if schema is True:
            return []
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise JSONSchemaError("a schema must be an object or a boolean", keyword="", pointer="#" + ptr)
        if depth > self.limits.max_depth:
            self.tick(depth, ptr)
        out: Conjunction = []
        if "$ref" in schema:
            target, tptr = self.resolve(schema["$ref"], ptr)
            if tptr in chain or tptr in self.ref_in_progress:
                raise JSONSchemaError(
                    "recursive $ref combined with other keywords cannot be compiled", keyword="$ref", pointer="#" + ptr
                )
            sub = self.flatten(target, tptr, depth + 1, chain | {tptr})
            if sub is None:
                return None
            out += sub
            if self.legacy:
                return out
        for i, branch in enumerate(schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []):
            sub = self.flatten(branch, pointer_join(ptr, "allOf", i), depth + 1, chain)
            if sub is None:
                return None
            out += sub
        rest = {k: v for k, v in schema.items() if k in VALIDATION_KEYWORDS and k not in ("$ref", "allOf")}
        if rest:
            out.append((rest, ptr))
        return out

    def conjunction(self, parts: Conjunction, depth: int) -> Alts:
        if not parts:
            return Alts(any=True)
        parts = self.split_not_required(parts)
        rewritten = self.rewrite(parts)
        if rewritten is None:
            return Alts()
        parts = rewritten
        if not parts:
            return Alts(any=True)
        if self.unsatisfiable(parts):
            return Alts()
        ptr = parts[-1][1]
        for index, (part, pptr) in enumerate(parts):
            for keyword in ("anyOf", "oneOf"):
                branches = part.get(keyword)
                if branches is None:
                    continue
                if not isinstance(branches, list) or not branches:
                    raise JSONSchemaError(f"{keyword} must be a non-empty array", keyword=keyword, pointer="#" + pptr)
                rewritten = part.get(REWRITTEN)
                stripped = {k: v for k, v in part.items() if k not in (keyword, REWRITTEN)}
                base = parts[:index] + ([(stripped, pptr)] if stripped else []) + parts[index + 1 :]
                if rewritten is not None and self.widen:
                    # a keyword stated exactly through anyOf: if that fails, widen mode drops the keyword
                    mark = len(self.widenings)
                    try:
                        return self.conjunction(base + [({keyword: branches}, pptr)], depth + 1)
                    except JSONSchemaError:
                        del self.widenings[mark:]  # rules made on the way stay unused, and are left out
                        self.widenings.append((rewritten, "#" + pptr))
                        return self.conjunction(base, depth + 1) if base else Alts(any=True)
                if not base and (keyword == "anyOf" or len(branches) == 1):
                    # nothing to distribute: compile each branch on its own (keeps recursive $refs as rules)
                    out = Alts()
                    for i, branch in enumerate(branches):
                        out.merge(self.value(branch, pointer_join(pptr, keyword, i), depth + 1))
                    return Alts(any=True) if out.any else out
                expanded: list[Conjunction] = []
                raw: list[Any] = []
                for i, branch in enumerate(branches):
                    bptr = pointer_join(pptr, keyword, i)
                    flat = self.flatten(branch, bptr, depth + 1, set())
                    if flat is not None:
                        expanded.append(base + flat)
                        raw.append((branch, bptr))
                if len(expanded) > self.limits.max_branches:
                    raise JSONSchemaError(
                        f"{keyword} expands to over {self.limits.max_branches} alternatives", keyword=keyword, pointer="#" + pptr
                    )
                if keyword == "oneOf" and len(expanded) > 1:
                    expanded = self.exactly_one(expanded, raw, pptr)
                out = Alts()
                for conj in expanded:
                    out.merge(self.conjunction(conj, depth + 1))
                    self.tick(depth, pptr)
                if out.any:
                    return Alts(any=True)
                return out
        merged = self.merge(parts)
        return self.plain(merged, parts, ptr, depth)

    # -- a single merged schema --------------------------------------------------------------------
    def plain(self, schema: dict[str, Any], parts: Conjunction, ptr: str, depth: int) -> Alts:
        schema = self._normalize_legacy(schema)
        if "enum" in schema or "const" in schema:
            return self.enumeration(schema, parts, ptr)
        types = self._types(schema, ptr)
        if "not" in schema:
            types = self.apply_not(schema, types, ptr, depth)
        out = Alts()
        if "null" in types:
            out.literals.add("null")
        if "boolean" in types:
            out.literals |= {"true", "false"} - set(schema.get("__not_literals__", ()))
        if "number" in types or "integer" in types:
            rx = self.number(schema, integer="number" not in types, ptr=ptr)
            if rx is not None:
                out.numbers.append(rx)
        if "string" in types:
            rx = self.string(schema, ptr)
            if rx is not None:
                out.strings.append(rx)
        if "array" in types:
            rule = self.array(schema, ptr, depth)
            if rule is not None:
                out.rules.append(rule)
        if "object" in types:
            rule = self.obj(schema, ptr, depth)
            if rule is not None:
                out.rules.append(rule)
        self._unsupported(schema, types, ptr)
        return out

    def _normalize_legacy(self, schema: dict[str, Any]) -> dict[str, Any]:
        if isinstance(schema.get("exclusiveMinimum"), bool) or isinstance(schema.get("exclusiveMaximum"), bool):
            schema = dict(schema)
            if schema.pop("exclusiveMinimum", False) is True and "minimum" in schema:
                schema["exclusiveMinimum"] = schema.pop("minimum")
            if schema.pop("exclusiveMaximum", False) is True and "maximum" in schema:
                schema["exclusiveMaximum"] = schema.pop("maximum")
        return schema

    def _types(self, schema: dict[str, Any], ptr: str) -> set[str]:
        t = schema.get("type")
        if t is None:
            return set(_TYPES)
        ts = [t] if isinstance(t, str) else t
        if not isinstance(ts, list) or any(x not in _TYPES for x in ts):
            raise JSONSchemaError(f"unknown type {t!r}", keyword="type", pointer="#" + pointer_join(ptr, "type"))
        out = set(ts)
        if "number" in out:
            out.discard("integer")
        return out

    def _unsupported(self, schema: dict[str, Any], types: set[str], ptr: str) -> None:
        checks = [
            ("uniqueItems", "array", lambda v: v is True, "uniqueItems cannot be expressed in a grammar"),
            ("contains", "array", lambda v: True, "contains cannot be expressed in a grammar"),
            ("unevaluatedItems", "array", lambda v: v is not True and v != {}, "unevaluatedItems is not supported"),
            ("unevaluatedProperties", "object", lambda v: v is not True and v != {}, "unevaluatedProperties is not supported"),
            ("dependentRequired", "object", lambda v: bool(v), "dependentRequired is not supported"),
            ("dependentSchemas", "object", lambda v: bool(v), "dependentSchemas is not supported"),
            ("dependencies", "object", lambda v: bool(v), "dependencies is not supported"),
            ("if", None, lambda v: True, "if/then/else is not supported"),
            ("$dynamicRef", None, lambda v: True, "$dynamicRef is not supported"),
            ("$recursiveRef", None, lambda v: True, "$recursiveRef is not supported"),
        ]
        for keyword, needs_type, applies, message in checks:
            if keyword in schema and (needs_type is None or needs_type in types) and applies(schema[keyword]):
                self.refuse(message, keyword, pointer_join(ptr, keyword))


def compile_schema(
    schema: Any, *, compact: bool, widen: bool, limits: Limits, declared_keys: bool = True
) -> tuple[str, list[tuple[str, str]], bool]:
    """Return (grammar text, widenings, needs an Earley parser in lark)."""
    compiler = Compiler(schema, compact=compact, widen=widen, limits=limits, declared_keys=declared_keys)
    with _automaton.budget(_automaton.SCHEMA_BUDGET):
        text = compiler.compile()
    return text, compiler.widenings, compiler.needs_earley
