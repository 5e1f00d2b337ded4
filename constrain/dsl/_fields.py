"""The fields a bound ``dsl/filter`` or ``dsl/chart`` grammar may name, and the type of each.

``field_list(obj)`` reads any of: a pydantic model class (its JSON Schema's properties, nested models as
dotted paths ``a.b``), a JSON Schema (``{"type": "object", "properties": {...}}``), a mapping
``{name: type}`` (``"string"``, ``"number"``, ``"integer"``, ``"boolean"``, ``"date"``, or a JSON Schema
of the field), or a sequence of ``Field``. JSON Schema strings with ``format: date`` or ``date-time``
are dates; string enums (``enum``, ``const``, pydantic ``Literal`` and ``Enum``) become the only values
of their field. Properties no filter value can be compared with (arrays, free-form objects, mixed
unions) are left out. ``fields_of_table`` reads a SQLite table's columns; ``load_fields`` reads the
command line's ``--fields SPEC``.

The DSL has no quoting, so every name must be a plain (dotted) identifier; anything else is an
``InputError`` naming the field.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence, get_args

from ..grammar import Example
from ..grammar._compose import _Block, _drop_unreached_embedded, _split_blocks, _with_newline
from ..errors import InputError
from ._terminals import MAX_INT_DIGITS
from ._values import _FIELD, _check_value

__all__ = ["Field", "FieldKind", "TYPES", "field_list", "fields_spec", "fields_of_table", "load_fields", "sqlite_type"]

FieldKind = Literal["string", "number", "integer", "boolean", "date"]
TYPES: tuple[str, ...] = get_args(FieldKind)


MAX_NOTE_CHARS = 160  # a field's description, cut at this length in the model's prompt


@dataclass(frozen=True)
class Field:
    """One field: its (dotted) name, its type, for a string field the only values it takes (if any), and the
    schema's ``description`` of it, for the model's prompt (it does not restrict the values; ``enum`` does)."""

    name: str
    type: FieldKind
    enum: tuple[str, ...] = ()
    description: str = ""

    def describe(self) -> str:
        """``amount (number)``, ``country (string: "DE", "FR")``, ``flight (string): the flight number``: the
        field's line in a grammar's description."""
        values = ", ".join(json.dumps(v, ensure_ascii=False) for v in self.enum)
        kind = f"{self.type}: {values}" if values else self.type
        note = " ".join(self.description.split())
        if len(note) > MAX_NOTE_CHARS:
            note = note[: MAX_NOTE_CHARS - 3].rstrip() + "..."
        return f"{self.name} ({kind}): {note}" if note else f"{self.name} ({kind})"


def field_list(obj: Any) -> tuple[Field, ...]:
    """The fields ``obj`` names, in declaration order (see the module docs for what ``obj`` may be)."""
    if isinstance(obj, (list, tuple)) and all(isinstance(f, Field) for f in obj):
        fields = tuple(obj)
    elif isinstance(obj, type) and hasattr(obj, "model_json_schema"):
        fields = tuple(_schema_fields(obj.model_json_schema(), obj.__name__))
    elif isinstance(obj, Mapping) and _is_object_schema(obj):
        fields = tuple(_schema_fields(obj, "the JSON Schema"))
    elif isinstance(obj, Mapping):
        fields = tuple(_mapping_field(name, kind) for name, kind in obj.items())
    else:
        raise InputError(
            "fields are a pydantic model class, a JSON Schema, a mapping {name: type} or fields_of_table(...), "
            f"not {type(obj).__name__}"
        )
    return _checked(fields)


def records_noun(records: Any) -> str:
    """``records=`` of a bound DSL, checked: what requests call the records, a plural noun (``"orders"``)."""
    if not isinstance(records, str) or not records.strip() or "\n" in records:
        raise InputError("records= is what requests call the records, a plural noun such as 'orders'",
                         source=repr(records))
    return records.strip()


def fields_spec(obj: Any) -> dict[str, str]:
    """``{name: type}`` for the fields ``obj`` names (enum values are in ``field_list``)."""
    return {f.name: f.type for f in field_list(obj)}


def _checked(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    if not fields:
        raise InputError(f"no fields to bind: give at least one field of type {', '.join(TYPES)}")
    fields = tuple(Field(f.name, f.type, tuple(f.enum), str(f.description or ""))
                   for f in fields)  # hashable: grammars are cached
    seen: set[str] = set()
    for f in fields:
        if not isinstance(f.name, str) or not _FIELD.fullmatch(f.name):
            raise InputError(
                f"field {f.name!r} cannot be written in the filter language, which has no quoting: a name is "
                "letters, digits and '_' (not starting with a digit), up to 64 characters, dotted for nested "
                "fields (at most 8 parts); rename the field or leave it out"
            )
        if f.name in seen:
            raise InputError(f"field {f.name!r} is named twice")
        seen.add(f.name)
        if f.type not in TYPES:
            raise InputError(f"field {f.name!r} has unknown type {f.type!r}; one of {', '.join(TYPES)}")
        if f.enum and f.type != "string":
            raise InputError(f"field {f.name!r}: only string fields take a list of values")
        for value in f.enum:
            if not isinstance(value, str):
                raise InputError(f"field {f.name!r}: enum value {value!r} is not a string")
            try:
                _check_value(value)
            except InputError as exc:
                raise InputError(f"field {f.name!r}: enum value {value[:40]!r}: {exc}") from None
    return fields


# -- JSON Schema ----------------------------------------------------------------------------------------


def _is_object_schema(obj: Mapping[str, Any]) -> bool:
    return isinstance(obj.get("properties"), Mapping) or (isinstance(obj.get("$ref"), str) and "properties" not in obj)


def _schema_fields(schema: Mapping[str, Any], source: str) -> Iterator[Field]:
    root, seen = _deref(schema, schema, ())
    if root is None or not isinstance(root.get("properties"), Mapping):
        raise InputError(f"{source} is not an object schema with properties")
    yield from _object_fields(root, schema, "", seen)


def _object_fields(obj: Mapping[str, Any], root: Mapping[str, Any], prefix: str, seen: tuple[str, ...]) -> Iterator[Field]:
    for name, prop in obj["properties"].items():
        yield from _property_fields(prop, root, f"{prefix}{name}", seen)


def _property_fields(prop: Any, root: Mapping[str, Any], path: str, seen: tuple[str, ...]) -> Iterator[Field]:
    prop, seen = _deref(prop, root, seen)
    if prop is None:
        return  # a cycle (a model that contains itself, whose fields are listed above) or `true`
    branches = _non_null_branches(prop)
    if len(branches) == 1:  # the property itself, or an Optional[...] of one thing
        branch, branch_seen = _deref(branches[0], root, seen)
        if branch is not None and isinstance(branch.get("properties"), Mapping):
            yield from _object_fields(branch, root, path + ".", branch_seen)
            return
    scalar = _scalar(prop, root, seen)
    if scalar is not None:
        yield Field(path, scalar[0], scalar[1], _description(prop, branches, root, seen))


def _description(prop: Mapping[str, Any], branches: list[Any], root: Mapping[str, Any], seen: tuple[str, ...]) -> str:
    """A property's ``description`` (pydantic writes it beside an Optional's ``anyOf``; a referenced schema
    may carry it too)."""
    places = [prop]
    if len(branches) == 1:
        branch, _ = _deref(branches[0], root, seen)
        if branch is not None:
            places.append(branch)
    return next((p["description"] for p in places if isinstance(p.get("description"), str)), "")


def _deref(prop: Any, root: Mapping[str, Any], seen: tuple[str, ...]) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
    """``prop`` with local ``$ref``s (and single-member ``allOf``) resolved; None on a reference cycle
    and for the schemas ``true``/``false``."""
    while isinstance(prop, Mapping):
        ref = prop.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return None, seen
            seen = seen + (ref,)
            prop = _resolve(ref, root)
            continue
        all_of = prop.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            prop = all_of[0]
            continue
        return prop, seen
    if isinstance(prop, bool):
        return None, seen
    raise InputError(f"not a JSON Schema: {prop!r}"[:200])


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    if not ref.startswith("#/"):
        raise InputError(f"only local $refs (#/...) are read, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise InputError(f"$ref {ref!r} points nowhere")
        node = node[part]
    return node


def _non_null_branches(prop: Mapping[str, Any]) -> list[Any]:
    for key in ("anyOf", "oneOf"):
        branches = prop.get(key)
        if isinstance(branches, list):
            return [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
    return [prop]


def _scalar(prop: Mapping[str, Any], root: Mapping[str, Any], seen: tuple[str, ...]) -> tuple[FieldKind, tuple[str, ...]] | None:
    """(type, enum values) of a property a filter value can be compared with, else None."""
    branches = _non_null_branches(prop)
    if branches != [prop]:
        parts = []
        for branch in branches:
            resolved, _ = _deref(branch, root, seen)
            part = None if resolved is None else _scalar(resolved, root, seen)
            if part is None:
                return None
            parts.append(part)
        kinds = {kind for kind, _ in parts}
        if kinds == {"integer", "number"}:
            return "number", ()
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        enum = tuple(dict.fromkeys(v for _, values in parts for v in values))
        return kind, (enum if all(values for _, values in parts) else ())  # type: ignore[return-value]
    if "const" in prop or "enum" in prop:
        values = [prop["const"]] if "const" in prop else list(prop["enum"] or ())
        values = [v for v in values if v is not None]
        if values and all(isinstance(v, str) for v in values):
            return "string", tuple(dict.fromkeys(values))
        if values and all(isinstance(v, bool) for v in values):
            return "boolean", ()
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "integer", ()
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return "number", ()
        return None
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = {k for k in kind if k != "null"}
        kind = "number" if kinds == {"integer", "number"} else (kinds.pop() if len(kinds) == 1 else None)
    if kind == "string":
        return ("date", ()) if prop.get("format") in ("date", "date-time") else ("string", ())
    if kind in ("number", "integer", "boolean"):
        return kind, ()
    return None


def _mapping_field(name: Any, kind: Any) -> Field:
    if not isinstance(name, str):
        raise InputError(f"field names are strings, not {name!r}")
    if isinstance(kind, str):
        if kind not in TYPES:
            raise InputError(f"field {name!r} has unknown type {kind!r}; one of {', '.join(TYPES)}")
        return Field(name, kind)  # type: ignore[arg-type]
    if isinstance(kind, Mapping):  # the field's own JSON Schema, e.g. {"type": "string", "enum": [...]}
        prop, _ = _deref(kind, kind, ())
        scalar = None if prop is None else _scalar(prop, kind, ())
        if scalar is None or prop is None:
            raise InputError(f"field {name!r}: its schema is not a {', '.join(TYPES)} value")
        return Field(name, scalar[0], scalar[1], _description(prop, _non_null_branches(prop), kind, ()))
    raise InputError(f"field {name!r}: type is one of {', '.join(TYPES)} or a JSON Schema, not {kind!r}")


# -- SQLite ---------------------------------------------------------------------------------------------


def sqlite_type(declared: str) -> FieldKind:
    """The field type of a SQLite column's declared type (after SQLite's own affinity rules, roughly)."""
    t = declared.upper()
    if "BOOL" in t:
        return "boolean"
    if "INT" in t:
        return "integer"
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "number"
    if "DATE" in t or "TIMESTAMP" in t:
        return "date"
    return "string"


def fields_of_table(db: str | os.PathLike[str] | sqlite3.Connection, table: str) -> dict[str, str]:
    """``{column: type}`` of a SQLite table or view, from the declared column types (``PRAGMA table_info``).

    ``db`` is an open connection, a file path (opened read-only) or a packaged database name (``chinook``).
    """
    if isinstance(db, sqlite3.Connection):
        return _table_fields(db, table, "the database")
    from .._databases import resolve_database

    path = resolve_database(db)
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open the database: {exc}", source=str(path)) from None
    try:
        return _table_fields(connection, table, str(path))
    finally:
        connection.close()


def _table_fields(connection: sqlite3.Connection, table: str, source: str) -> dict[str, str]:
    try:
        rows = connection.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
        if not rows:
            names = [r[0] for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")]
            raise InputError(f"no table named {table!r}; tables: {', '.join(names) or 'none'}", source=source)
    except sqlite3.Error as exc:
        raise InputError(f"cannot read table {table!r}: {exc}", source=source) from None
    return {name: sqlite_type(declared or "") for name, declared in rows}


# -- the command line's --fields SPEC -------------------------------------------------------------------


def load_fields(spec: str) -> Any:
    """What ``--fields SPEC`` names, as an object ``field_list`` reads.

    ``SPEC`` is ``sqlite:PATH:TABLE``, a ``.json`` JSON Schema file, ``name:type,name:type,...``, or
    ``module:Model`` (a pydantic model).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("--fields is empty: give module:Model, SCHEMA.json, name:type,... or sqlite:PATH:TABLE")
    if spec.startswith("sqlite:"):
        path, sep, table = spec[len("sqlite:"):].rpartition(":")
        if not sep or not path or not table:
            raise InputError("expected sqlite:PATH:TABLE", source=spec)
        return fields_of_table(path, table)
    from ..json_schema import load_schema

    if Path(spec).suffix == ".json" or spec == "-" or Path(spec).is_file():
        return load_schema(spec)
    if ":" not in spec:
        raise InputError("expected module:Model, SCHEMA.json, name:type,... or sqlite:PATH:TABLE", source=spec)
    pairs = [item.partition(":") for item in spec.split(",")]
    if "," in spec or pairs[0][2].strip() in TYPES:
        mapping: dict[str, str] = {}
        for name, sep, kind in pairs:
            name, kind = name.strip(), kind.strip()
            if not sep or not name:
                raise InputError(f"expected name:type, not {name + sep + kind!r}", source=spec)
            if name in mapping:
                raise InputError(f"field {name!r} is named twice", source=spec)
            mapping[name] = kind
        return mapping
    try:
        return load_schema(spec)
    except InputError as exc:  # or a mistyped name:type
        raise InputError(f"{exc}; as name:type, the type is one of {', '.join(TYPES)}") from None


