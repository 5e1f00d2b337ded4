"""JSON Schema -> Lark grammar text (the subset lark-python and llguidance both read).

One ``_Compiler`` walks the schema once. Each subschema becomes ``_Alts``: the terminals and rules a
value conforming to it may start with. ``allOf`` (and ``$ref`` with sibling keywords) is merged into
one schema before compiling; ``anyOf`` is distributed over its siblings; ``oneOf`` is compiled like
``anyOf`` only where its branches are provably disjoint. Anything the grammar cannot state exactly
raises ``JSONSchemaError`` naming the keyword and its JSON pointer — or, with ``widen=True``, is
dropped and recorded in ``widenings`` (the local validator still enforces it).

Objects: declared properties appear in declared order, each optional one may be left out, and
additional properties (when allowed) may appear between them. Numbers with bounds are written
without an exponent. Strings under ``pattern`` spell characters literally except where JSON requires
an escape.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable
from urllib.parse import unquote

from ..errors import JSONSchemaError
from . import _formats, _numbers, _regex

@dataclass(frozen=True)
class Limits:
    """Bounds on the compiler's own work; exceeding one refuses the schema with ``JSONSchemaError``."""

    max_depth: int = 48
    """Deepest nesting of subschemas (``$ref`` chains included) followed while compiling."""
    max_rules: int = 4000
    max_grammar_chars: int = 1_000_000
    max_enum_values: int = 5000
    max_items_count: int = 5000
    """Largest finite ``minItems`` / ``maxItems`` (and tuple length) written out in the grammar."""
    max_string_length: int = 100_000
    seconds: float = 5.0
    """Wall-clock budget for one compile."""
    max_branches: int = 256
    """Largest number of alternatives ``anyOf`` distribution may produce for one subschema."""


VALIDATION_KEYWORDS = frozenset(
    """type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength
    pattern maxItems minItems uniqueItems maxContains minContains contains maxProperties minProperties
    required dependentRequired dependencies dependentSchemas properties patternProperties
    additionalProperties propertyNames items prefixItems additionalItems unevaluatedItems
    unevaluatedProperties allOf anyOf oneOf not if then else $ref $dynamicRef $recursiveRef format""".split()
)
_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
WS_MAX = 32
MAX_EXCLUSION_CHARS = 12_500
"""Largest key-exclusion regex written (about 80 declared names); beyond it lark-python needs seconds to
build the LALR tables and lexers of the generation grammar (bench/jsonschema.py measures it)."""
STANDARD_FORMATS = frozenset(
    """date-time date time duration email idn-email hostname idn-hostname ipv4 ipv6 uri uri-reference iri
    iri-reference uuid uri-template json-pointer relative-json-pointer regex""".split()
)
"""Formats JSON Schema defines; any other ``format`` value is an annotation only."""


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pointer_join(ptr: str, *parts: object) -> str:
    for part in parts:
        ptr += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return ptr


@dataclass
class _Alts:
    """What a value may be: one terminal per string/number regex, literal keywords, rules."""

    strings: list[str] = field(default_factory=list)  # regexes over the whole string token, quotes included
    numbers: list[str] = field(default_factory=list)
    literals: set[str] = field(default_factory=set)  # "true" "false" "null"
    rules: list[str] = field(default_factory=list)
    opaque: int = 0  # rules whose first token is unknown here ($ref rules, any-value)
    any: bool = False

    def empty(self) -> bool:
        return not (self.strings or self.numbers or self.literals or self.rules or self.any)

    def count(self) -> int:
        return len(self.strings) + len(self.numbers) + len(self.literals) + len(self.rules)

    def merge(self, other: _Alts) -> None:
        self.any = self.any or other.any
        for s in other.strings:
            if s not in self.strings:
                self.strings.append(s)
        for n in other.numbers:
            if n not in self.numbers:
                self.numbers.append(n)
        self.literals |= other.literals
        for r in other.rules:
            if r not in self.rules:
                self.rules.append(r)
        self.opaque += other.opaque


NEVER = _Alts


@dataclass
class _Member:
    key: str  # lark expression for the key token
    value: str  # lark expression for the value
    required: bool
    pair: str = ""  # the whole member when it is not one key and one value (several key sets)

    def expr(self, colon: str) -> str:
        return self.pair or f"{self.key} {colon} {self.value}"


