"""When two conjunctions provably admit no common value: the ``oneOf`` branches that need no
complement of one another, and the distributed ``anyOf`` alternatives that can be pruned. Each side's
signature (types, listed values, required, forbidden and closed keys) is compared; values an ``enum`` /
``const`` lists are put to the validator."""

from __future__ import annotations

from typing import Any

from ...errors import JSONSchemaError
from .._formats import asserted_formats
from .._validate import validator_for_pointers
from .context import VALIDATION_KEYWORDS, Conjunction, json_equal, json_type
from .refs import References


class Disjointness(References):
    """Proofs that two conjunctions share no value (the validator judges listed values)."""

    _KEYWORDS_BY_TYPE = {
        "string": {"minLength", "maxLength", "pattern", "format"},
        "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
        "array": {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
                  "minContains", "maxContains", "unevaluatedItems"},
        "object": {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                   "minProperties", "maxProperties", "dependencies", "dependentRequired", "dependentSchemas",
                   "unevaluatedProperties"},
    }

    def shared_types(
        self, a: Conjunction, b: Conjunction, sig_a: dict[str, Any], sig_b: dict[str, Any]
    ) -> set[str] | None:
        """Two oneOf branches that share only whole types: on every type both admit, either both admit
        every value of it (no keyword of either side speaks of that type) or they are disjoint on it
        (objects told apart by a required discriminator, say). Returns those whole types ("integer" for
        the integers when one side admits only integers), or None when some overlap is partial."""
        def kinds(conj: Conjunction) -> set[str] | None:
            found: set[str] = set()
            for part, _ in conj:
                for key in part:
                    if key in ("type",) or key.startswith("__"):
                        continue
                    if key == "format" and part[key] not in asserted_formats():
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
            if not self.sig_disjoint(*objects):
                if "object" in ka or "object" in kb:
                    return None
                shared.add("object")
        return shared

    def _objects_only(self, conj: Conjunction) -> bool:
        types = self.signature(conj)["types"]
        return types is not None and set(types) <= {"object"}

    def disjoint_by_values(self, a: Conjunction, b: Conjunction) -> bool:
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

    def unsatisfiable(self, parts: Conjunction) -> bool:
        """Some two parts provably admit no common value (prunes distributed alternatives)."""
        if len(parts) < 2:
            return False
        sigs = [self.signature([p]) for p in parts]
        return any(self.sig_disjoint(sigs[i], sigs[j]) for i in range(len(sigs)) for j in range(i + 1, len(sigs)))

    def signature(self, conj: Conjunction) -> dict[str, Any]:
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
            vtypes = {json_type(v) for v in values}
            types = vtypes if types is None else types & (vtypes | ({"integer"} if "number" in vtypes else set()))
        return {
            "types": types, "consts": consts, "required": required, "closed": closed, "values": values,
            "forbidden": forbidden, "excluded": excluded,
        }

    @staticmethod
    def sig_disjoint(a: dict[str, Any], b: dict[str, Any]) -> bool:
        if a["types"] is not None and b["types"] is not None:
            ta, tb = set(a["types"]), set(b["types"])
            if "number" in ta:
                ta.add("integer")
            if "number" in tb:
                tb.add("integer")
            if not ta & tb:
                return True
        if a["values"] is not None and b["values"] is not None:
            if not any(json_equal(x, y) for x in a["values"] for y in b["values"]):
                return True
        if a["required"] & b["forbidden"] or b["required"] & a["forbidden"]:
            return True  # "not required [k]" admits only objects without k; "required" objects have k
        for x, y in ((a, b), (b, a)):
            if x["values"] is not None and all(any(json_equal(v, e) for e in y["excluded"]) for v in x["values"]):
                return True
        only_objects = a["types"] is not None and b["types"] is not None and set(a["types"]) | set(b["types"]) <= {"object"}
        some_objects_only = any(x["types"] is not None and set(x["types"]) <= {"object"} for x in (a, b))
        for k in set(a["consts"]) & set(b["consts"]):
            if some_objects_only and (k in a["required"] and k in b["required"]) and not any(
                json_equal(x, y) for x in a["consts"][k] for y in b["consts"][k]
            ):
                return True
        if only_objects:
            if a["closed"] is not None and b["required"] - a["closed"]:
                return True
            if b["closed"] is not None and a["required"] - b["closed"]:
                return True
        return False