# -- grammar text ---------------------------------------------------------------------------------------


def lark_literal(text: str) -> str:
    """``text`` as a Lark string literal both engines read back as ``text``."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable() or ord(c) > 0xFFFF:  # llguidance reads no \U escape; it reads astral characters raw
            out.append(c)
        else:  # e.g. DEL, which llguidance refuses raw in a literal
            out.append(f"\\u{ord(c):04x}")
    return '"' + "".join(out) + '"'


def literals(texts: Sequence[str]) -> str:
    """An alternation of Lark literals, longest first (so no spelling is cut short by a prefix of it)."""
    return " | ".join(lark_literal(t) for t in sorted(texts, key=lambda t: (-len(t), t)))


def integer_regex() -> str:
    """The integers of the filter's NUMBER terminal (at most ``MAX_INT_DIGITS`` digits, no fraction or exponent)."""
    return f"-?(?:[1-9][0-9]{{0,{MAX_INT_DIGITS - 1}}}|0)"


def rebuild(source: str, drop: set[str], generated: str, header: str, keep: Sequence[str] = ()) -> str:
    """A packaged grammar's ``source`` without its comments and the definitions in ``drop``, with
    ``generated`` definitions added and ``header`` on top; definitions no longer reached (besides
    ``start`` and ``keep``) are left out."""
    blocks: list[_Block] = []
    for block in _split_blocks(source):
        if block.kind == "trivia" or block.kind == "definition" and block.name in drop:
            continue
        # marked "embedded" so that _drop_unreached_embedded drops it when nothing reaches it
        block.embedded = block.kind == "definition" and block.name not in ("start", *keep)
        blocks.append(block)
    blocks += _split_blocks(generated)
    body = "".join(_with_newline(b.text) for b in _drop_unreached_embedded(blocks))
    return header + body


