"""What every keyword family of the compiler shares: its limits, the alternatives a value may take
(``Alts``), the grammar being written (rules, terminals, punctuation), the bookkeeping of refusals and
widenings, and the walk into a subschema (``value``, ``flatten``), which ``compiler.Compiler`` implements.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ...errors import JSONSchemaError
from .. import _numbers, _regex


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
WS_MAX = 32
Conjunction: TypeAlias = list[tuple[dict[str, Any], str]]
"""Plain schemas (no ``allOf``, no ``$ref``) that must all hold, each with its JSON pointer."""


def pointer_join(ptr: str, *parts: object) -> str:
    for part in parts:
        ptr += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return ptr


def key_literal(key: str) -> str:
    """A lark literal for an object key, spelt as ``json.dumps`` spells it."""
    return json.dumps(json.dumps(key, ensure_ascii=False), ensure_ascii=False)


def json_type(v: Any) -> str:
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


def json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@dataclass
class Alts:
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

    def merge(self, other: Alts) -> None:
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


class CompilerContext(ABC):
    """The compiler's state and the services every keyword family uses."""

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
        self.ref_alts: dict[str, Alts] = {}
        self.ref_in_progress: set[str] = set()
        self.ref_rule_needed: set[str] = set()
        self.ref_names: dict[str, str] = {}  # $ref target -> its rule, once it turns out recursive
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

    # -- the walk into a subschema (compiler.Compiler) ---------------------------------------------
    @abstractmethod
    def value(self, schema: Any, ptr: str, depth: int) -> Alts:
        """The alternatives of a value conforming to ``schema`` (at JSON pointer ``ptr``)."""

    @abstractmethod
    def flatten(self, schema: Any, ptr: str, depth: int, chain: set[str]) -> Conjunction | None:
        """``schema`` as the plain schemas that must all hold; None if it admits nothing."""

    # -- bookkeeping -------------------------------------------------------------------------------
    def refuse(self, message: str, keyword: str, ptr: str) -> None:
        """Refuse a keyword, or (widen=True) record it as enforced by the validator only."""
        if not self.widen:
            raise JSONSchemaError(message, keyword=keyword, pointer="#" + ptr)
        self.widenings.append((keyword, "#" + ptr))

    def tick(self, depth: int, ptr: str) -> None:
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

    # -- punctuation and any-value rules -----------------------------------------------------------
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

    def expr(self, alts: Alts) -> str:
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
