"""The complement of a schema, as a union of schemas the compiler states exactly.

``negate(schema)`` returns a list of schemas whose union is exactly the set of JSON values that do
*not* conform to ``schema``, or None when some keyword's complement is not available in that form.
A schema is the conjunction of its keywords, so its complement is the union of the keywords'
complements, each restricted to the values the keyword applies to (``required`` only speaks of
objects, so its complement is the objects that lack a key):

=====================================  ===============================================================
keyword                                values that break it
=====================================  ===============================================================
``type: T``                            ``type``: the other types (for ``integer``, also the numbers
                                       with a fraction: ``not: {type: integer}``)
``enum`` / ``const``                   ``not: {enum}`` over strings, booleans, null (a string excluded
                                       by a regex of its spelling), and numbers in the open ranges
                                       around the listed ones
``required: [k, ...]``                 an object without ``k`` (``not: {required: [k]}``), for each
``properties: {k: S}``                 an object with ``k`` whose value is in the complement of ``S``
``pattern``                            a string it does not match (``not: {pattern}``)
``format`` whose check is a regex      a string outside it (``not: {format}``; date, uuid, ipv4, ipv6,
                                       duration, uri-template, json-pointer, relative-json-pointer)
``minimum`` / ``maximum`` / exclusive  a number on the other side
``minLength`` / ``maxLength``          a string of a length outside
``minItems`` / ``maxItems``            an array of a length outside
``minProperties`` / ``maxProperties``  an object with a count outside (compiled where the compiler can)
``dependentRequired`` (array form of   an object with ``k`` and without one of its dependencies
``dependencies``)
``allOf`` / ``anyOf`` / ``not``        the union / the intersection (distributed) / the schema itself
``$ref``                               the complement of the target (not through a cycle)
``if`` / ``then`` / ``else``           ``if`` and not ``then``, or not ``if`` and not ``else``
=====================================  ===============================================================

Keywords whose complement is not a plain schema here (the other ``format`` values, ``multipleOf``,
``items``, ``additionalProperties``, ``patternProperties``, ``propertyNames``, ``contains``,
``uniqueItems``, ``oneOf``, ...) make ``negate`` return None, and the caller refuses as before.
Every schema returned is a JSON Schema, so the validator and the compiler's ``enum`` filter read it
as it stands.
"""

from __future__ import annotations

from typing import Any, Callable

TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
MAX_ALTERNATIVES = 64
"""Largest union returned; a bigger one (an ``anyOf`` of many complements, distributed) is refused."""

_COMPLEMENTED = frozenset(
    """type enum const required properties minimum maximum exclusiveMinimum exclusiveMaximum minLength
    maxLength minItems maxItems minProperties maxProperties allOf anyOf not $ref if then else dependencies
    dependentRequired uniqueItems pattern""".split()
)


class _Refused(Exception):
    pass


def negate(
    schema: Any,
    *,
    resolve: Callable[[Any], Any],
    legacy: bool,
    draft4: bool,
    keywords: frozenset[str],
    asserted_formats: frozenset[str] = frozenset(),
    exact_formats: frozenset[str] = frozenset(),
) -> list[Any] | None:
    """The complement of ``schema`` as a union of schemas, or None. ``resolve`` maps a ``$ref`` value
    to its target schema (raising for anything not local); ``keywords`` are the validation keywords;
    a ``format`` outside ``asserted_formats`` is an annotation (no values break it); one in
    ``exact_formats`` (a check that is exactly a regex) is broken by the strings outside that regex."""
    try:
        out = _Negator(resolve, legacy, draft4, keywords, asserted_formats, exact_formats).negate(schema, frozenset())
    except _Refused:
        return None
    return out