def bound_grammar(
    packaged: str, fields: tuple[Field, ...], name: str, *, summary: str, description: str,
    examples: Sequence[Example], text: Callable[[str], str], transform: Callable[[Any], Any], extra: Sequence[str] = (),
) -> Any:
    """A packaged DSL bound to ``fields``: ``text(header)`` is its grammar text, ``transform`` turns a
    tree into its typed value; the guide and the packaged grammar's bound ride along."""
    from ..grammar._typed import run_transformer
    from ..grammar import Grammar, load_grammar

    max_tokens = load_grammar(packaged).max_tokens
    head = header(f"{summary} over {', '.join(f.name for f in fields)}"[:200], description, examples, max_tokens, extra)
    return Grammar(text(head), name=name, parser="earley", description=description, examples=examples,
                   max_tokens=max_tokens, listed_values={f.name: f.enum for f in fields if f.enum},
                   _typer=lambda source, tree: run_transformer(transform, source, tree, name))


def header(summary: str, description: str, examples: Sequence[Example], max_tokens: int | None, extra: Sequence[str] = ()) -> str:
    """The leading comment block of a generated grammar (the packaged grammars' format)."""
    lines = [f"// {summary}", "// parser: earley", *(f"// {e}" for e in extra)]
    lines += [f"// description: {_printable(line)}" for line in description.split("\n") if line.strip()]
    for output, request in examples:
        # an example with a line separator inside a string value would read back in another spelling
        if not output.replace("\n", "").isprintable():
            continue
        if request is not None:
            lines.append(f"// request: {_printable(request)}")
        lines.append("// example: " + output.replace("\\", "\\\\").replace("\n", "\\n"))
    if max_tokens:
        lines.append(f"// max-tokens: {max_tokens}")
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