class _Compiler:
    def __init__(self, root: Any, *, compact: bool, widen: bool, limits: Limits, declared_keys: bool = True) -> None:
        self.root = root
        self.compact = compact
        self.widen = widen
        self.declared_keys = declared_keys
        self.limits = limits
        self.widenings: list[tuple[str, str]] = []
        self.rules: dict[str, str] = {}
        self.terminals: dict[str, str] = {}  # regex -> terminal name
        self.rule_by_body: dict[str, str] = {}
        self.ref_alts: dict[str, _Alts] = {}
        self.ref_in_progress: set[str] = set()
        self.ref_rule_needed: set[str] = set()
        self.needs_earley = False
        self.deadline = time.monotonic() + limits.seconds
        self.size = 0
        schema_uri = root.get("$schema", "") if isinstance(root, dict) else ""
        self.legacy = any(d in str(schema_uri) for d in ("draft-03", "draft-04", "draft-05", "draft-06", "draft-07"))
        self.draft4 = any(d in str(schema_uri) for d in ("draft-03", "draft-04"))
        self.root_ids = {""}
        if isinstance(root, dict):
            for key in ("$id", "id"):
                if isinstance(root.get(key), str):
                    self.root_ids.add(root[key].split("#")[0])
        self.anchors: dict[str, Any] | None = None

    # -- entry -----------------------------------------------------------------------------------------
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

    # -- bookkeeping -----------------------------------------------------------------------------------
    def refuse(self, message: str, keyword: str, ptr: str) -> None:
        """Refuse a keyword, or (widen=True) record it as enforced by the validator only."""
        if not self.widen:
            raise JSONSchemaError(message, keyword=keyword, pointer="#" + ptr)
        self.widenings.append((keyword, "#" + ptr))

    def _tick(self, depth: int, ptr: str) -> None:
        if depth > self.limits.max_depth:
            raise JSONSchemaError(
                f"schema nesting deeper than {self.limits.max_depth} levels", keyword="", pointer="#" + ptr
            )
        if time.monotonic() > self.deadline:
            raise JSONSchemaError(
                f"compiling took longer than {self.limits.seconds:g} s", keyword="", pointer="#" + ptr
            )
        if len(self.rules) > self.limits.max_rules or self.size > self.limits.max_grammar_chars:
            raise JSONSchemaError(
                f"the grammar would exceed {self.limits.max_rules:,} rules or "
                f"{self.limits.max_grammar_chars:,} characters",
                keyword="",
                pointer="#" + ptr,
            )

    def terminal(self, regex: str, prefix: str) -> str:
        name = self.terminals.get(regex)
        if name is None:
            name = f"{prefix}{len(self.terminals)}"
            self.terminals[regex] = name
            self.size += len(regex) + 10
        return name

    def rule(self, body: str, prefix: str = "v", name: str | None = None) -> str:
        if name is None:
            existing = self.rule_by_body.get(body)
            if existing is not None:
                return existing
            name = f"{prefix}{len(self.rules)}"
            self.rule_by_body[body] = name
        self.rules[name] = body
        self.size += len(body) + len(name) + 3
        return name

    # -- punctuation and any-value rules -------------------------------------------------------------
    def punct(self, char: str) -> str:
        if self.compact:
            return json.dumps(char)
        ws = f"[ \\t\\n\\r]{{0,{WS_MAX}}}"
        esc = {"{": "\\{", "}": "\\}", "[": "\\[", "]": "\\]", ",": ",", ":": ":"}[char]
        names = {"{": "LBRACE", "}": "RBRACE", "[": "LSQB", "]": "RSQB", ",": "COMMA", ":": "COLON"}
        if char in "{[":
            rx = esc + ws
        elif char in "}]":
            rx = ws + esc
        else:
            rx = ws + esc + ws
        name = names[char]
        self.terminals.setdefault(rx, name)
        return name

    def any_value(self) -> str:
        if "_any" not in self.rules:
            string = self.terminal(_regex.QUOTE + _regex.JSON_CHAR_FULL + "*" + _regex.QUOTE, "S")
            number = self.terminal(_numbers.NUMBER_ANY, "N")
            lb, rb, ls, rs, comma, colon = (self.punct(c) for c in "{}[],:")
            self.rules["_any"] = f'_any_obj | _any_arr | {string} | {number} | "true" | "false" | "null"'
            self.rules["_any_obj"] = f"{lb} ({string} {colon} _any ({comma} {string} {colon} _any)*)? {rb}"
            self.rules["_any_arr"] = f"{ls} (_any ({comma} _any)*)? {rs}"
        return "_any"

    def expr(self, alts: _Alts) -> str:
        """A lark expression for the alternatives (a rule when there are several)."""
        if alts.any:
            return self.any_value()
        parts = [self.terminal(rx, "S") for rx in alts.strings]
        parts += [self.terminal(rx, "N") for rx in alts.numbers]
        parts += [json.dumps(lit) for lit in sorted(alts.literals)]
        parts += alts.rules
        if not parts:
            raise AssertionError("expr of an empty alternative set")
        if len(parts) == 1:
            return parts[0]
        if len(alts.strings) > 1 or len(alts.numbers) > 1 or len(alts.rules) > 1 or (alts.opaque and len(parts) > 1):
            self.needs_earley = True  # terminals of one kind may overlap: lark's LALR lexer could pick wrongly
        return self.rule(" | ".join(parts))

    # -- $ref ----------------------------------------------------------------------------------------------
    def resolve(self, ref: Any, ptr: str) -> tuple[Any, str]:
        if not isinstance(ref, str):
            raise JSONSchemaError("$ref must be a string", keyword="$ref", pointer="#" + ptr)
        base, _, fragment = ref.partition("#")
        if base not in self.root_ids:
            raise JSONSchemaError(f"only local references are supported, not {ref!r}", keyword="$ref", pointer="#" + ptr)
        fragment = unquote(fragment)
        if fragment and not fragment.startswith("/"):
            target = self._anchor(fragment)
            if target is None:
                raise JSONSchemaError(f"unknown anchor in {ref!r}", keyword="$ref", pointer="#" + ptr)
            return target
        node = self.root
        for raw in fragment.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise JSONSchemaError(f"$ref {ref!r} points nowhere", keyword="$ref", pointer="#" + ptr)
        return node, fragment

    def _anchor(self, name: str) -> tuple[Any, str] | None:
        if self.anchors is None:
            self.anchors = {}
            stack: list[tuple[Any, str]] = [(self.root, "")]
            while stack:
                node, p = stack.pop()
                if isinstance(node, dict):
                    for key in ("$anchor", "$dynamicAnchor"):
                        if isinstance(node.get(key), str):
                            self.anchors.setdefault(node[key], (node, p))
                    for k, v in node.items():
                        if k not in ("enum", "const", "default", "examples"):
                            stack.append((v, pointer_join(p, k)))
                elif isinstance(node, list):
                    stack.extend((v, pointer_join(p, i)) for i, v in enumerate(node))
        return self.anchors.get(name)

    def ref_value(self, ref: Any, ptr: str, depth: int) -> _Alts:
        target, tptr = self.resolve(ref, ptr)
        if tptr in self.ref_alts:
            return self.ref_alts[tptr]
        name = "r_" + re.sub(r"[^a-z0-9_]", "_", tptr.lower())[-40:].strip("_") + f"_{len(self.rules)}"
        if tptr in self.ref_in_progress:
            self.ref_rule_needed.add(tptr)
            placeholder = self._ref_names.setdefault(tptr, name)
            return _Alts(rules=[placeholder], opaque=1)
        self.ref_in_progress.add(tptr)
        try:
            alts = self.value(target, tptr, depth + 1)
        finally:
            self.ref_in_progress.discard(tptr)
        if tptr in self.ref_rule_needed:
            rule_name = self._ref_names[tptr]
            if alts.rules == [rule_name] and alts.count() == 1:
                alts = _Alts()  # a reference that only ever leads back to itself
            if alts.empty():
                raise JSONSchemaError("recursive reference admits no value", keyword="$ref", pointer="#" + tptr)
            self.rule(self.expr(alts), name=rule_name)
            alts = _Alts(rules=[rule_name], opaque=1)
        self.ref_alts[tptr] = alts
        return alts

    _ref_names: dict[str, str]

    # -- the walk --------------------------------------------------------------------------------------
    def value(self, schema: Any, ptr: str, depth: int) -> _Alts:
        self._tick(depth, ptr)
        if schema is True:
            return _Alts(any=True)
        if schema is False:
            return _Alts()
        if not isinstance(schema, dict):
            raise JSONSchemaError("a schema must be an object or a boolean", keyword="", pointer="#" + ptr)
        keys = {k for k in schema if k in VALIDATION_KEYWORDS}
        if keys == {"$ref"} or (self.legacy and "$ref" in keys):
            return self.ref_value(schema["$ref"], ptr, depth)
        parts = self.flatten(schema, ptr, depth, set())
        if parts is None:
            return _Alts()
        return self.conjunction(parts, depth)

    def flatten(self, schema: Any, ptr: str, depth: int, chain: set[str]) -> list[tuple[dict[str, Any], str]] | None:
        """The schema as a list of plain (no ``allOf``, no ``$ref``) schemas that must all hold; None if false."""
        if schema is True:
            return []
        if schema is False:
            return None
        if not isinstance(schema, dict):
            raise JSONSchemaError("a schema must be an object or a boolean", keyword="", pointer="#" + ptr)
        if depth > self.limits.max_depth:
            self._tick(depth, ptr)
        out: list[tuple[dict[str, Any], str]] = []
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

    def conjunction(self, parts: list[tuple[dict[str, Any], str]], depth: int) -> _Alts:
        if not parts:
            return _Alts(any=True)
        parts = self._split_not_required(parts)
        ptr = parts[-1][1]
        for index, (part, pptr) in enumerate(parts):
            for keyword in ("anyOf", "oneOf"):
                branches = part.get(keyword)
                if branches is None:
                    continue
                if not isinstance(branches, list) or not branches:
                    raise JSONSchemaError(f"{keyword} must be a non-empty array", keyword=keyword, pointer="#" + pptr)
                stripped = {k: v for k, v in part.items() if k != keyword}
                base = parts[:index] + ([(stripped, pptr)] if stripped else []) + parts[index + 1 :]
                if not base and (keyword == "anyOf" or len(branches) == 1):
                    # nothing to distribute: compile each branch on its own (keeps recursive $refs as rules)
                    out = _Alts()
                    for i, branch in enumerate(branches):
                        out.merge(self.value(branch, pointer_join(pptr, keyword, i), depth + 1))
                    return _Alts(any=True) if out.any else out
                expanded: list[list[tuple[dict[str, Any], str]]] = []
                for i, branch in enumerate(branches):
                    bptr = pointer_join(pptr, keyword, i)
                    flat = self.flatten(branch, bptr, depth + 1, set())
                    if flat is not None:
                        expanded.append(base + flat)
                if len(expanded) > self.limits.max_branches:
                    raise JSONSchemaError(
                        f"{keyword} expands to over {self.limits.max_branches} alternatives", keyword=keyword, pointer="#" + pptr
                    )
                if keyword == "oneOf" and len(expanded) > 1 and not self.disjoint(expanded):
                    self.refuse(
                        "oneOf branches may overlap, so a grammar cannot require exactly one to match",
                        "oneOf",
                        pptr,
                    )
                out = _Alts()
                for conj in expanded:
                    out.merge(self.conjunction(conj, depth + 1))
                    self._tick(depth, pptr)
                if out.any:
                    return _Alts(any=True)
                return out
        merged = self.merge(parts)
        return self.plain(merged, [p for _, p in parts], ptr, depth)

    def _split_not_required(self, parts: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
        """``not: {required: [a, b]}`` (also as an ``allOf`` of ``required``): some key is missing, which
        is ``anyOf`` the objects without ``a`` or without ``b`` (each a ``not required`` of one key)."""
        out = []
        for part, pptr in parts:
            keys = self._required_only(part.get("not"))
            if keys is not None and len(keys) >= 2:
                rest = {k: v for k, v in part.items() if k != "not"}
                if rest:
                    out.append((rest, pptr))
                out.append(({"anyOf": [{"not": {"required": [k]}} for k in keys]}, pointer_join(pptr, "not")))
            else:
                out.append((part, pptr))
        return out

    def _required_only(self, neg: Any) -> list[str] | None:
        if not isinstance(neg, dict):
            return None
        keys = {k for k in neg if k in VALIDATION_KEYWORDS}
        if keys == {"required"} and isinstance(neg["required"], list) and all(isinstance(k, str) for k in neg["required"]):
            return list(dict.fromkeys(neg["required"]))
        if keys == {"allOf"} and isinstance(neg["allOf"], list) and neg["allOf"]:
            out: list[str] = []
            for branch in neg["allOf"]:
                sub = self._required_only(branch)
                if sub is None:
                    return None
                out += sub
            return list(dict.fromkeys(out))
        return None

    # -- oneOf disjointness ------------------------------------------------------------------------------
    def disjoint(self, branches: list[list[tuple[dict[str, Any], str]]]) -> bool:
        sigs = [self._signature(b) for b in branches]
        for i in range(len(sigs)):
            for j in range(i + 1, len(sigs)):
                if not self._sig_disjoint(sigs[i], sigs[j]):
                    return False
        return True

    def _signature(self, conj: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
        types: set[str] | None = None
        consts: dict[str, list[Any]] = {}
        required: set[str] = set()
        closed: set[str] | None = None
        values: list[Any] | None = None
        for part, _ in conj:
            t = part.get("type")
            if t is not None:
                ts = {t} if isinstance(t, str) else set(t)
                if "number" in ts:
                    ts.add("integer")
                types = ts if types is None else (types & ts) | ({"integer"} if "integer" in types and "number" in ts else set())
            if "enum" in part and isinstance(part["enum"], list):
                values = part["enum"]
            if "const" in part:
                values = [part["const"]]
            if isinstance(part.get("required"), list):
                required |= {r for r in part["required"] if isinstance(r, str)}
            props = part.get("properties")
            if isinstance(props, dict):
                for k, sub in props.items():
                    if isinstance(sub, dict):
                        if "const" in sub:
                            consts[k] = [sub["const"]]
                        elif isinstance(sub.get("enum"), list):
                            consts[k] = sub["enum"]
                        elif "$ref" in sub and len(sub) == 1:
                            try:
                                target, _ = self.resolve(sub["$ref"], "")
                            except JSONSchemaError:
                                continue
                            if isinstance(target, dict) and "const" in target:
                                consts[k] = [target["const"]]
                            elif isinstance(target, dict) and isinstance(target.get("enum"), list):
                                consts[k] = target["enum"]
                if part.get("additionalProperties") is False and not part.get("patternProperties"):
                    closed = set(props) if closed is None else closed & set(props)
        if values is not None:
            vtypes = {_json_type(v) for v in values}
            types = vtypes if types is None else types & (vtypes | ({"integer"} if "number" in vtypes else set()))
        return {"types": types, "consts": consts, "required": required, "closed": closed, "values": values}

    @staticmethod
    def _sig_disjoint(a: dict[str, Any], b: dict[str, Any]) -> bool:
        if a["types"] is not None and b["types"] is not None:
            ta, tb = set(a["types"]), set(b["types"])
            if "number" in ta:
                ta.add("integer")
            if "number" in tb:
                tb.add("integer")
            if not ta & tb:
                return True
        if a["values"] is not None and b["values"] is not None:
            if not any(_json_equal(x, y) for x in a["values"] for y in b["values"]):
                return True
        only_objects = a["types"] is not None and b["types"] is not None and set(a["types"]) | set(b["types"]) <= {"object"}
        for k in set(a["consts"]) & set(b["consts"]):
            if (k in a["required"] and k in b["required"]) and not any(
                _json_equal(x, y) for x in a["consts"][k] for y in b["consts"][k]
            ):
                return True
        if only_objects:
            if a["closed"] is not None and b["required"] - a["closed"]:
                return True
            if b["closed"] is not None and a["required"] - b["closed"]:
                return True
        return False

    # -- allOf merge -------------------------------------------------------------------------------------
    def merge(self, parts: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
        if len(parts) == 1:
            return dict(parts[0][0])
        merged: dict[str, Any] = {}
        ptr = parts[-1][1]
        for part, pptr in parts:
            for key, val in part.items():
                if key not in merged:
                    merged[key] = val
                    continue
                cur = merged[key]
                if _json_equal(cur, val):
                    continue
                if key == "type":
                    merged[key] = _type_intersection(cur, val)
                elif key in ("minimum", "minLength", "minItems", "minProperties", "minContains"):
                    merged[key] = max(cur, val)
                elif key in ("maximum", "maxLength", "maxItems", "maxProperties", "maxContains"):
                    merged[key] = min(cur, val)
                elif key == "exclusiveMinimum" and not isinstance(val, bool) and not isinstance(cur, bool):
                    merged[key] = max(cur, val)
                elif key == "exclusiveMaximum" and not isinstance(val, bool) and not isinstance(cur, bool):
                    merged[key] = min(cur, val)
                elif key == "required":
                    merged[key] = list(dict.fromkeys(list(cur) + list(val)))
                elif key in ("enum", "const"):
                    merged[key] = cur  # the enum filter checks every part
                elif key == "uniqueItems":
                    merged[key] = bool(cur) or bool(val)
                elif key == "properties":
                    props = dict(cur)
                    for k, sub in val.items():
                        props[k] = {"allOf": [props[k], sub]} if k in props else sub
                    merged[key] = props
                elif key in ("items", "additionalProperties", "propertyNames", "additionalItems", "contains", "not"):
                    if isinstance(cur, list) or isinstance(val, list):
                        self.refuse("cannot merge tuple-form items under allOf", key, pptr)
                        continue
                    merged[key] = {"allOf": [cur, val]}
                else:
                    self.refuse(f"allOf combines two different {key!r} values", key, pptr)
        self._merge_additional(parts, merged, ptr)
        return merged

    def _merge_additional(self, parts: list[tuple[dict[str, Any], str]], merged: dict[str, Any], ptr: str) -> None:
        """additionalProperties of one part applies to the properties the other parts declare."""
        props = merged.get("properties")
        if not isinstance(props, dict):
            return
        pattern_parts = [p for p, _ in parts if p.get("patternProperties")]
        for part, pptr in parts:
            extra = part.get("additionalProperties", True)
            if extra is True or extra == {}:
                continue
            if pattern_parts and (len(pattern_parts) > 1 or pattern_parts[0] is not part):
                self.refuse("allOf mixes patternProperties and additionalProperties", "additionalProperties", pptr)
                return
            own = part.get("properties") or {}
            patterns = list((part.get("patternProperties") or {}).items())
            new_props = dict(props)
            for k in props:
                if k in own or any(_py_search(p, k) for p, _ in patterns):
                    continue
                new_props[k] = {"allOf": [props[k], extra]}
            props = new_props
        merged["properties"] = props

    # -- a single merged schema ----------------------------------------------------------------------------
    def plain(self, schema: dict[str, Any], ptrs: list[str], ptr: str, depth: int) -> _Alts:
        schema = self._normalize_legacy(schema)
        if "enum" in schema or "const" in schema:
            return self.enumeration(schema, ptrs, ptr)
        types = self._types(schema, ptr)
        if "not" in schema:
            types = self._apply_not(schema, types, ptr, depth)
        out = _Alts()
        if "null" in types:
            out.literals.add("null")
        if "boolean" in types:
            out.literals |= {"true", "false"}
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

    def _apply_not(self, schema: dict[str, Any], types: set[str], ptr: str, depth: int) -> set[str]:
        neg = schema["not"]
        nptr = pointer_join(ptr, "not")
        if neg is True or neg == {}:
            return set()
        if isinstance(neg, dict):
            keys = {k for k in neg if k in VALIDATION_KEYWORDS}
            if keys == {"type"}:
                nt = neg["type"]
                removed = {nt} if isinstance(nt, str) else set(nt)
                if "number" in removed:
                    removed |= {"integer"}
                if "integer" in removed and "number" in types:
                    self.refuse("'not integer' on numbers cannot be expressed", "not", nptr)
                return types - removed
            if not keys:
                return set()
            trivial_props = all(v is True or v == {} for v in (neg.get("properties") or {}).values())
            if keys <= {"required", "properties"} and "required" in keys and trivial_props and isinstance(neg["required"], list) and len(neg["required"]) == 1:
                schema.setdefault("__forbid__", []).append(neg["required"][0])
                return types & {"object"}  # every non-object satisfies ``required``, so fails its ``not``
        self.refuse("this 'not' cannot be expressed in a grammar", "not", nptr)
        return types

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

    # -- enum / const ----------------------------------------------------------------------------------------
    def enumeration(self, schema: dict[str, Any], ptrs: list[str], ptr: str) -> _Alts:
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
        check = _ConjunctionCheck.for_schema(self.root, ptrs, schema)
        out = _Alts()
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
                numbers.append((len(json.dumps(v)), _number_literal(v)))
            else:
                out.merge(self.literal_value(v))
            self._tick(0, ptr)
        # one terminal per kind: inside quotes alternatives cannot end a token early; numbers go
        # longest first because lark's lexer takes the first alternative that matches
        if strings:
            body = strings[0] if len(strings) == 1 else "(?:" + "|".join(dict.fromkeys(strings)) + ")"
            out.strings.append(_regex.QUOTE + body + _regex.QUOTE)
        if numbers:
            alts = list(dict.fromkeys(rx for _, rx in sorted(numbers, key=lambda p: -p[0])))
            out.numbers.append(alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")")
        return out

    def literal_value(self, v: Any) -> _Alts:
        if v is None:
            return _Alts(literals={"null"})
        if v is True:
            return _Alts(literals={"true"})
        if v is False:
            return _Alts(literals={"false"})
        if isinstance(v, str):
            return _Alts(strings=[_regex.QUOTE + _regex.canonical_literal(v) + _regex.QUOTE])
        if isinstance(v, (int, float)):
            return _Alts(numbers=[_number_literal(v)])
        return _Alts(rules=[self.rule(self.literal_expr(v), "c")])

    def literal_expr(self, v: Any) -> str:
        if isinstance(v, dict):
            if not v:
                return f"{self.punct('{')} {self.punct('}')}"
            items = [f"{self.key_literal(k)} {self.punct(':')} {self.literal_expr(x)}" for k, x in v.items()]
            return f"{self.punct('{')} " + f" {self.punct(',')} ".join(items) + f" {self.punct('}')}"
        if isinstance(v, list):
            if not v:
                return f"{self.punct('[')} {self.punct(']')}"
            return f"{self.punct('[')} " + f" {self.punct(',')} ".join(self.literal_expr(x) for x in v) + f" {self.punct(']')}"
        return self.expr(self.literal_value(v))

    @staticmethod
    def key_literal(key: str) -> str:
        return json.dumps(json.dumps(key, ensure_ascii=False), ensure_ascii=False)

    # -- numbers -------------------------------------------------------------------------------------------
    def number(self, schema: dict[str, Any], *, integer: bool, ptr: str) -> str | None:
        lo, lo_incl, hi, hi_incl = _bounds(schema, ptr)
        multiple = schema.get("multipleOf")
        if multiple is not None:
            rx = self._multiple_of(multiple, lo, lo_incl, hi, hi_incl, integer, ptr)
            if rx is not False:
                return rx  # type: ignore[return-value]
        if integer:
            ilo = None if lo is None else (math.ceil(lo) if lo_incl or lo != lo.to_integral_value() else int(lo) + 1)
            ihi = None if hi is None else (math.floor(hi) if hi_incl or hi != hi.to_integral_value() else int(hi) - 1)
            if ilo is not None and lo is not None and not lo_incl and Decimal(ilo) <= lo:
                ilo += 1
            if ihi is not None and hi is not None and not hi_incl and Decimal(ihi) >= hi:
                ihi -= 1
            rx = _numbers.int_range(ilo, ihi)
            return None if rx is None else f"{rx}(?:\\.0+)?"  # 5.0 is an integer too
        if lo is None and hi is None:
            return _numbers.NUMBER_ANY
        return _numbers.decimal_range(lo, lo_incl, hi, hi_incl)

    def _multiple_of(
        self, multiple: Any, lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool, integer: bool, ptr: str
    ) -> str | None | bool:
        mptr = pointer_join(ptr, "multipleOf")
        try:
            step = Decimal(str(multiple))
        except InvalidOperation:
            raise JSONSchemaError("multipleOf must be a number", keyword="multipleOf", pointer="#" + mptr) from None
        if step <= 0:
            raise JSONSchemaError("multipleOf must be positive", keyword="multipleOf", pointer="#" + mptr)
        if step == step.to_integral_value() and step == 1 and integer:
            return False
        if step == step.to_integral_value() and lo is not None and hi is not None:
            first = math.ceil(lo / step) * step
            values = []
            v = first
            while v <= hi and len(values) <= 1000:
                if (v > lo or lo_incl) and (v < hi or hi_incl):
                    values.append(int(v))
                v += step
            if len(values) <= 1000:
                alts = sorted({_number_literal(x) for x in values}, key=len, reverse=True)
                return "(?:" + "|".join(alts) + ")" if alts else None
        self.refuse("multipleOf can only be expressed for small integer ranges", "multipleOf", mptr)
        return False

    # -- strings -------------------------------------------------------------------------------------------
    def string(self, schema: dict[str, Any], ptr: str) -> str | None:
        min_len = schema.get("minLength", 0)
        max_len = schema.get("maxLength")
        for key, val in (("minLength", min_len), ("maxLength", max_len)):
            if val is not None and (not isinstance(val, (int, float)) or val < 0 or val != int(val)):
                raise JSONSchemaError(f"{key} must be a non-negative integer", keyword=key, pointer="#" + pointer_join(ptr, key))
        min_len = int(min_len)
        max_len = None if max_len is None else int(max_len)
        if max_len is not None and max_len < min_len:
            return None
        for key, val in (("minLength", min_len), ("maxLength", max_len)):
            if val is not None and val > self.limits.max_string_length:
                raise JSONSchemaError(
                    f"{key} {val:,} is over the limit of {self.limits.max_string_length:,}",
                    keyword=key,
                    pointer="#" + pointer_join(ptr, key),
                )
        fmt = schema.get("format")
        pattern = schema.get("pattern")
        body: str | None = None
        fixed: tuple[int, int | None] | None = None  # length bounds of a fully anchored body
        node: _regex.Node | None = None
        if isinstance(fmt, str) and fmt in _formats.FORMATS:
            body = _formats.FORMATS[fmt]
            node = _regex.parse(body)
            fixed = _regex.length_bounds(node)
        elif isinstance(fmt, str) and fmt in _validator_formats():
            self.refuse(f"format {fmt!r} cannot be expressed in the grammar", "format", pointer_join(ptr, "format"))
        elif isinstance(fmt, str) and fmt in STANDARD_FORMATS:
            # a format the specification defines, but neither the grammar nor the validator checks
            raise JSONSchemaError(
                f"format {fmt!r} can be checked neither by the grammar nor by the validator",
                keyword="format",
                pointer="#" + pointer_join(ptr, "format"),
            )
        if pattern is not None:
            pptr = pointer_join(ptr, "pattern")
            if not isinstance(pattern, str):
                raise JSONSchemaError("pattern must be a string", keyword="pattern", pointer="#" + pptr)
            if body is not None:
                self.refuse("pattern together with format cannot be expressed", "pattern", pptr)
            else:
                try:
                    tr = _regex.translate(pattern)
                except _regex.PatternError as exc:
                    if not _python_compiles(pattern):
                        raise JSONSchemaError(
                            f"pattern cannot be translated ({exc}) nor checked by the validator", keyword="pattern", pointer="#" + pptr
                        ) from None
                    self.refuse(f"pattern cannot be translated: {exc}", "pattern", pptr)
                else:
                    body = tr.regex
                    node = tr.node
                    fixed = tr.length if tr.anchored else None
        if body is None:
            return _regex.QUOTE + _regex.quantify(_regex.JSON_CHAR_FULL, min_len, max_len) + _regex.QUOTE
        if min_len > 0 or max_len is not None:
            if fixed is not None and fixed[0] >= min_len and (max_len is None or (fixed[1] is not None and fixed[1] <= max_len)):
                pass  # the pattern already implies the length bounds
            else:
                narrowed = _narrow_repetition(node, min_len, max_len) if fixed is not None and node is not None else None
                if narrowed is None and fixed is None and node is not None and max_len is not None:
                    narrowed = _whole_match(node, min_len, max_len)
                if narrowed is not None:
                    body = narrowed
                else:
                    self.refuse(
                        "minLength/maxLength together with this pattern or format cannot be expressed",
                        "maxLength" if max_len is not None else "minLength",
                        ptr,
                    )
        return _regex.QUOTE + body + _regex.QUOTE

    # -- arrays --------------------------------------------------------------------------------------------
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

    # -- objects -------------------------------------------------------------------------------------------
    def obj(self, schema: dict[str, Any], ptr: str, depth: int) -> str | None:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise JSONSchemaError("properties must be an object", keyword="properties", pointer="#" + ptr)
        required = schema.get("required") or []
        if not isinstance(required, list):
            raise JSONSchemaError("required must be an array", keyword="required", pointer="#" + ptr)
        required_set = {r for r in required if isinstance(r, str)}
        forbidden = set(schema.get("__forbid__", []))
        if required_set & forbidden:
            return None
        patterns = schema.get("patternProperties") or {}
        for p in patterns:
            _checkable_pattern(p, pointer_join(ptr, "patternProperties", p))
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        if names is not None and names is not True and names != {}:
            if names is False:
                if required_set:
                    return None
                return self.rule(f"{self.punct('{')} {self.punct('}')}", "o")
            self.refuse("propertyNames cannot be expressed in a grammar", "propertyNames", pointer_join(ptr, "propertyNames"))
        members: list[_Member] = []
        colon = self.punct(":")
        declared = list(props)
        for name in declared + [r for r in required if isinstance(r, str) and r not in props]:
            if name in forbidden:
                continue
            if name in props:
                sub: Any = props[name]
                sptr = pointer_join(ptr, "properties", name)
            else:
                sub, sptr = self._undeclared_schema(name, patterns, additional, ptr)
            matching = [p for p in patterns if _py_search(p, name, ptr)]
            if matching and name in props:
                sub = {"allOf": [sub] + [patterns[p] for p in matching]}
            alts = self.value(sub, sptr, depth + 1)
            if alts.empty():
                if name in required_set:
                    return None
                continue
            members.append(_Member(self.key_literal(name), self.expr(alts), name in required_set))
        if self.declared_keys and props and "additionalProperties" not in schema and not patterns:
            # a model writing a config is not invited to invent keys: an object that declares its
            # properties and says nothing of others gets only those (OpenAI's and XGrammar's strict
            # mode); the validator still accepts the extra keys the schema allows
            additional = False
        extra = self._extra_member(props, patterns, additional, forbidden, ptr, depth)
        min_p = schema.get("minProperties")
        max_p = schema.get("maxProperties")
        n_required = sum(m.required for m in members)
        nonempty = min_p == 1 and n_required == 0  # some member, whichever: the first one is not optional
        if min_p is not None and min_p > n_required and not nonempty:
            self.refuse("minProperties beyond the required properties cannot be expressed", "minProperties", ptr)
        if max_p is not None and (extra is not None or max_p < len(members)):
            if max_p < n_required:
                return None
            self.refuse("maxProperties cannot be expressed for this object", "maxProperties", ptr)
        if self.widen and len(members) > 1:
            # declared order is one spelling among n!; widen mode admits every order (one repeated
            # alternation, linear in n) and leaves required keys and duplicates to the validator
            self.widenings.append(("properties", "#" + pointer_join(ptr, "properties")))
            return self._any_order_rule(members, extra, nonempty)
        return self._object_rule(members, extra, nonempty)

    def _any_order_rule(self, members: list[_Member], extra: _Member | None, nonempty: bool = False) -> str | None:
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        pairs = [m.expr(colon) for m in members + ([extra] if extra else [])]
        pair = self.rule(" | ".join(pairs), "p")  # called for two or more members
        return self.rule(f"{lb} {pair} ({comma} {pair})* {rb}" if nonempty else f"{lb} ({pair} ({comma} {pair})*)? {rb}", "o")

    def _undeclared_schema(self, name: str, patterns: dict[str, Any], additional: Any, ptr: str) -> tuple[Any, str]:
        matching = [p for p in patterns if _py_search(p, name, ptr)]
        if matching:
            if len(matching) == 1:
                return patterns[matching[0]], pointer_join(ptr, "patternProperties", matching[0])
            return {"allOf": [patterns[p] for p in matching]}, pointer_join(ptr, "patternProperties")
        return additional, pointer_join(ptr, "additionalProperties")

    def _extra_member(
        self, props: dict[str, Any], patterns: dict[str, Any], additional: Any, forbidden: set[str], ptr: str, depth: int
    ) -> _Member | None:
        colon = self.punct(":")
        excluded = sorted(set(props) | forbidden)
        if patterns:
            pptr = pointer_join(ptr, "patternProperties")
            if additional is not False:
                distinct = {json.dumps(v, sort_keys=True) for v in patterns.values()}
                universal = [p for p in patterns if _universal_pattern(p)]
                if all(v is True or v == {} for v in patterns.values()) and (additional is True or additional == {}):
                    patterns = {}
                elif universal and len(distinct) == 1:
                    # every key matches: additionalProperties never applies, every extra key takes the pattern's schema
                    additional = patterns[universal[0]]
                    patterns = {}
                    ptr_extra = pointer_join(pptr, universal[0])
                    return self._open_member(excluded, additional, ptr_extra, ptr, depth)
                else:
                    split = self._class_run_split(patterns, excluded, additional, pptr, depth)
                    if split is not False:
                        return split
                    self.refuse("patternProperties together with additionalProperties cannot be expressed", "patternProperties", pptr)
                    patterns = {}
                    additional = True  # widened: a key may take either schema, the validator tells which
            else:
                distinct = {json.dumps(v, sort_keys=True) for v in patterns.values()}
                if len(distinct) > 1:
                    self.refuse("several patternProperties with different schemas may overlap", "patternProperties", pptr)
                clashes = [name for name in props if any(_py_search(p, name, ptr) for p in patterns)]
                if clashes:
                    self.refuse(
                        f"property {clashes[0]!r} also matches a patternProperties pattern", "patternProperties", pptr
                    )
                bodies = []
                for p in patterns:
                    try:
                        bodies.append(_regex.translate(p).regex)
                    except _regex.PatternError as exc:
                        self.refuse(f"pattern cannot be translated: {exc}", "patternProperties", pointer_join(pptr, p))
                        return None
                if not bodies:
                    return None
                first = next(iter(patterns))
                value = patterns[first] if len(distinct) == 1 else True
                alts = self.value(value, pointer_join(pptr, first), depth + 1)
                if alts.empty():
                    return None
                key = self.terminal(_regex.QUOTE + ("(?:" + "|".join(bodies) + ")" if len(bodies) > 1 else bodies[0]) + _regex.QUOTE, "K")
                return _Member(key, self.expr(alts), False)
        if additional is False:
            return None
        return self._open_member(excluded, additional, pointer_join(ptr, "additionalProperties"), ptr, depth)

    def _class_run_split(
        self, patterns: dict[str, Any], excluded: list[str], additional: Any, pptr: str, depth: int
    ) -> _Member | None | bool:
        """One pattern next to additionalProperties, of a shape whose complement is a small regex:
        ``^[C]+$`` / ``^[C]*$`` (whole key in C; declared names must be such keys too) or an unanchored
        ``[C]`` (some character in C; no declared names). Keys matching take the pattern's schema, the
        others the additional schema: two disjoint key terminals, so exact. Keys are spelt without
        escapes, as for any additional property. False: not one of these shapes."""
        if len(patterns) != 1:
            return False
        (pattern, pschema), = patterns.items()
        run = _class_run(pattern)
        if run is None:
            return False
        chars, lo, whole = run
        plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
        inside, outside = _regex.intersect(plain, chars), _regex.minus(plain, chars)
        tail = _regex.char_class(plain) + "*"
        if whole:
            if any(len(name) < lo or any(not _regex.contains(inside, ord(c)) for c in name) for name in excluded):
                return False  # a declared name that is not such a key would need excluding from the rest
            if not inside:
                return False
            key_in = _exclusion_regex(excluded + ([""] if lo else []), inside)
            key_out: str | None = (tail + _regex.char_class(outside) + tail) if outside else None
            if lo:
                key_out = f"(?:{key_out})?" if key_out else ""
        else:
            if excluded or not inside:
                return False
            key_in = tail + _regex.char_class(inside) + tail
            key_out = _regex.char_class(outside) + "*" if outside else ""
        colon = self.punct(":")
        pairs = []
        p_alts = self.value(pschema, pointer_join(pptr, pattern), depth + 1)
        if not p_alts.empty() and key_in:
            key = self.terminal(_regex.QUOTE + key_in + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(p_alts)}")
        a_alts = self.value(additional, pptr.rsplit("/", 1)[0] + "/additionalProperties", depth + 1)
        if not a_alts.empty() and key_out is not None:
            key = self.terminal(_regex.QUOTE + key_out + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(a_alts)}")
        if not pairs:
            return None
        if len(pairs) == 1:
            return _Member("", "", False, pair=pairs[0])
        return _Member("", "", False, pair=self.rule(" | ".join(pairs), "m"))

    def _open_member(self, excluded: list[str], value: Any, vptr: str, ptr: str, depth: int) -> _Member | None:
        """Any key but the ``excluded`` names (spelt without escapes), with a value conforming to ``value``."""
        alts = self.value(value, vptr, depth + 1)
        if alts.empty():
            return None
        exclusion = _exclusion_regex(excluded) if excluded else _regex.JSON_CHAR_FULL + "*"
        if len(exclusion) > MAX_EXCLUSION_CHARS:
            # lark's LALR lexer recompiles this regex in every state it may appear in: past this size
            # building and parsing take seconds, so the exclusion is left to the validator (widen only)
            self.refuse(
                f"additional properties next to {len(excluded)} declared ones make too large a key regex",
                "additionalProperties",
                ptr,
            )
            exclusion = _regex.JSON_CHAR_FULL + "*"
            self.needs_earley = True  # this key regex overlaps the declared keys
        key_rx = _regex.QUOTE + exclusion + _regex.QUOTE
        return _Member(self.terminal(key_rx, "K"), self.expr(alts), False)

    def _object_rule(self, members: list[_Member], extra: _Member | None, nonempty: bool = False) -> str | None:
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        n = len(members)
        base = f"o{len(self.rules)}"
        pair = [f"{m.key} {colon} {m.value}" for m in members]
        extra_pair = extra.expr(colon) if extra else ""
        optional_from = [True] * (n + 1)  # optional_from[i]: members i.. are all optional
        for i in range(n - 1, -1, -1):
            optional_from[i] = optional_from[i + 1] and not members[i].required
        if extra is None and all(m.required for m in members):
            if nonempty and not members:
                return None
            inner = f" {comma} ".join(pair)
            return self.rule(f"{lb} {inner} {rb}" if inner else f"{lb} {rb}", "o")

        def ref(name: str | None, nullable: bool) -> str:
            if name is None:
                return ""
            return f"{name}?" if nullable else name

        # c[i]: after some member, the next declared member present is i or later (no extras here)
        c: list[str | None] = [None] * (n + 1)
        b: list[str | None] = [None] * (n + 1)
        for i in range(n, -1, -1):
            if i < n:
                alts = [f"{comma} {pair[i]} {ref(b[i + 1], optional_from[i + 1])}".strip()]
                if not members[i].required and c[i + 1] is not None:
                    alts.append(c[i + 1])  # type: ignore[arg-type]
                c[i] = self.rule(" | ".join(alts), name=f"{base}_c{i}")
            b_alts = []
            if extra is not None:
                b_alts.append(f"{comma} {extra_pair} {base}_b{i}?" if optional_from[i] else f"{comma} {extra_pair} {base}_b{i}")
            if c[i] is not None:
                b_alts.append(c[i])  # type: ignore[arg-type]
            if b_alts:
                b[i] = self.rule(" | ".join(b_alts), name=f"{base}_b{i}")
        # first member: the same, without the leading comma
        first_alts: list[str] = []
        if extra is not None:
            first_alts.append(f"{extra_pair} {ref(b[0], optional_from[0])}".strip())
        for i in range(n):
            first_alts.append(f"{pair[i]} {ref(b[i + 1], optional_from[i + 1])}".strip())
            if members[i].required:
                break
        if not first_alts:
            return None if nonempty else self.rule(f"{lb} {rb}", "o")
        first = self.rule(" | ".join(first_alts), name=f"{base}_first")
        body = f"{lb} {first}? {rb}" if optional_from[0] and not nonempty else f"{lb} {first} {rb}"
        return self.rule(body, name=base)


# -- helpers -----------------------------------------------------------------------------------------------
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


def _exclusion_regex(excluded: list[str], alphabet: _regex.Intervals | None = None) -> str:
    """Regex for string contents spelling any key except those in ``excluded``.

    Such keys are written without escapes (a documented narrowing): that keeps one spelling per key,
    so excluding the declared names is exact, and keeps the regex small. The complement of the trie
    of excluded names is written as two tries sharing no tail: a walk down the trie that leaves it by
    one character no child starts with (then any tail), or a node of the trie that ends no name.
    """
    plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
    if alphabet is not None:
        plain = _regex.intersect(plain, alphabet)
    trie: dict[str, Any] = {}
    for word in excluded:
        if any(not _regex.contains(plain, ord(ch)) for ch in word):
            continue  # a name with an escaped character can never be spelt by this regex anyway
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def group(alts: list[str]) -> str:
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    def leave(node: dict[str, Any]) -> str | None:
        """Walks that end with the first character off the trie."""
        children = sorted(k for k in node if k)
        alts = [_regex.literal_char(ord(ch)) + sub for ch in children if (sub := leave(node[ch])) is not None]
        other = _regex.minus(plain, _regex.chars("".join(children)))
        if other:
            alts.append(_regex.char_class(other))
        return group(alts) if alts else None

    def inner(node: dict[str, Any]) -> str | None:
        """Nodes (relative to ``node``) that end no excluded name."""
        children = sorted(k for k in node if k)
        alts = [_regex.literal_char(ord(ch)) + sub for ch in children if (sub := inner(node[ch])) is not None]
        if "" in node:
            return group(alts) if alts else None
        if not alts:
            return ""
        return "(?:" + "|".join(alts) + ")?"

    tail = _regex.char_class(plain) + "*"
    off = leave(trie)
    on = inner(trie)
    out = [off + tail] if off is not None else []
    if on == "":
        return "(?:" + out[0] + ")?" if out else ""
    if on is not None:
        out.append(on)
    return group(out) if len(out) == 1 else "(?:" + "|".join(out) + ")"


def _universal_pattern(pattern: str) -> bool:
    """Whether an ECMA-262 pattern (search semantics) matches every string: some branch can match the
    empty string and is not anchored at both ends (``.*``, ``^``, ``a*``, ``""``)."""
    try:
        tree = _regex.parse(pattern)
    except _regex.PatternError:
        return False
    for branch in _regex._branches(tree):
        try:
            start, body, end = _regex._anchors(branch)
        except _regex.PatternError:
            return False
        if not (start and end) and _regex.length_bounds(body)[0] == 0 and not _regex.has_anchor(body):
            return True
    return False


def _class_run(pattern: str) -> tuple[_regex.Intervals, int, bool] | None:
    """(C, lo, True) for ``^[C]+$`` (lo 1) or ``^[C]*$`` (lo 0); (C, 1, False) for an unanchored
    ``[C]`` / ``[C]+`` / ``[C]{1,n}`` (the key contains a character in C); else None."""
    try:
        tree = _regex.parse(pattern)
    except _regex.PatternError:
        return None
    branches = _regex._branches(tree)
    if len(branches) != 1:
        return None
    try:
        start, body, end = _regex._anchors(branches[0])
    except _regex.PatternError:
        return None
    body = _regex._unwrap(body)
    if not start and not end:
        if isinstance(body, _regex.CharNode):
            return body.chars, 1, False
        if isinstance(body, _regex.RepNode) and body.lo == 1 and isinstance(body.body, _regex.CharNode):
            return body.body.chars, 1, False
        return None
    if not (start and end) or not isinstance(body, _regex.RepNode) or body.hi is not None or body.lo > 1:
        return None
    if not isinstance(body.body, _regex.CharNode):
        return None
    return body.body.chars, body.lo, True


def _narrow_repetition(node: _regex.Node | None, min_len: int, max_len: int | None) -> str | None:
    """``^A C{a,b} B$`` (A and B of fixed length F, C one character class) with length bounds becomes
    ``A C{max(a,min-F),min(b,max-F)} B``; other shapes: None."""
    while isinstance(node, _regex.SeqNode):
        items = [i for i in node.items if not isinstance(i, _regex.AnchorNode)]
        if len(items) != 1:
            break
        node = items[0]
    if node is None:
        return None
    items = [i for i in node.items if not isinstance(i, _regex.AnchorNode)] if isinstance(node, _regex.SeqNode) else [node]
    reps = [k for k, i in enumerate(items) if isinstance(i, _regex.RepNode) and isinstance(i.body, _regex.CharNode) and i.lo != i.hi]
    if len(reps) != 1:
        return None
    k = reps[0]
    fixed = 0
    for j, item in enumerate(items):
        if j != k:
            a, b = _regex.length_bounds(item)
            if a != b:
                return None
            fixed += a
    rep = items[k]
    assert isinstance(rep, _regex.RepNode)
    lo = max(rep.lo, min_len - fixed)
    hi = rep.hi if max_len is None else (max_len - fixed if rep.hi is None else min(rep.hi, max_len - fixed))
    if hi is not None and hi < lo:
        return None
    narrowed = _regex.SeqNode(tuple(items[:k]) + (_regex.RepNode(rep.body, lo, hi),) + tuple(items[k + 1 :]))
    return _regex.emit(narrowed)


def _whole_match(node: _regex.Node, min_len: int, max_len: int) -> str | None:
    """An unanchored pattern of one branch whose matches all have length ``max_len``: a string no longer
    than that contains a match only by being one (``[a-z]{3}`` with maxLength 3 is ``^[a-z]{3}$``)."""
    if _regex.has_anchor(node) or len(_regex._branches(node)) != 1:
        return None
    if _regex.length_bounds(node) != (max_len, max_len) or min_len > max_len:
        return None
    return _regex.emit(node)


def _number_literal(v: int | float) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        raise JSONSchemaError("enum contains a non-finite number", keyword="enum")
    if isinstance(v, bool):
        raise AssertionError
    d = Decimal(str(v)) if isinstance(v, float) else Decimal(v)
    if d == d.to_integral_value():
        text = str(int(d))
        rx = text.replace("-", "\\x2d") + "(?:\\.0+)?"
        return rx
    text = format(d.normalize(), "f")
    return text.replace("-", "\\x2d").replace(".", "\\.") + "0*"


def _bounds(schema: dict[str, Any], ptr: str) -> tuple[Decimal | None, bool, Decimal | None, bool]:
    def num(key: str) -> Decimal | None:
        v = schema.get(key)
        if v is None or isinstance(v, bool):
            return None
        if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise JSONSchemaError(f"{key} must be a number", keyword=key, pointer="#" + pointer_join(ptr, key))
        return Decimal(str(v)) if isinstance(v, float) else Decimal(v)

    lo, lo_incl = num("minimum"), True
    elo = num("exclusiveMinimum")
    if elo is not None and (lo is None or elo >= lo):
        lo, lo_incl = elo, False
    hi, hi_incl = num("maximum"), True
    ehi = num("exclusiveMaximum")
    if ehi is not None and (hi is None or ehi <= hi):
        hi, hi_incl = ehi, False
    return lo, lo_incl, hi, hi_incl


def _type_intersection(a: Any, b: Any) -> list[str]:
    sa = {a} if isinstance(a, str) else set(a)
    sb = {b} if isinstance(b, str) else set(b)
    out = sa & sb
    if "number" in sa and "integer" in sb or "integer" in sa and "number" in sb:
        out.add("integer")
    return sorted(out)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v == int(v) else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _py_search(pattern: str, name: str, ptr: str = "") -> bool:
    """Whether an ECMA-262 pattern matches ``name`` (search semantics), via the translated regex."""
    try:
        return _compiled_pattern(pattern).search(name) is not None
    except (re.error, _regex.PatternError):
        raise JSONSchemaError(
            f"pattern {pattern!r} cannot be used", keyword="patternProperties", pointer="#" + pointer_join(ptr, "patternProperties")
        ) from None


def _checkable_pattern(pattern: str, ptr: str) -> None:
    """Refuse (in either mode) a pattern the validator could not check: nothing would enforce it."""
    from ._validate import _ecma_pattern

    try:
        _ecma_pattern(pattern)
    except (re.error, OverflowError, RecursionError):
        raise JSONSchemaError(f"pattern {pattern!r} can be checked neither by the grammar nor by the validator", keyword="patternProperties", pointer="#" + ptr) from None


def _python_compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        tr = _regex.translate(pattern)
        compiled = re.compile(_regex.QUOTE + tr.regex + _regex.QUOTE)
        compiled = _KeyMatcher(compiled)  # type: ignore[assignment]
        _PATTERN_CACHE[pattern] = compiled
    return compiled


class _KeyMatcher:
    """Matches a decoded key against a translated pattern by matching its canonical JSON spelling."""

    def __init__(self, rx: re.Pattern[str]) -> None:
        self.rx = rx

    def search(self, name: str) -> object | None:
        return self.rx.fullmatch(json.dumps(name, ensure_ascii=False))


class _ConjunctionCheck:
    """Validates candidate ``enum`` values against every part of a conjunction (by pointer into the root)."""

    def __init__(self, root: Any, ptrs: Iterable[str]) -> None:
        from ._validate import validator_for_pointers

        self._validator = validator_for_pointers(root, list(ptrs))

    @classmethod
    def for_schema(cls, root: Any, ptrs: list[str], merged: dict[str, Any]) -> _ConjunctionCheck | _TypeCheck:
        if len(ptrs) == 1 and set(merged) <= {"enum", "const", "type"} and not {"enum", "const"} <= set(merged):
            return _TypeCheck(merged.get("type"))
        return cls(root, ptrs)

    def ok(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))


class _TypeCheck:
    """The only constraint besides the enum itself is ``type``: no validator needed."""

    def __init__(self, types: Any) -> None:
        self.types = None if types is None else ({types} if isinstance(types, str) else set(types))

    def ok(self, value: Any) -> bool:
        if self.types is None:
            return True
        t = _json_type(value)
        return t in self.types or (t == "integer" and "number" in self.types)


def _validator_formats() -> frozenset[str]:
    from ._validate import asserted_formats

    return asserted_formats()


_Compiler._ref_names = {}  # replaced per instance in compile()


def compile_schema(
    schema: Any, *, compact: bool, widen: bool, limits: Limits, declared_keys: bool = True
) -> tuple[str, list[tuple[str, str]], bool]:
    """Return (grammar text, widenings, needs an Earley parser in lark)."""
    compiler = _Compiler(schema, compact=compact, widen=widen, limits=limits, declared_keys=declared_keys)
    compiler._ref_names = {}
    text = compiler.compile()
    return text, compiler.widenings, compiler.needs_earley