class _Negator:
    def __init__(
        self,
        resolve: Callable[[Any], Any],
        legacy: bool,
        draft4: bool,
        keywords: frozenset[str],
        formats: frozenset[str],
        exact_formats: frozenset[str],
    ) -> None:
        self.resolve = resolve
        self.legacy = legacy
        self.draft4 = draft4
        self.keywords = keywords
        self.formats = formats
        self.exact_formats = exact_formats

    def negate(self, schema: Any, refs: frozenset[str]) -> list[Any]:
        if schema is True:
            return []
        if schema is False:
            return [True]
        if not isinstance(schema, dict):
            raise _Refused
        keys = [k for k in schema if k in self.keywords and not (k == "format" and schema[k] not in self.formats)]
        if "format" in keys and schema["format"] in self.exact_formats:
            keys.remove("format")
            out_format: list[Any] = [{"type": "string", "not": {"format": schema["format"]}}]
        else:
            out_format = []
        if any(k not in _COMPLEMENTED for k in keys):
            raise _Refused
        out: list[Any] = []
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or ref in refs:
                raise _Refused  # a cycle: the complement would need a rule of its own
            try:
                target = self.resolve(ref)
            except Exception:
                raise _Refused from None
            out += self.negate(target, refs | {ref})
            if self.legacy:
                return self._bounded(out)
        for key in keys:
            if key == "$ref":
                continue
            out += self.keyword(key, schema[key], schema, refs)
            self._bounded(out)
        return self._bounded(out + out_format)

    @staticmethod
    def _bounded(out: list[Any]) -> list[Any]:
        if len(out) > MAX_ALTERNATIVES:
            raise _Refused
        return out

    # -- one keyword ------------------------------------------------------------------------------------
    def keyword(self, key: str, value: Any, schema: dict[str, Any], refs: frozenset[str]) -> list[Any]:
        if key == "type":
            types = {value} if isinstance(value, str) else set(value) if isinstance(value, list) else None
            if types is None or not types <= set(TYPES):
                raise _Refused
            if "number" in types:
                types.add("integer")
            rest = [t for t in TYPES if t not in types and t not in ("number", "integer")]
            out_types: list[Any] = [{"type": rest}] if rest else []
            if "number" not in types:
                # numbers break "integer" when they have a fraction
                out_types.append({"type": "number"} if "integer" not in types else {"type": "number", "not": {"type": "integer"}})
            return out_types
        if key in ("enum", "const"):
            values = [value] if key == "const" else value
            if not isinstance(values, list):
                raise _Refused
            return self.not_values(values)
        if key == "required":
            if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
                raise _Refused
            return [{"type": "object", "not": {"required": [k]}} for k in dict.fromkeys(value)]
        if key == "properties":
            if not isinstance(value, dict):
                raise _Refused
            out: list[Any] = []
            for name, sub in value.items():
                for neg in self.negate(sub, refs):
                    out.append({"type": "object", "required": [name], "properties": {name: neg}})
                    self._bounded(out)
            return out
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return self.not_bound(key, value, schema)
        if key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
                raise _Refused
            n = int(value)
            kind = {"Length": "string", "Items": "array", "Properties": "object"}[key[3:]]
            if key.startswith("min"):
                return [{"type": kind, key.replace("min", "max"): n - 1}] if n > 0 else []
            return [{"type": kind, key.replace("max", "min"): n + 1}]
        if key == "allOf":
            if not isinstance(value, list):
                raise _Refused
            out = []
            for sub in value:
                out += self.negate(sub, refs)
                self._bounded(out)
            return out
        if key == "anyOf":
            if not isinstance(value, list) or not value:
                raise _Refused
            combos: list[list[Any]] = [[]]
            for sub in value:
                negs = self.negate(sub, refs)
                combos = [c + [n] for c in combos for n in negs]
                self._bounded(combos)
            return [c[0] if len(c) == 1 else {"allOf": c} for c in combos]
        if key == "not":
            return [value]
        if key == "if":
            then = schema.get("then", True)
            other = schema.get("else", True)
            out = [{"allOf": [value, n]} for n in self.negate(then, refs)]
            out += [{"allOf": [a, b]} for a in self.negate(value, refs) for b in self.negate(other, refs)]
            return self._bounded(out)
        if key in ("then", "else"):
            return []  # handled with "if"; without "if" they do nothing
        if key in ("dependencies", "dependentRequired"):
            if not isinstance(value, dict):
                raise _Refused
            out = []
            for name, dep in value.items():
                if isinstance(dep, list):
                    out += [{"type": "object", "required": [name], "not": {"required": [d]}} for d in dep if isinstance(d, str)]
                elif key == "dependencies":
                    out += [{"allOf": [{"type": "object", "required": [name]}, n]} for n in self.negate(dep, refs)]
                else:
                    raise _Refused
                self._bounded(out)
            return out
        if key == "pattern":
            if not isinstance(value, str):
                raise _Refused
            return [{"type": "string", "not": {"pattern": value}}]
        if key == "uniqueItems":
            if value is False:
                return []
            raise _Refused
        raise _Refused

    def not_values(self, values: list[Any]) -> list[Any]:
        """Values equal to none of ``values``."""
        numbers = sorted({v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if any(isinstance(v, (list, dict)) for v in values):
            raise _Refused  # a value unequal to an array or object: not stated here
        others = [v for v in values if not (isinstance(v, (int, float)) and not isinstance(v, bool))]
        types = ["null", "boolean", "object", "array", "string"]
        out: list[Any] = []
        if numbers:
            out.append({"type": types, "not": {"enum": others}} if others else {"type": types})
            bounds = [None] + numbers + [None]
            for lo, hi in zip(bounds, bounds[1:]):
                part: dict[str, Any] = {"type": "number"}
                if lo is not None:
                    part["exclusiveMinimum"] = lo
                if hi is not None:
                    part["exclusiveMaximum"] = hi
                out.append(self._legacy_bounds(part))
        else:
            out.append({"not": {"enum": others}})
        return out

    def not_bound(self, key: str, value: Any, schema: dict[str, Any]) -> list[Any]:
        if isinstance(value, bool):
            if not self.draft4:
                raise _Refused
            return []  # draft 4's flags only modify minimum / maximum
        if not isinstance(value, (int, float)):
            raise _Refused
        if self.draft4 and key in ("exclusiveMinimum", "exclusiveMaximum"):
            raise _Refused  # a number here is not draft 4
        strict = self.draft4 and schema.get("exclusive" + key[0].upper() + key[1:]) is True
        if key == "minimum":
            part = {"type": "number", "maximum" if strict else "exclusiveMaximum": value}
        elif key == "maximum":
            part = {"type": "number", "minimum" if strict else "exclusiveMinimum": value}
        elif key == "exclusiveMinimum":
            part = {"type": "number", "maximum": value}
        else:
            part = {"type": "number", "minimum": value}
        return [self._legacy_bounds(part)]

    def _legacy_bounds(self, part: dict[str, Any]) -> dict[str, Any]:
        """Draft 4 spells exclusive bounds as flags next to ``minimum`` / ``maximum``."""
        if not self.draft4:
            return part
        out: dict[str, Any] = {"type": part["type"]}
        for side in ("Minimum", "Maximum"):
            if "exclusive" + side in part:
                out[side.lower()] = part["exclusive" + side]
                out["exclusive" + side] = True
            elif side.lower() in part:
                out[side.lower()] = part[side.lower()]
        return out
