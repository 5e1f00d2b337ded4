"""The local validators behind a schema grammar: jsonschema (with format checks) or pydantic."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable
from urllib.parse import quote

import jsonschema
import lark
from jsonschema.protocols import Validator

from ..errors import ValidationError
from ._formats import format_checker
from ._patterns import ecma_pattern

_ROOT_URI = "urn:constrain:schema"


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not ecma_pattern(patrn)(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in patterns.items():
        search = ecma_pattern(patrn)
        for k, v in instance.items():
            if search(k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _additional_properties(validator: Any, ap: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    props = schema.get("properties", {})
    searches = [ecma_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in props and not any(search(k) for search in searches)]
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif ap is False and extras:
        yield jsonschema.ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, sorted(extras)))} unexpected)")


_ECMA_KEYWORDS = {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties}


@functools.lru_cache(maxsize=16)
def _ecma_class(cls: type[Validator]) -> type[Validator]:
    """The draft's validator with ECMA-262 pattern semantics."""
    return jsonschema.validators.extend(cls, _ECMA_KEYWORDS)  # type: ignore[no-any-return]


def _validator_class(schema: Any) -> type[Validator]:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return _ecma_class(cls)


def schema_validator(schema: Any) -> Validator:
    cls = _validator_class(schema)
    return cls(schema, format_checker=format_checker())


def validator_for_pointers(root: Any, pointers: list[str | dict[str, Any]]) -> Validator:
    """A validator requiring every subschema at ``pointers`` to hold: a JSON pointer into ``root``, or a
    schema object (a part the compiler built by merging), whose local ``$ref`` resolve against ``root``."""
    import referencing
    import referencing.jsonschema

    cls = _validator_class(root)
    uri = _ROOT_URI
    if isinstance(root, dict):
        for key in ("$id", "id"):
            if isinstance(root.get(key), str) and root[key]:
                uri = root[key].split("#")[0] or _ROOT_URI
                break
    built = [p for p in pointers if not isinstance(p, str)]
    if built:
        root = {**root, _PARTS: built} if isinstance(root, dict) else {_PARTS: built}
    spec = referencing.jsonschema.specification_with(
        cls.META_SCHEMA.get("$schema", ""), default=referencing.jsonschema.DRAFT202012
    )
    resource = spec.create_resource(root)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(uri, resource)
    if uri != _ROOT_URI:
        registry = registry.with_resource(_ROOT_URI, resource)
    refs: list[str] = []
    index = 0
    for p in pointers:
        if isinstance(p, str):
            refs.append(p)
        else:
            refs.append(f"/{_PARTS}/{index}")
            index += 1
    conj = {"allOf": [{"$ref": f"{uri}#{quote(p, safe='/~')}"} for p in refs]}
    return cls(conj, registry=registry, format_checker=format_checker())


_PARTS = "$constrain-parts"


class SchemaViolation(ValidationError):
    """A well-formed JSON text whose value breaks the schema; ``pointer`` (RFC 6901) names the failing
    value, and ``line`` / ``column`` / ``offset`` locate it in the text when it could be found."""

    def __init__(self, message: str, *, pointer: str, text: str, engine: str, grammar: str, tree: lark.Tree | None = None) -> None:
        self.pointer = pointer
        where = _locate(text, tree, pointer) if tree is not None else None
        line, column, offset = where if where is not None else (None, None, None)
        super().__init__(message, text=text, offset=offset, line=line, column=column, engine=engine, grammar=grammar)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "pointer": self.pointer}


def json_pointer(path: Any) -> str:
    """RFC 6901 pointer for a sequence of keys and indices ("" is the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _locate(text: str, tree: lark.Tree, pointer: str) -> tuple[int, int, int] | None:
    """(line, column, byte offset) of the value at ``pointer`` in a tree of the packaged JSON grammar."""
    node: Any = tree.children[0] if tree.data == "start" and tree.children else tree
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    for part in parts:
        if isinstance(node, lark.Tree) and node.data == "object":
            found = None
            for member in node.children:
                if isinstance(member, lark.Tree) and member.data == "member" and json.loads(member.children[0]) == part:
                    found = member.children[1]  # the last one wins, as in json.loads
            node = found
        elif isinstance(node, lark.Tree) and node.data == "array" and part.isdigit() and int(part) < len(node.children):
            node = node.children[int(part)]
        else:
            return None
        if node is None:
            return None
    if isinstance(node, lark.Token):
        pos, line, column = node.start_pos, node.line, node.column
    elif isinstance(node, lark.Tree) and not node.meta.empty:
        pos, line, column = node.meta.start_pos, node.meta.line, node.meta.column
    else:
        return None
    if pos is None or line is None or column is None:
        return None
    return line, column, len(text[:pos].encode("utf-8"))


def _raise(text: str, message: str, path: str, engine: str, grammar: str, tree: lark.Tree | None = None) -> None:
    if len(message) > 300:
        message = message[:297] + "..."
    raise SchemaViolation(
        f"schema violation at {path or '/'}: {message}", pointer=path if path != "/" else "", text=text,
        engine=engine, grammar=grammar, tree=tree,
    )


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _load_unique(text: str, engine: str, grammar_name: str) -> Any:
    """The JSON value, refusing an object that repeats a key (json.loads would keep the last silently)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as exc:
        _raise(text, f"duplicate object key {exc.args[0]!r}", "/", engine, grammar_name)


def schema_typer(schema: Any, grammar_name: str) -> Callable[[str, lark.Tree], Any]:
    """Typed result for a raw schema: the parsed value, once jsonschema finds no error."""
    validator = schema_validator(schema)

    def typed(text: str, tree: lark.Tree) -> Any:
        value = _load_unique(text, "jsonschema", grammar_name)
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except Exception as exc:  # a pattern Python cannot compile, an unresolvable $ref, ...
            # never return a value the validator could not check
            _raise(text, f"the validator could not check this value ({type(exc).__name__}: {exc})", "/", "jsonschema", grammar_name)
        if error is not None:
            path = json_pointer(error.absolute_path)
            _raise(text, error.message, path or "/", "jsonschema", grammar_name, tree)
        return value

    return typed


def model_typer(model: Any, grammar_name: str) -> Callable[[str, lark.Tree], Any]:
    """Typed result for a pydantic model (or any type pydantic adapts): the validated instance."""
    import pydantic

    adapter = pydantic.TypeAdapter(model)

    def typed(text: str, tree: lark.Tree) -> Any:
        _load_unique(text, "pydantic", grammar_name)
        try:
            return adapter.validate_json(text)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            path = json_pointer(first.get("loc", ()))
            _raise(text, f"{first.get('msg')} ({exc.error_count()} error(s))", path or "/", "pydantic", grammar_name, tree)
            raise AssertionError from None

    return typed
