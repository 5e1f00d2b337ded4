"""``allOf`` (merged into one schema), ``oneOf`` (branch i and none of the branches it may overlap),
``not`` (the simple forms stated directly, the others through the complement of a schema, ``_negate``),
``if`` / ``then`` / ``else`` and the dependency keywords. All but ``allOf`` and the direct ``not`` become
``anyOf`` parts, which the walk (``compiler.Compiler.conjunction``) distributes."""

from __future__ import annotations

import json
import math
from typing import Any

from .. import _formats, _negate
from .context import VALIDATION_KEYWORDS, Conjunction, json_equal, pointer_join
from .disjoint import Disjointness
from .objects import pattern_matches


REWRITTEN = "__rewritten__"
"""Marks an ``anyOf`` part that ``rewrite`` made of another keyword (its value: that keyword)."""


class Combinators(Disjointness):
    """``allOf``, ``oneOf``, ``not``, ``if`` / ``then`` / ``else`` and the dependency keywords."""

    # -- keywords rewritten as anyOf of what the grammar states ------------------------------------
    def negation(self, schema: Any) -> list[Any] | None:
        """The complement of ``schema`` as a union of schemas (see ``_negate``), or None."""
        return _negate.negate(
            schema,
            resolve=lambda ref: self.resolve(ref, "")[0],
            legacy=self.legacy,
            draft4=self.draft4,
            keywords=VALIDATION_KEYWORDS,
            asserted_formats=_formats.asserted_formats(),
            exact_formats=frozenset(_formats.EXACT_PATTERNS),
        )

    def exactly_one(
        self, expanded: list[Conjunction], raw: list[tuple[Any, str]], pptr: str
    ) -> list[Conjunction]:
        """``oneOf``: branch i and none of the branches it may overlap. Provably disjoint pairs need
        nothing; for the others the branch is conjoined with the complement of each overlapping one."""
        sigs = [self.signature(conj) for conj in expanded]
        pairs: dict[tuple[int, int], bool] = {}
        for i in range(len(expanded)):
            for j in range(i + 1, len(expanded)):
                pairs[i, j] = pairs[j, i] = not (
                    self.sig_disjoint(sigs[i], sigs[j]) or self.disjoint_by_values(expanded[i], expanded[j])
                )
        overlaps = [[j for j in range(len(expanded)) if j != i and pairs[i, j]] for i in range(len(expanded))]
        if not any(overlaps):
            return expanded
        complements: dict[int, list[Any] | None] = {}
        out: list[Conjunction] = []
        total = 0
        for i, conj in enumerate(expanded):
            extra: Conjunction = []
            size = 1
            empty = False
            for j in overlaps[i]:
                shared = self.shared_types(expanded[i], expanded[j], sigs[i], sigs[j])
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

    def rewrite(self, parts: Conjunction) -> Conjunction | None:
        """``not`` (beyond the forms ``plain`` states directly), ``if``/``then``/``else`` and the
        dependency keywords become ``anyOf`` parts, which ``conjunction`` distributes. None: the
        conjunction admits nothing (``not`` of a schema every value meets)."""
        out: Conjunction = []
        for original, pptr in parts:
            part = dict(original)
            added: Conjunction = []
            for key in ("dependencies", "dependentRequired", "dependentSchemas"):
                deps = part.get(key)
                if not isinstance(deps, dict) or not deps or (key == "dependencies") != self.draft7_or_older:
                    continue  # a draft whose validator ignores the keyword: plain() refuses it
                new: Conjunction = []
                for name, dep in deps.items():
                    if isinstance(dep, list):
                        if key == "dependentSchemas" or not all(isinstance(d, str) for d in dep):
                            break
                        holds: Any = {"required": [name, *dep]}
                    elif key == "dependentRequired":
                        break
                    else:
                        holds = {"allOf": [{"required": [name]}, dep]}
                    new.append(({"anyOf": [{"not": {"required": [name]}}, holds], REWRITTEN: key}, pointer_join(pptr, key, name)))
                else:
                    del part[key]
                    added += new
            if "if" in part and self.knows_if:
                negs = self.negation(part["if"])
                if negs is not None:
                    cond = part.pop("if")
                    then, other = part.pop("then", True), part.pop("else", True)
                    branches = [{"allOf": [cond, then]}] + [{"allOf": [n, other]} for n in negs]
                    added.append(({"anyOf": branches, REWRITTEN: "if"}, pointer_join(pptr, "if")))
            if "not" in part and not self._plain_not(part["not"]):
                negs = self.negation(part["not"])
                if negs is not None:
                    if not negs:
                        return None
                    del part["not"]
                    added.append(({"anyOf": negs, REWRITTEN: "not"}, pointer_join(pptr, "not")))
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

    def split_not_required(self, parts: Conjunction) -> Conjunction:
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

    # -- not, stated directly ----------------------------------------------------------------------
    def apply_not(self, schema: dict[str, Any], types: set[str], ptr: str, depth: int) -> set[str]:
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

    # -- allOf merge -------------------------------------------------------------------------------
    def merge(self, parts: Conjunction) -> dict[str, Any]:
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
                if json_equal(cur, val):
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

    def _merge_additional(self, parts: Conjunction, merged: dict[str, Any], ptr: str) -> None:
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
                if k in own or any(pattern_matches(p, k) for p, _ in patterns):
                    continue
                new_props[k] = {"allOf": [props[k], extra]}
            props = new_props
        merged["properties"] = props


def _any_of(schema: Any) -> list[Any]:
    """The branches of a schema that is only an ``anyOf`` (nested ones flattened), else the schema."""
    if isinstance(schema, dict) and set(schema) & VALIDATION_KEYWORDS == {"anyOf"} and isinstance(schema["anyOf"], list) and schema["anyOf"]:
        return [b for branch in schema["anyOf"] for b in _any_of(branch)]
    return [schema]


def _type_intersection(a: Any, b: Any) -> list[str]:
    sa = {a} if isinstance(a, str) else set(a)
    sb = {b} if isinstance(b, str) else set(b)
    out = sa & sb
    if "number" in sa and "integer" in sb or "integer" in sa and "number" in sb:
        out.add("integer")
    return sorted(out)
