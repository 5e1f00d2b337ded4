"""JSON Schema -> Lark grammar text (the subset lark-python and llguidance both read).

One ``_Compiler`` walks the schema once. Each subschema becomes ``_Alts``: the terminals and rules a
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
keys is large, see ``MAX_EXCLUSION_CHARS``). Numbers with bounds are written
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
from typing import Any
from urllib.parse import unquote

from ..errors import JSONSchemaError
from . import _automaton, _formats, _negate, _numbers, _regex

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
"""Largest key-exclusion regex written where additional properties may come between the declared ones
(about 80 declared names): lark's contextual lexer compiles it once per position, and beyond this size
lark-python needs seconds to build and first use the generation grammar. A larger one is written with
the additional properties before the declared ones (two lexer states), up to the next bound."""
MAX_LEADING_EXCLUSION_CHARS = 120_000
"""Largest key-exclusion regex written at all (additional properties first)."""
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
    leading: bool = False  # additional members come before the declared ones (a large key regex)

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
        self.string_memo: dict[tuple[Any, ...], str | None | Exception] = {}
        self.deadline = time.monotonic() + limits.seconds
        self.size = 0
        schema_uri = root.get("$schema", "") if isinstance(root, dict) else ""
        self.legacy = any(d in str(schema_uri) for d in ("draft-03", "draft-04", "draft-05", "draft-06", "draft-07"))
        self.draft4 = any(d in str(schema_uri) for d in ("draft-03", "draft-04"))
        self.draft7_or_older = self.legacy  # the draft's validator knows "dependencies", not "dependentRequired"
        self.knows_if = not any(d in str(schema_uri) for d in ("draft-03", "draft-04", "draft-05", "draft-06"))
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
        node = _at_pointer(self.root, fragment)
        if node is _NOWHERE:
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
        rewritten = self._rewrite(parts)
        if rewritten is None:
            return _Alts()
        parts = rewritten
        if not parts:
            return _Alts(any=True)
        if self._unsatisfiable(parts):
            return _Alts()
        ptr = parts[-1][1]
        for index, (part, pptr) in enumerate(parts):
            for keyword in ("anyOf", "oneOf"):
                branches = part.get(keyword)
                if branches is None:
                    continue
                if not isinstance(branches, list) or not branches:
                    raise JSONSchemaError(f"{keyword} must be a non-empty array", keyword=keyword, pointer="#" + pptr)
                rewritten = part.get(_REWRITTEN)
                stripped = {k: v for k, v in part.items() if k not in (keyword, _REWRITTEN)}
                base = parts[:index] + ([(stripped, pptr)] if stripped else []) + parts[index + 1 :]
                if rewritten is not None and self.widen:
                    # a keyword stated exactly through anyOf: if that fails, widen mode drops the keyword
                    mark = len(self.widenings)
                    try:
                        return self.conjunction(base + [({keyword: branches}, pptr)], depth + 1)
                    except JSONSchemaError:
                        del self.widenings[mark:]  # rules made on the way stay unused, and are left out
                        self.widenings.append((rewritten, "#" + pptr))
                        return self.conjunction(base, depth + 1) if base else _Alts(any=True)
                if not base and (keyword == "anyOf" or len(branches) == 1):
                    # nothing to distribute: compile each branch on its own (keeps recursive $refs as rules)
                    out = _Alts()
                    for i, branch in enumerate(branches):
                        out.merge(self.value(branch, pointer_join(pptr, keyword, i), depth + 1))
                    return _Alts(any=True) if out.any else out
                expanded: list[list[tuple[dict[str, Any], str]]] = []
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
                    expanded = self._exactly_one(expanded, raw, pptr)
                out = _Alts()
                for conj in expanded:
                    out.merge(self.conjunction(conj, depth + 1))
                    self._tick(depth, pptr)
                if out.any:
                    return _Alts(any=True)
                return out
        merged = self.merge(parts)
        return self.plain(merged, parts, ptr, depth)

    # -- keywords rewritten as anyOf of what the grammar states ---------------------------------------------
    def negation(self, schema: Any) -> list[Any] | None:
        """The complement of ``schema`` as a union of schemas (see ``_negate``), or None."""
        return _negate.negate(
            schema,
            resolve=lambda ref: self.resolve(ref, "")[0],
            legacy=self.legacy,
            draft4=self.draft4,
            keywords=VALIDATION_KEYWORDS,
            asserted_formats=_validator_formats(),
            exact_formats=frozenset(_formats.EXACT_PATTERNS),
        )

    def _exactly_one(
        self, expanded: list[list[tuple[dict[str, Any], str]]], raw: list[tuple[Any, str]], pptr: str
    ) -> list[list[tuple[dict[str, Any], str]]]:
        """``oneOf``: branch i and none of the branches it may overlap. Provably disjoint pairs need
        nothing; for the others the branch is conjoined with the complement of each overlapping one."""
        sigs = [self._signature(conj) for conj in expanded]
        pairs: dict[tuple[int, int], bool] = {}
        for i in range(len(expanded)):
            for j in range(i + 1, len(expanded)):
                pairs[i, j] = pairs[j, i] = not (
                    self._sig_disjoint(sigs[i], sigs[j]) or self._disjoint_by_values(expanded[i], expanded[j])
                )
        overlaps = [[j for j in range(len(expanded)) if j != i and pairs[i, j]] for i in range(len(expanded))]
        if not any(overlaps):
            return expanded
        complements: dict[int, list[Any] | None] = {}
        out: list[list[tuple[dict[str, Any], str]]] = []
        total = 0
        for i, conj in enumerate(expanded):
            extra: list[tuple[dict[str, Any], str]] = []
            size = 1
            empty = False
            for j in overlaps[i]:
                shared = self._shared_types(expanded[i], expanded[j], sigs[i], sigs[j])
                if shared is not None:
                    # the branches meet only on whole types (both admit every null, say): branch i
                    # alone is branch i without those types
                    extra.append(({"not": {"type": sorted(shared)}}, pointer_join(raw[j][1], "not")))
                    continue
                if j not in complements:
                    complements[j] = self.negation(raw[j][0])
                negs = complements[j]
                if negs is None:
                    self.refuse(
                        "oneOf branches may overlap, and the complement of one is not stated in a grammar", "oneOf", pptr
                    )
                    return expanded  # widened: the branches as anyOf, the validator requires exactly one
                if not negs:
                    empty = True  # branch j admits everything: no value is in branch i alone
                    break
                size *= len(negs)
                extra.append(({"anyOf": negs}, pointer_join(raw[j][1], "not")))
            if empty:
                continue
            total += size
            out.append(conj + extra)
        if total > self.limits.max_branches:
            self.refuse(
                f"oneOf with overlapping branches expands to over {self.limits.max_branches} alternatives", "oneOf", pptr
            )
            return expanded
        return out

    _KEYWORDS_BY_TYPE = {
        "string": {"minLength", "maxLength", "pattern", "format"},
        "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
        "array": {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
                  "minContains", "maxContains", "unevaluatedItems"},
        "object": {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                   "minProperties", "maxProperties", "dependencies", "dependentRequired", "dependentSchemas",
                   "unevaluatedProperties"},
    }

    def _shared_types(
        self, a: list[tuple[dict[str, Any], str]], b: list[tuple[dict[str, Any], str]], sig_a: dict[str, Any], sig_b: dict[str, Any]
    ) -> set[str] | None:
        """Two oneOf branches that share only whole types: on every type both admit, either both admit
        every value of it (no keyword of either side speaks of that type) or they are disjoint on it
        (objects told apart by a required discriminator, say). Returns those whole types ("integer" for
        the integers when one side admits only integers), or None when some overlap is partial."""
        def kinds(conj: list[tuple[dict[str, Any], str]]) -> set[str] | None:
            found: set[str] = set()
            for part, _ in conj:
                for key in part:
                    if key in ("type",) or key.startswith("__"):
                        continue
                    if key == "format" and part[key] not in _validator_formats():
                        continue
                    if key == "uniqueItems" and part[key] is not True:
                        continue
                    kind = next((t for t, ks in self._KEYWORDS_BY_TYPE.items() if key in ks), None)
                    if kind is None and key in VALIDATION_KEYWORDS:
                        return None  # enum, const, not, anyOf...: speaks of every type
                    if kind is not None:
                        found.add(kind)
            return found

        ka, kb = kinds(a), kinds(b)
        if ka is None or kb is None:
            return None
        everything = {"null", "boolean", "number", "string", "array", "object"}

        def family(sig: dict[str, Any]) -> set[str]:
            types = set(everything if sig["types"] is None else sig["types"])
            return types

        ta, tb = family(sig_a), family(sig_b)
        shared: set[str] = set()
        for t in ("null", "boolean", "string", "array"):
            if t in ta and t in tb:
                if t in ka or t in kb:
                    return None
                shared.add(t)
        num_a = "number" in ta or "integer" in ta
        num_b = "number" in tb or "integer" in tb
        if num_a and num_b:
            if "number" in ka or "number" in kb:
                return None
            shared.add("number" if "number" in ta and "number" in tb else "integer")
        if "object" in ta and "object" in tb:
            objects = (dict(sig_a, types=["object"]), dict(sig_b, types=["object"]))
            if not self._sig_disjoint(*objects):
                if "object" in ka or "object" in kb:
                    return None
                shared.add("object")
        return shared

    def _objects_only(self, conj: list[tuple[dict[str, Any], str]]) -> bool:
        types = self._signature(conj)["types"]
        return types is not None and set(types) <= {"object"}

    def _disjoint_by_values(self, a: list[tuple[dict[str, Any], str]], b: list[tuple[dict[str, Any], str]]) -> bool:
        """Disjoint because one side lists its values (``enum`` / ``const``, of the whole value or of a
        property both sides must have) and the validator finds none of them on the other side."""
        def listed(parts: list[Any]) -> list[Any] | None:
            for part in parts:
                if not isinstance(part, dict):
                    continue
                if "const" in part:
                    return [part["const"]]
                if isinstance(part.get("enum"), list):
                    return part["enum"]
                if isinstance(part.get("$ref"), str):
                    try:
                        target = self.resolve(part["$ref"], "")[0]
                    except JSONSchemaError:
                        continue
                    found = listed([target])
                    if found is not None:
                        return found
                if isinstance(part.get("allOf"), list):
                    found = listed(part["allOf"])
                    if found is not None:
                        return found
            return None

        def none_valid(values: list[Any], schemas: list[Any]) -> bool:
            if len(values) > 64:
                return False
            from ._validate import validator_for_pointers

            try:
                check = validator_for_pointers(self.root, [{"allOf": schemas}])
                return not any(check.is_valid(v) for v in values)
            except Exception:  # a reference the validator cannot follow: not provably disjoint
                return False

        for x, y in ((a, b), (b, a)):
            values = listed([p for p, _ in x])
            if values is not None and none_valid(values, [p for p, _ in x + y]):
                return True
        if not any(self._objects_only(x) for x in (a, b)):
            return False  # both admit some non-object, which no property keyword refuses
        required = set()
        for part, _ in a + b:
            if isinstance(part.get("required"), list):
                required |= {r for r in part["required"] if isinstance(r, str)}
        for key in sorted(required):
            subs_a = [p["properties"][key] for p, _ in a if isinstance(p.get("properties"), dict) and key in p["properties"]]
            subs_b = [p["properties"][key] for p, _ in b if isinstance(p.get("properties"), dict) and key in p["properties"]]
            if not subs_a or not subs_b:
                continue
            for x_subs in (subs_a, subs_b):
                values = listed(x_subs)
                if values is not None and none_valid(values, subs_a + subs_b):
                    return True
        return False

    def _rewrite(self, parts: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]] | None:
        """``not`` (beyond the forms ``plain`` states directly), ``if``/``then``/``else`` and the
        dependency keywords become ``anyOf`` parts, which ``conjunction`` distributes. None: the
        conjunction admits nothing (``not`` of a schema every value meets)."""
        out: list[tuple[dict[str, Any], str]] = []
        for original, pptr in parts:
            part = dict(original)
            added: list[tuple[dict[str, Any], str]] = []
            for key in ("dependencies", "dependentRequired", "dependentSchemas"):
                deps = part.get(key)
                if not isinstance(deps, dict) or not deps or (key == "dependencies") != self.draft7_or_older:
                    continue  # a draft whose validator ignores the keyword: plain() refuses it
                new: list[tuple[dict[str, Any], str]] = []
                for name, dep in deps.items():
                    if isinstance(dep, list):
                        if key == "dependentSchemas" or not all(isinstance(d, str) for d in dep):
                            break
                        holds: Any = {"required": [name, *dep]}
                    elif key == "dependentRequired":
                        break
                    else:
                        holds = {"allOf": [{"required": [name]}, dep]}
                    new.append(({"anyOf": [{"not": {"required": [name]}}, holds], _REWRITTEN: key}, pointer_join(pptr, key, name)))
                else:
                    del part[key]
                    added += new
            if "if" in part and self.knows_if:
                negs = self.negation(part["if"])
                if negs is not None:
                    cond = part.pop("if")
                    then, other = part.pop("then", True), part.pop("else", True)
                    branches = [{"allOf": [cond, then]}] + [{"allOf": [n, other]} for n in negs]
                    added.append(({"anyOf": branches, _REWRITTEN: "if"}, pointer_join(pptr, "if")))
            if "not" in part and not self._plain_not(part["not"]):
                negs = self.negation(part["not"])
                if negs is not None:
                    if not negs:
                        return None
                    del part["not"]
                    added.append(({"anyOf": negs, _REWRITTEN: "not"}, pointer_join(pptr, "not")))
            if added and math.prod(len(a["anyOf"]) for a, _ in added) > self.limits.max_branches:
                part, added = dict(original), []  # left as they were: refused (or widened) in plain()
            if not added:
                out.append((part, pptr))
                continue
            if any(k in VALIDATION_KEYWORDS or k.startswith("__") for k in part):
                out.append((part, pptr))
            out += added
        return out

    def _plain_not(self, neg: Any) -> bool:
        """A ``not`` that ``plain`` states directly: of ``type``, of one ``required`` key, of an
        ``enum`` / ``const`` of strings, booleans and null, or an ``anyOf`` of those."""
        if neg is True or neg == {}:
            return True
        if not isinstance(neg, dict):
            return False
        keys = {k for k in neg if k in VALIDATION_KEYWORDS}
        if keys == {"type"}:
            return True
        if keys == {"anyOf"} and isinstance(neg["anyOf"], list):
            return all(self._plain_not(b) for b in neg["anyOf"])
        trivial_props = all(v is True or v == {} for v in (neg.get("properties") or {}).values())
        if keys <= {"required", "properties"} and "required" in keys and trivial_props:
            return isinstance(neg["required"], list) and len(neg["required"]) == 1
        if keys in ({"enum"}, {"const"}):
            values = [neg["const"]] if "const" in neg else neg["enum"]
            return isinstance(values, list) and all(v is None or isinstance(v, (bool, str)) for v in values)
        if keys == {"format"}:
            return neg["format"] in _formats.EXACT_PATTERNS
        return keys == {"pattern"} and isinstance(neg["pattern"], str)

    def _unsatisfiable(self, parts: list[tuple[dict[str, Any], str]]) -> bool:
        """Some two parts provably admit no common value (prunes distributed alternatives)."""
        if len(parts) < 2:
            return False
        sigs = [self._signature([p]) for p in parts]
        return any(self._sig_disjoint(sigs[i], sigs[j]) for i in range(len(sigs)) for j in range(i + 1, len(sigs)))

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
        forbidden: set[str] = set()
        excluded: list[Any] = []
        for part, _ in conj:
            neg = part.get("not")
            if isinstance(neg, dict) and set(neg) & VALIDATION_KEYWORDS == {"required"} and isinstance(neg["required"], list) and len(neg["required"]) == 1:
                forbidden.add(neg["required"][0])
                types = {"object"} if types is None else types & {"object"}  # only objects fail "required"
            elif isinstance(neg, dict) and set(neg) & VALIDATION_KEYWORDS == {"enum"} and isinstance(neg["enum"], list):
                excluded += neg["enum"]
            elif isinstance(neg, dict) and set(neg) & VALIDATION_KEYWORDS == {"const"}:
                excluded.append(neg["const"])
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
        return {
            "types": types, "consts": consts, "required": required, "closed": closed, "values": values,
            "forbidden": forbidden, "excluded": excluded,
        }

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
        if a["required"] & b["forbidden"] or b["required"] & a["forbidden"]:
            return True  # "not required [k]" admits only objects without k; "required" objects have k
        for x, y in ((a, b), (b, a)):
            if x["values"] is not None and all(any(_json_equal(v, e) for e in y["excluded"]) for v in x["values"]):
                return True
        only_objects = a["types"] is not None and b["types"] is not None and set(a["types"]) | set(b["types"]) <= {"object"}
        some_objects_only = any(x["types"] is not None and set(x["types"]) <= {"object"} for x in (a, b))
        for k in set(a["consts"]) & set(b["consts"]):
            if some_objects_only and (k in a["required"] and k in b["required"]) and not any(
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
                elif key == "not":
                    merged[key] = {"anyOf": _any_of(cur) + _any_of(val)}  # none holds
                elif key == "pattern":
                    merged["__patterns__"] = [*merged.get("__patterns__", ()), val]  # both hold: string() intersects
                elif key == "patternProperties" and isinstance(cur, dict) and isinstance(val, dict) and not set(cur) & set(val) and not any(
                    "additionalProperties" in p and p["additionalProperties"] is not True and p["additionalProperties"] != {}
                    for p, _ in parts
                ):
                    # different patterns, no additionalProperties anywhere: a key meets every pattern it matches
                    merged[key] = {**cur, **val}
                elif key in ("items", "additionalProperties", "propertyNames", "additionalItems", "contains"):
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
    def plain(self, schema: dict[str, Any], parts: list[tuple[dict[str, Any], str]], ptr: str, depth: int) -> _Alts:
        schema = self._normalize_legacy(schema)
        if "enum" in schema or "const" in schema:
            return self.enumeration(schema, parts, ptr)
        types = self._types(schema, ptr)
        if "not" in schema:
            types = self._apply_not(schema, types, ptr, depth)
        out = _Alts()
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

    def _apply_not(self, schema: dict[str, Any], types: set[str], ptr: str, depth: int) -> set[str]:
        nptr = pointer_join(ptr, "not")
        for one in _any_of(schema["not"]):
            types = self._apply_one_not(schema, one, types, nptr)
        return types

    def _apply_one_not(self, schema: dict[str, Any], neg: Any, types: set[str], nptr: str) -> set[str]:
        if neg is True or neg == {}:
            return set()
        if isinstance(neg, dict):
            keys = {k for k in neg if k in VALIDATION_KEYWORDS}
            if keys == {"type"}:
                nt = neg["type"]
                removed = {nt} if isinstance(nt, str) else set(nt)
                if "number" in removed:
                    removed |= {"integer"}
                if "integer" in removed and "number" in types and "number" not in removed:
                    schema["__not_integer__"] = True  # numbers stay, written with a fraction (number())
                    return types - {"integer"}
                return types - removed
            if not keys:
                return set()
            trivial_props = all(v is True or v == {} for v in (neg.get("properties") or {}).values())
            if keys <= {"required", "properties"} and "required" in keys and trivial_props and isinstance(neg["required"], list) and len(neg["required"]) == 1:
                schema.setdefault("__forbid__", []).append(neg["required"][0])
                return types & {"object"}  # every non-object satisfies ``required``, so fails its ``not``
            if keys == {"pattern"} and isinstance(neg["pattern"], str):
                schema.setdefault("__not_patterns__", []).append(neg["pattern"])
                return types & {"string"}  # every non-string matches a pattern, so fails its ``not``
            if keys == {"format"} and neg["format"] in _formats.EXACT_PATTERNS:
                schema.setdefault("__not_patterns__", []).append("^(?:" + _formats.EXACT_PATTERNS[neg["format"]] + ")$")
                return types & {"string"}
            if keys in ({"enum"}, {"const"}):
                values = [neg["const"]] if "const" in neg else neg["enum"]
                if isinstance(values, list) and all(v is None or isinstance(v, (bool, str)) for v in values):
                    types = set(types)
                    if None in values:
                        types.discard("null")
                    for lit in (True, False):
                        if any(v is lit for v in values):
                            schema.setdefault("__not_literals__", []).append(json.dumps(lit))
                    schema.setdefault("__not_strings__", []).extend(v for v in values if isinstance(v, str))
                    return types
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
    def enumeration(self, schema: dict[str, Any], parts: list[tuple[dict[str, Any], str]], ptr: str) -> _Alts:
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
        if schema.get("__not_integer__"):
            return None if integer else self._non_integer(self.number({k: v for k, v in schema.items() if k != "__not_integer__"}, integer=False, ptr=ptr), ptr)
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

    def _non_integer(self, rx: str | None, ptr: str) -> str | None:
        """The numbers of ``rx`` that are not integers, written with a fraction that has a non-zero
        digit and no exponent (the spelling of bounded numbers)."""
        if rx is None:
            return None
        if rx == _numbers.NUMBER_ANY:
            return _NON_INTEGER
        try:
            dfa = _automaton.intersect(_automaton.from_node(_regex.parse(rx)), _automaton.from_node(_regex.parse(_NON_INTEGER_BOUNDED)))
            return _automaton.to_regex(dfa)
        except (_automaton.TooLarge, _regex.PatternError):
            self.refuse("a number that is not an integer, within these bounds, cannot be expressed", "not", pointer_join(ptr, "not"))
            return rx

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
        fmt_body: str | None = None
        pptr = pointer_join(ptr, "pattern")
        patterns: list[tuple[str, _regex.Translation | None]] = []
        if isinstance(fmt, str) and fmt in _formats.FORMATS:
            fmt_body = _formats.FORMATS[fmt]
        elif isinstance(fmt, str) and fmt in _formats.GRAMMAR_PATTERNS:
            # a format whose check is exactly a regex: stated like a pattern anchored at both ends
            fpattern = "^(?:" + _formats.GRAMMAR_PATTERNS[fmt] + ")$"
            tr = self._pattern(fpattern, pointer_join(ptr, "format"), "format")
            if tr is not False:
                patterns.append((fpattern, tr))
        elif isinstance(fmt, str) and fmt in _validator_formats():
            self.refuse(f"format {fmt!r} cannot be expressed in the grammar", "format", pointer_join(ptr, "format"))
        elif isinstance(fmt, str) and fmt in STANDARD_FORMATS:
            # a format the specification defines, but neither the grammar nor the validator checks
            raise JSONSchemaError(
                f"format {fmt!r} can be checked neither by the grammar nor by the validator",
                keyword="format",
                pointer="#" + pointer_join(ptr, "format"),
            )
        for pattern in ([schema["pattern"]] if "pattern" in schema else []) + list(schema.get("__patterns__", ())):
            tr = self._pattern(pattern, pptr, "pattern")
            if tr is not False:
                patterns.append((pattern, tr))
        not_patterns = [p for p in schema.get("__not_patterns__", ()) if self._pattern(p, pointer_join(ptr, "not"), "not") is not False]
        excluded = sorted(set(schema.get("__not_strings__", ())))
        simple = (fmt_body is not None) + len(patterns) <= 1 and not not_patterns and not (excluded and (fmt_body or patterns))
        if simple and not any(tr is None for _, tr in patterns):
            out = self._simple_string(fmt_body, patterns[0][1] if patterns else None, excluded, min_len, max_len, fmt)
            if out is not False:
                return out  # type: ignore[return-value]
        # intersections, complements and length bounds the regexes cannot state side by side: automata
        key = (fmt_body, tuple(p for p, _ in patterns), tuple(not_patterns), tuple(excluded), min_len, max_len)
        if key not in self.string_memo:
            try:
                self.string_memo[key] = self._string_automaton(fmt_body, [p for p, _ in patterns], not_patterns, excluded, min_len, max_len)
            except (_automaton.TooLarge, _regex.PatternError) as exc:
                self.string_memo[key] = exc
        rx = self.string_memo[key]
        if not isinstance(rx, Exception):
            return None if rx is None else _regex.QUOTE + rx + _regex.QUOTE
        reason = str(rx)
        # widened (or refused): the first of the format and patterns, without what it cannot state
        if not_patterns or excluded:
            self.refuse(f"'not' of strings here cannot be expressed ({reason})", "not", pointer_join(ptr, "not"))
        if (fmt_body is not None) + len(patterns) > 1:
            self.refuse(f"pattern together with format or another pattern cannot be expressed ({reason})", "pattern", pptr)
        body = fmt_body if fmt_body is not None else next((tr.regex for _, tr in patterns if tr is not None), None)
        if body is None and patterns:
            self.refuse(f"pattern cannot be translated ({reason})", "pattern", pptr)
        if min_len > 0 or max_len is not None:
            self.refuse(
                f"minLength/maxLength together with this pattern or format cannot be expressed ({reason})",
                "maxLength" if max_len is not None else "minLength",
                ptr,
            )
        if body is None:
            return _regex.QUOTE + _regex.JSON_CHAR_FULL + "*" + _regex.QUOTE
        return _regex.QUOTE + body + _regex.QUOTE

    def _pattern(self, pattern: Any, pptr: str, keyword: str) -> _regex.Translation | None | bool:
        """The translation of a pattern; None where only an automaton reads it (nested repetition a
        backtracking matcher could not take); False where it is refused (widened)."""
        if not isinstance(pattern, str):
            raise JSONSchemaError("pattern must be a string", keyword="pattern", pointer="#" + pptr)
        try:
            return _regex.translate(pattern)
        except _regex.PatternError as exc:
            first = exc
        try:
            _automaton.from_pattern(pattern)
            return None
        except (_regex.PatternError, _automaton.TooLarge):
            pass
        if not _python_compiles(pattern):
            raise JSONSchemaError(
                f"pattern cannot be translated ({first}) nor checked by the validator", keyword="pattern", pointer="#" + pptr
            ) from None
        self.refuse(f"pattern cannot be translated: {first}", keyword, pptr)
        return False

    def _simple_string(
        self, fmt_body: str | None, tr: _regex.Translation | None, excluded: list[str], min_len: int, max_len: int | None, fmt: Any
    ) -> str | None | bool:
        """One format or pattern (or none) and length bounds, written directly; False: needs automata."""
        body: str | None = None
        fixed: tuple[int, int | None] | None = None  # length bounds of a fully anchored body
        node: _regex.Node | None = None
        if fmt_body is not None:
            body = fmt_body
            node = _regex.parse(body)
            fixed = _regex.length_bounds(node)
            if fixed[1] is None and fmt in _formats.CHECKED_MAX_LENGTH and max_len is not None and max_len >= _formats.CHECKED_MAX_LENGTH[fmt]:
                fixed = (fixed[0], max_len)  # the check already refuses what the bound would
        elif tr is not None:
            body, node = tr.regex, tr.node
            fixed = tr.length if tr.anchored else None
        if body is None:
            if excluded:
                rx = _string_exclusion(excluded, min_len, max_len)
                return None if rx is None else _regex.QUOTE + rx + _regex.QUOTE
            return _regex.QUOTE + _regex.quantify(_regex.JSON_CHAR_FULL, min_len, max_len) + _regex.QUOTE
        if min_len > 0 or max_len is not None:
            if fixed is not None and fixed[0] >= min_len and (max_len is None or (fixed[1] is not None and fixed[1] <= max_len)):
                pass  # the pattern already implies the length bounds
            else:
                narrowed = _narrow_repetition(node, min_len, max_len) if fixed is not None and node is not None else None
                if narrowed is None and fixed is None and node is not None and max_len is not None:
                    narrowed = _whole_match(node, min_len, max_len)
                if narrowed is None:
                    return False
                body = narrowed
        return _regex.QUOTE + body + _regex.QUOTE

    def _prefix_restricted(
        self, fmt_body: str | None, patterns: list[str], not_patterns: list[str], excluded: list[str], min_len: int, max_len: int | None
    ) -> str | None:
        """A format (or one anchored pattern) and patterns that only fix how the string starts
        (``format: uri`` with ``^https?://``): for each allowed start w, w then the format's regex
        derived by w (what may follow w). None when the schema is not of this shape or nothing matches."""
        if not_patterns or excluded or min_len or max_len is not None:
            return None
        base: _regex.Node | None = None
        starts: list[list[str]] = []
        for pattern in patterns:
            words = _automaton.prefixes(pattern)
            if words is not None:
                starts.append(words)
                continue
            if base is not None or fmt_body is not None:
                return None
            try:
                tr = _regex.translate(pattern)
            except _regex.PatternError:
                return None
            branches = _regex._branches(tr.node)
            if not tr.anchored or len(branches) != 1:
                return None
            base = _regex._anchors(branches[0])[1]
        if fmt_body is not None:
            base = _regex.parse(fmt_body)
        if base is None or not starts:
            return None
        allowed = starts[0]
        for words in starts[1:]:  # strings starting with one word of each list
            allowed = sorted({a if a.startswith(b) else b for a in allowed for b in words if a.startswith(b) or b.startswith(a)})
        options = []
        for word in allowed:
            node: _regex.Node | None = base
            for ch in word:
                node = _automaton.derivative(node, ord(ch)) if node is not None else None
            if node is not None:
                literal = "".join(_regex.json_char(_regex.chars(ch)) for ch in word)
                options.append(literal + (_regex.emit(_regex.simplify(node)) if not _automaton._is_eps(node) else ""))
        if not options:
            return None
        rx = options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"
        return rx if len(rx) <= _automaton.MAX_REGEX_CHARS else None

    def _string_automaton(
        self, fmt_body: str | None, patterns: list[str], not_patterns: list[str], excluded: list[str], min_len: int, max_len: int | None
    ) -> str | None:
        """The strings meeting every part, as a regex over JSON text (None: no string does). Where the
        result is the language of one part (a pattern the format implies, bounds the pattern implies),
        that part's own regex is written."""
        restricted = self._prefix_restricted(fmt_body, patterns, not_patterns, excluded, min_len, max_len)
        if restricted is not None:
            return restricted
        parts: list[tuple[_automaton.DFA, str | None]] = []
        if fmt_body is not None:
            parts.append((_automaton.from_node(_regex.parse(fmt_body)), fmt_body))
        for pattern in patterns:
            try:
                own: str | None = _regex.translate(pattern).regex
            except _regex.PatternError:
                own = None
            parts.append((_automaton.from_pattern(pattern), own))
        dfa = parts[0][0] if parts else _automaton.everything()
        for other, _ in parts[1:]:
            dfa = _automaton.intersect(dfa, other)
        for pattern in not_patterns:
            dfa = _automaton.minus(dfa, _automaton.from_pattern(pattern))
        if excluded:
            dfa = _automaton.minus(dfa, _automaton.strings(excluded))
        if min_len > 0 or max_len is not None:
            bounds = _automaton.length_bounds(dfa)
            if bounds is None:
                return None
            if bounds[0] < min_len or (max_len is not None and (bounds[1] is None or bounds[1] > max_len)):
                dfa = _automaton.restrict_length(dfa, min_len, max_len)
        if _automaton.is_empty(dfa):
            return None
        for part, own in parts:
            if own is not None and _automaton.equivalent(dfa, part):
                return own
        return _automaton.to_regex(dfa)

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
        names_dfa: _automaton.DFA | None = None
        if names is not None and names is not True and names != {}:
            if names is False:
                if required_set:
                    return None
                return self.rule(f"{self.punct('{')} {self.punct('}')}", "o")
            names_dfa = self._names_language(names, pointer_join(ptr, "propertyNames"), depth)
            if names_dfa is None:
                self.refuse("propertyNames cannot be expressed in a grammar", "propertyNames", pointer_join(ptr, "propertyNames"))
        members: list[_Member] = []
        declared = list(props)
        for name in declared + [r for r in required if isinstance(r, str) and r not in props]:
            if name in forbidden:
                continue
            if names_dfa is not None and not _automaton.accepts(names_dfa, name):
                if name in required_set:
                    return None  # a required key propertyNames refuses
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
        if names_dfa is not None:
            extra = self._key_regions(patterns, additional, sorted(set(props) | forbidden), names_dfa, ptr, depth)
            if extra is False:
                self.refuse("propertyNames next to these keys cannot be expressed", "propertyNames", pointer_join(ptr, "propertyNames"))
                extra = self._extra_member(props, patterns, additional, forbidden, ptr, depth)
        else:
            extra = self._extra_member(props, patterns, additional, forbidden, ptr, depth)
        min_p = schema.get("minProperties")
        max_p = schema.get("maxProperties")
        n_required = sum(m.required for m in members)
        nonempty = min_p == 1 and n_required == 0  # some member, whichever: the first one is not optional
        if max_p is not None and max_p < n_required:
            return None
        counted_min = min_p is not None and min_p > n_required and not nonempty
        counted_max = max_p is not None and (extra is not None or max_p < len(members))
        if (counted_min or counted_max) and not self.widen:
            if extra is None and min_p is not None and min_p > len(members):
                return None
            rule = self._counted_object_rule(members, extra, int(min_p or 0), int(max_p) if counted_max else None)
            if rule is not False:
                return rule  # type: ignore[return-value]
        if counted_min:
            self.refuse("minProperties beyond the required properties cannot be expressed", "minProperties", ptr)
        if counted_max:
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
                    regions = self._key_regions(patterns, additional, excluded, None, ptr, depth)
                    if regions is not False:
                        return regions
                    self.refuse("patternProperties together with additionalProperties cannot be expressed", "patternProperties", pptr)
                    patterns = {}
                    additional = True  # widened: a key may take either schema, the validator tells which
            else:
                distinct = {json.dumps(v, sort_keys=True) for v in patterns.values()}
                clashes = [name for name in props if any(_py_search(p, name, ptr) for p in patterns)]
                if len(distinct) > 1 or clashes:
                    regions = self._key_regions(patterns, False, excluded, None, ptr, depth)
                    if regions is not False:
                        return regions
                if len(distinct) > 1:
                    self.refuse("several patternProperties with different schemas may overlap", "patternProperties", pptr)
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

    def _key_regions(
        self, patterns: dict[str, Any], additional: Any, excluded: list[str], names: _automaton.DFA | None, ptr: str, depth: int
    ) -> _Member | None | bool:
        """Keys beyond the declared ones, split by automata into the regions the patterns cut: keys that
        match exactly the patterns in S take the ``allOf`` of their schemas, keys that match none the
        ``additionalProperties`` schema. The regions are disjoint, so each is one key terminal and the
        grammar is exact (keys spelt without escapes, as for any additional property); ``names`` (from
        ``propertyNames``) bounds every key. False: the automata would be too large."""
        pptr = pointer_join(ptr, "patternProperties")
        if len(patterns) > 4:
            return False
        plain = _regex.minus(_regex.ANY, _regex.chars('"\\') + ((0x00, 0x1F),))
        colon = self.punct(":")
        try:
            universe = _automaton.everything(plain)
            if names is not None:
                universe = _automaton.intersect(universe, names)
            if excluded:
                universe = _automaton.minus(universe, _automaton.strings(excluded))
            keys = list(patterns)
            dfas = [_automaton.intersect(universe, _automaton.from_pattern(p)) for p in keys]
            regions: list[tuple[str, Any, str]] = []
            for mask in range(2 ** len(keys)):
                if mask == 0 and additional is False:
                    continue
                region = universe
                for i, dfa in enumerate(dfas):
                    region = _automaton.intersect(region, dfa) if mask >> i & 1 else _automaton.minus(region, dfa)
                if _automaton.is_empty(region):
                    continue
                chosen = [keys[i] for i in range(len(keys)) if mask >> i & 1]
                if not chosen:
                    value, vptr = additional, pointer_join(ptr, "additionalProperties")
                elif len(chosen) == 1:
                    value, vptr = patterns[chosen[0]], pointer_join(pptr, chosen[0])
                else:
                    value, vptr = {"allOf": [patterns[c] for c in chosen]}, pptr
                rx = _automaton.to_regex(region)
                regions.append((rx or "", value, vptr))
        except (_automaton.TooLarge, _regex.PatternError):
            return False
        pairs = []
        for rx, value, vptr in regions:
            try:
                alts = self.value(value, vptr, depth + 1)
            except JSONSchemaError:
                return False  # e.g. the allOf of recursive pattern schemas: left to the other paths
            if alts.empty():
                continue
            key = self.terminal(_regex.QUOTE + rx + _regex.QUOTE, "K")
            pairs.append(f"{key} {colon} {self.expr(alts)}")
        return self._pairs_member(pairs)

    def _pairs_member(self, pairs: list[str]) -> _Member | None:
        """One member that is any of ``pairs`` (``key : value`` expressions), or None when there are none."""
        if not pairs:
            return None
        if len(pairs) == 1:
            return _Member("", "", False, pair=pairs[0])
        return _Member("", "", False, pair=self.rule(" | ".join(pairs), "m"))

    def _names_language(self, names: Any, ptr: str, depth: int) -> _automaton.DFA | None:
        """The keys ``propertyNames`` admits, as an automaton: its ``type``, ``enum`` / ``const``,
        ``pattern`` and length bounds (merged through ``$ref`` and ``allOf``); None for anything else."""
        parts = self.flatten(names, ptr, depth + 1, set())
        if parts is None:
            return _automaton.strings([])
        try:
            dfa = _automaton.everything()
            for part, _ in parts:
                if not set(part) <= {"type", "enum", "const", "pattern", "minLength", "maxLength"}:
                    return None
                t = part.get("type")
                if t is not None and "string" not in ([t] if isinstance(t, str) else t):
                    return _automaton.strings([])
                if "enum" in part or "const" in part:
                    values = [part["const"]] if "const" in part else part["enum"]
                    dfa = _automaton.intersect(dfa, _automaton.strings([v for v in values if isinstance(v, str)]))
                if isinstance(part.get("pattern"), str):
                    dfa = _automaton.intersect(dfa, _automaton.from_pattern(part["pattern"]))
                lo, hi = part.get("minLength", 0), part.get("maxLength")
                if lo or hi is not None:
                    dfa = _automaton.restrict_length(dfa, int(lo), None if hi is None else int(hi))
            return dfa
        except (_automaton.TooLarge, _regex.PatternError, TypeError, ValueError):
            return None

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
        return self._pairs_member(pairs)

    def _open_member(self, excluded: list[str], value: Any, vptr: str, ptr: str, depth: int) -> _Member | None:
        """Any key but the ``excluded`` names (spelt without escapes), with a value conforming to ``value``."""
        alts = self.value(value, vptr, depth + 1)
        if alts.empty():
            return None
        exclusion = _exclusion_regex(excluded) if excluded else _regex.JSON_CHAR_FULL + "*"
        leading = len(exclusion) > MAX_EXCLUSION_CHARS
        if len(exclusion) > MAX_LEADING_EXCLUSION_CHARS:
            self.refuse(
                f"additional properties next to {len(excluded)} declared ones make too large a key regex",
                "additionalProperties",
                ptr,
            )
            exclusion = _regex.JSON_CHAR_FULL + "*"
            leading = False
            self.needs_earley = True  # this key regex overlaps the declared keys
        key_rx = _regex.QUOTE + exclusion + _regex.QUOTE
        return _Member(self.terminal(key_rx, "K"), self.expr(alts), False, leading=leading)

    def _object_rule(self, members: list[_Member], extra: _Member | None, nonempty: bool = False) -> str | None:
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        if extra is not None and extra.leading:
            # additional members first, then the declared ones: the large key regex then appears in two
            # lexer states only (after "{" and after an additional member's comma), not after every member
            declared, nullable = self._member_sequence(members, None)
            extra_pair = extra.expr(colon)
            name = f"o{len(self.rules)}_x"
            if declared is None:
                nullable = True
                self.rule(f"{extra_pair} ({comma} {name})?", name=name)
            elif nullable:
                self.rule(f"{extra_pair} ({comma} {name})? | {declared}", name=name)
            else:
                self.rule(f"{extra_pair} {comma} {name} | {declared}", name=name)
            return self.rule(f"{lb} {name}? {rb}" if nullable and not nonempty else f"{lb} {name} {rb}", "o")
        if extra is None and all(m.required for m in members):
            if nonempty and not members:
                return None
            inner = f" {comma} ".join(m.expr(colon) for m in members)
            return self.rule(f"{lb} {inner} {rb}" if inner else f"{lb} {rb}", "o")
        first, nullable = self._member_sequence(members, extra)
        if first is None:
            return None if nonempty else self.rule(f"{lb} {rb}", "o")
        body = f"{lb} {first}? {rb}" if nullable and not nonempty else f"{lb} {first} {rb}"
        return self.rule(body, name=first[: -len("_first")])

    def _counted_object_rule(self, members: list[_Member], extra: _Member | None, low: int, high: int | None) -> str | None | bool:
        """An object whose number of members is at least ``low`` and at most ``high`` (None: no bound):
        the member chain of ``_member_sequence`` with the count so far in each rule (saturating at
        ``low`` when there is no upper bound). False: too many rules."""
        lb, rb, comma, colon = self.punct("{"), self.punct("}"), self.punct(","), self.punct(":")
        n = len(members)
        top = high if high is not None else low
        if (n + 1) * (top + 1) > 1200:
            return False
        base = f"o{len(self.rules)}"
        pair = [m.expr(colon) for m in members]
        extra_pair = extra.expr(colon) if extra else ""
        optional_from = [True] * (n + 1)
        for i in range(n - 1, -1, -1):
            optional_from[i] = optional_from[i + 1] and not members[i].required

        def inc(j: int) -> int | None:
            if high is not None:
                return j + 1 if j < high else None
            return min(j + 1, low)

        # b[i][j]: after a member, j members so far, the next declared one at i or later;
        # c[i][j]: the same, but the next member is a declared one. Each is (rule or None, may be empty).
        c: dict[tuple[int, int], tuple[str | None, bool]] = {}
        b: dict[tuple[int, int], tuple[str | None, bool]] = {}

        def ref(entry: tuple[str | None, bool]) -> str | None:
            name, empty = entry
            if name is None:
                return "" if empty else None
            return f"{name}?" if empty else name

        for i in range(n, -1, -1):
            for j in range(top, -1, -1):
                alts: list[str] = []
                empty = False
                if i < n:
                    nj = inc(j)
                    if nj is not None:
                        after = ref(b[i + 1, nj])
                        if after is not None:
                            alts.append(f"{comma} {pair[i]} {after}".strip())
                    if not members[i].required:
                        name, e = c[i + 1, j]
                        if name is not None:
                            alts.append(name)
                        empty = empty or e
                else:
                    empty = j >= low
                c[i, j] = (self.rule(" | ".join(alts), name=f"{base}_c{i}_{j}") if alts else None, empty)
                alts = []
                if extra is not None:
                    nj = inc(j)
                    if nj is not None:
                        if nj != j:
                            after = ref(b[i, nj])
                        elif c[i, j] == (None, False):
                            after = None  # saturated, and nothing could follow: no way to finish
                        else:  # saturated: the same rule again
                            after = f"{base}_b{i}_{j}?" if c[i, j][1] else f"{base}_b{i}_{j}"
                        if after is not None:
                            alts.append(f"{comma} {extra_pair} {after}".strip())
                name, e = c[i, j]
                if name is not None:
                    alts.append(name)
                b[i, j] = (self.rule(" | ".join(alts), name=f"{base}_b{i}_{j}") if alts else None, e)
        # the first member: as after a member, without the leading comma
        first: list[str] = []
        if extra is not None:
            nj = inc(0)
            if nj is not None:
                after = ref(b[0, nj])
                if after is not None:
                    first.append(f"{extra_pair} {after}".strip())
        for i in range(n):
            nj = inc(0)
            if nj is not None:
                after = ref(b[i + 1, nj])
                if after is not None:
                    first.append(f"{pair[i]} {after}".strip())
            if members[i].required:
                break
        may_be_empty = optional_from[0] and low == 0
        if not first:
            return self.rule(f"{lb} {rb}", "o") if may_be_empty else None
        rule = self.rule(" | ".join(first), name=f"{base}_first")
        return self.rule(f"{lb} {rule}? {rb}" if may_be_empty else f"{lb} {rule} {rb}", name=base)

    def _member_sequence(self, members: list[_Member], extra: _Member | None) -> tuple[str | None, bool]:
        """A rule for the members between the braces, at least one present (None if none can be), and
        whether all of them may be left out."""
        comma, colon = self.punct(","), self.punct(":")
        n = len(members)
        base = f"o{len(self.rules)}"
        pair = [f"{m.key} {colon} {m.value}" for m in members]
        extra_pair = extra.expr(colon) if extra else ""
        optional_from = [True] * (n + 1)  # optional_from[i]: members i.. are all optional
        for i in range(n - 1, -1, -1):
            optional_from[i] = optional_from[i + 1] and not members[i].required

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
            return None, True
        return self.rule(" | ".join(first_alts), name=f"{base}_first"), optional_from[0]


# -- helpers -----------------------------------------------------------------------------------------------
_NON_INTEGER = (
    "-?(?:" + "|".join(f"[1-9][0-9]{{{a}}}\\.[0-9]{{0,{13 - a}}}[1-9]0*" for a in range(14))
    + "|0\\.0{0,20}[0-9]{0,14}[1-9]0*)"
)
"""A number that is not an integer: a fraction with a non-zero digit, no exponent, at most 15
significant digits and 20 zeros after the point. The validator reads numbers as floats, and a float
of up to 15 significant digits (DBL_DIG) keeps them, so no such number rounds to an integer."""
_NON_INTEGER_BOUNDED = "-?(?:0|[1-9][0-9]{0,5})\\.[0-9]{0,8}[1-9]0*"
"""The same within bounds (an automaton intersects it with the range): at most 6 digits before the
point and 9 after the last non-zero one, which a float keeps apart from every integer."""

_REWRITTEN = "__rewritten__"
"""Marks an ``anyOf`` part that ``_rewrite`` made of another keyword (its value: that keyword)."""


def _any_of(schema: Any) -> list[Any]:
    """The branches of a schema that is only an ``anyOf`` (nested ones flattened), else the schema."""
    if isinstance(schema, dict) and set(schema) & VALIDATION_KEYWORDS == {"anyOf"} and isinstance(schema["anyOf"], list) and schema["anyOf"]:
        return [b for branch in schema["anyOf"] for b in _any_of(branch)]
    return [schema]


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


def _string_exclusion(excluded: list[str], lo: int, hi: int | None) -> str | None:
    """Regex for string contents (no quotes) of a length in [lo, hi] code points, spelling any string
    except those in ``excluded``; None if there is none. Inside the trie of the excluded strings each
    character is spelt as ``json_char`` spells it (literally, or the escape JSON requires), so every
    spelling read there decodes along one path; past the trie any spelling is read."""
    trie: dict[str, Any] = {}
    for word in excluded:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def tail(d: int) -> str | None:
        a, b = max(lo - d, 0), None if hi is None else hi - d
        if b is not None and b < a:
            return None
        return _regex.quantify(_regex.JSON_CHAR_FULL, a, b)

    def walk(node: dict[str, Any], d: int) -> tuple[list[str], bool]:
        """Continuations of the path to ``node`` (depth ``d``): non-empty ones, and whether it may end here."""
        can_end = "" not in node and lo <= d and (hi is None or d <= hi)
        alts: list[str] = []
        if hi is not None and d >= hi:
            return alts, can_end
        children = sorted(k for k in node if k)
        other = _regex.minus(_regex.ANY, _regex.chars("".join(children)))
        rest = tail(d + 1)
        if other and rest is not None:
            alts.append(_regex.json_char(other) + rest)
        for ch in children:
            sub, sub_end = walk(node[ch], d + 1)
            inner = _alternation(sub, sub_end)
            if inner is not None:
                alts.append(_regex.json_char(_regex.chars(ch)) + inner)
        return alts, can_end

    top, top_end = walk(trie, 0)
    return _alternation(top, top_end)


def _alternation(alts: list[str], optional: bool) -> str | None:
    if not alts:
        return "" if optional else None
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    if optional:
        return body + "?" if body.startswith("(?:") and _regex._balanced_group(body) else f"(?:{body})?"
    return body


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
    """A matcher with ECMA-262 semantics: the pattern as the grammar translates it, or where only an
    automaton reads it (nested repetition), that automaton. Raises PatternError for neither."""
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        try:
            tr = _regex.translate(pattern)
        except _regex.PatternError as exc:
            try:
                with _automaton.budget(AUTOMATON_BUDGET):
                    compiled = _AutomatonMatcher(_automaton.from_pattern(pattern))  # type: ignore[assignment]
            except _automaton.TooLarge:
                raise exc from None
        else:
            compiled = re.compile(_regex.QUOTE + tr.regex + _regex.QUOTE)
            compiled = _KeyMatcher(compiled)  # type: ignore[assignment]
        _PATTERN_CACHE[pattern] = compiled
    return compiled


class _AutomatonMatcher:
    """Search semantics by the pattern's automaton (which already spans the whole string)."""

    def __init__(self, dfa: _automaton.DFA) -> None:
        self.dfa = dfa

    def search(self, name: str) -> object | None:
        return True if _automaton.accepts(self.dfa, name) else None


class _KeyMatcher:
    """Matches a decoded key against a translated pattern by matching its canonical JSON spelling."""

    def __init__(self, rx: re.Pattern[str]) -> None:
        self.rx = rx

    def search(self, name: str) -> object | None:
        return self.rx.fullmatch(json.dumps(name, ensure_ascii=False))


class _ConjunctionCheck:
    """Validates candidate ``enum`` values against every part of a conjunction. A part is checked at its
    pointer into the root when the schema there is that part (``$id`` bases then apply as in the
    validator); a part the compiler built (merged properties, negations) is checked as it stands."""

    def __init__(self, root: Any, parts: list[tuple[dict[str, Any], str]]) -> None:
        from ._validate import validator_for_pointers

        items: list[str | dict[str, Any]] = []
        for part, ptr in parts:
            node = _at_pointer(root, ptr)
            if isinstance(node, dict) and {k: v for k, v in node.items() if k in VALIDATION_KEYWORDS and k not in ("$ref", "allOf")} == part:
                items.append(ptr)
            else:
                items.append(part)
        self._validator = validator_for_pointers(root, items)

    @classmethod
    def for_schema(cls, root: Any, parts: list[tuple[dict[str, Any], str]], merged: dict[str, Any]) -> _ConjunctionCheck | _TypeCheck:
        if len(parts) == 1 and set(merged) <= {"enum", "const", "type"} and not {"enum", "const"} <= set(merged):
            return _TypeCheck(merged.get("type"))
        return cls(root, parts)

    def ok(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))


_NOWHERE = object()


def _at_pointer(root: Any, ptr: str) -> Any:
    """The value at JSON pointer ``ptr`` (``/$defs/a~1b/0``) in ``root``, or ``_NOWHERE``."""
    node = root
    for raw in ptr.split("/")[1:] if ptr else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _NOWHERE
    return node


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


AUTOMATON_BUDGET = 60_000
"""Automaton states one compile may build for its strings and keys (see ``_automaton.budget``)."""


def compile_schema(
    schema: Any, *, compact: bool, widen: bool, limits: Limits, declared_keys: bool = True
) -> tuple[str, list[tuple[str, str]], bool]:
    """Return (grammar text, widenings, needs an Earley parser in lark)."""
    compiler = _Compiler(schema, compact=compact, widen=widen, limits=limits, declared_keys=declared_keys)
    compiler._ref_names = {}
    with _automaton.budget(AUTOMATON_BUDGET):
        text = compiler.compile()
    return text, compiler.widenings, compiler.needs_earley
