"""Typed JSON: a pydantic model or a JSON Schema compiled to a Lark grammar.

``grammar(Model)`` returns a :class:`~constrain.Grammar` whose language is the JSON documents that
conform to the schema (what it states exactly, and its documented narrowings: ``grammar``); its typed
result is the pydantic instance, or for a raw schema the value once ``jsonschema`` finds no error.

This package may import only the layers below it: ``constrain.errors``, ``constrain.grammar`` (the
``Grammar`` it returns), ``constrain.engines`` (llguidance checks each compiled grammar) and the shared
regex code ``_regex`` builds on; never ``generate``, ``providers``, the CLI, nor ``sql`` / ``dsl``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import llguidance

from ..errors import InputError, JSONSchemaError
from ..grammar import Grammar
from ..engines import llg_engine
from ._grammar import SchemaGrammar
from ._compiler import Limits, compile_schema
from ._describe import describe, listed_values, token_bound
from ._validate import SchemaViolation, model_typer, schema_typer

__all__ = [
    "grammar", "schema_of", "load_schema", "widenings", "describe", "token_bound", "Limits", "SchemaGrammar",
    "SchemaViolation",
]

_LLG_LIMITS = dict(max_lexer_states=50_000, initial_lexer_fuel=2_000_000, max_grammar_size=400_000)


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema")


def schema_of(model_or_schema: Any) -> Any:
    """The JSON Schema for a pydantic model class, or the schema itself (a dict or a boolean)."""
    if _is_model(model_or_schema):
        return model_or_schema.model_json_schema()
    if isinstance(model_or_schema, (dict, bool)):
        return model_or_schema
    try:
        import pydantic

        return pydantic.TypeAdapter(model_or_schema).json_schema()
    except Exception:
        raise JSONSchemaError(
            f"expected a pydantic model, a type pydantic understands, or a JSON Schema; got {type(model_or_schema).__name__}"
        ) from None


def grammar(
    model_or_schema: Any,
    *,
    compact: bool = True,
    widen: bool = False,
    limits: Limits | None = None,
    name: str | None = None,
    declared_keys: bool = True,
) -> Grammar:
    """Compile a pydantic model or a JSON Schema to a ``Grammar`` of exactly the conforming JSON.

    ``compact=True``: no insignificant whitespace; ``compact=False``: up to 32 whitespace characters
    around each ``{ } [ ] , :``. ``widen=True``: keywords a grammar cannot state are left to the
    validator (below) instead of raising ``JSONSchemaError``. ``declared_keys=True``: an object that
    does not say whether it takes other keys gets only its declared ones (below).

    The grammar is written in the Lark subset lark-python and llguidance both read. Its typed result
    (``Grammar.parse_typed`` / ``parse_json`` / the generate loop) is the pydantic instance, or for a raw
    schema the value once ``jsonschema`` (with format checks) finds no error.

    What the grammar states exactly: ``type``, ``enum``, ``const``, ``properties`` / ``required`` /
    ``additionalProperties``, ``patternProperties`` (any patterns, next to ``additionalProperties`` too:
    automata split the keys into the regions the patterns cut), ``propertyNames`` (enum, pattern, lengths),
    ``items`` / ``prefixItems`` / ``additionalItems``, ``minItems`` / ``maxItems``, ``minLength`` /
    ``maxLength``, ``minProperties`` / ``maxProperties`` (the member count kept in the rules), ``pattern``
    (ECMA-262 translated; nested repetitions a backtracking matcher would choke on, and a lookahead right
    after a leading ``^``, through automata; other lookaround and backreferences refused), several
    patterns and a format together (their intersection), ``format`` for date, date-time, time, uuid,
    email, ipv4, ipv6, uri, uri-reference, hostname, duration, uri-template, json-pointer and
    relative-json-pointer, ``minimum`` / ``maximum`` / exclusive bounds, ``multipleOf`` over small integer
    ranges, ``anyOf``, ``allOf`` (merged), local ``$ref`` / ``$defs`` / ``definitions`` including recursion,
    and — through the complement of a schema (``_negate``) — ``not``, ``if`` / ``then`` / ``else``,
    ``dependencies`` / ``dependentRequired`` / ``dependentSchemas`` (where the declared draft's validator
    knows them), and ``oneOf`` whose branches may overlap (branch i and not the others).

    Choices (documented narrowings — the grammar never admits a non-conforming value, it only fixes one
    spelling or leaves out keys nobody asked for): properties come in declared order; an object that
    declares ``properties`` and says nothing of others (no ``additionalProperties``, no
    ``patternProperties``: pydantic's default ``extra="ignore"``) gets only its declared keys, as in
    OpenAI's and XGrammar's strict modes, so a model is not invited to invent keys
    (``declared_keys=False`` admits additional keys between the declared ones, as the schema allows);
    keys are admitted beyond the declared ones only where the schema says so (``additionalProperties``
    ``true`` or a schema, ``patternProperties``); next to so many declared keys that the regex for the
    other keys is large, those come before the declared ones; numbers with bounds are written without an
    exponent, and a number that must not be an integer with a fraction and at most 15 significant digits
    (6 before the point and 9 after it under bounds); strings under ``pattern``, ``format`` or a ``not`` of
    strings spell characters literally except where JSON requires an escape.

    So there are two languages. The *generation grammar* (``Grammar.text``, what the model is constrained
    by) is the one above. *Validation* (``validate`` / ``parse_json`` / ``parse_typed``, and the generate
    loop's check) accepts every JSON spelling of a conforming value: any key order, any whitespace,
    additional keys wherever the schema allows them (see ``SchemaGrammar``).

    The grammar also carries what the model is told (``Grammar.description``: the fields, their types,
    ranges, formats, descriptions and which are required, see ``describe``) and the longest answer worth
    waiting for (``Grammar.max_tokens``, see ``token_bound``).

    Anything else (``uniqueItems``, ``contains``, ``unevaluated*``, a complement or an intersection whose
    automaton or regex would pass the size bounds, formats the validator asserts but the grammar cannot
    state, ...) raises ``JSONSchemaError`` naming the keyword and its JSON pointer. With ``widen=True`` those keywords are
    dropped from the grammar instead, listed in ``widenings(g)``, and still enforced by the
    local validator, so no non-conforming value is ever returned as valid. Widen mode also admits the
    properties of an object with two or more of them in any order (one repeated alternation over the
    declared and additional members, listed as ``("properties", pointer)``); the validator then refuses
    a missing required key, and both validators refuse an object that repeats a key.
    """
    schema = schema_of(model_or_schema)
    _check_metaschema(schema)
    limits = limits or Limits()
    label = name or _label(model_or_schema, schema)
    text, widened, needs_earley = compile_schema(schema, compact=compact, widen=widen, limits=limits, declared_keys=declared_keys)
    header = f"// JSON conforming to {label}\n"
    text = header + text
    _check_llguidance(text)
    typer = model_typer(model_or_schema, label) if _is_model(model_or_schema) or not isinstance(model_or_schema, (dict, bool)) else schema_typer(schema, label)
    result = SchemaGrammar(
        text, name=label, parser="earley" if needs_earley else "auto", description=describe(schema),
        max_tokens=token_bound(schema), listed_values=listed_values(schema),
    )
    typed = result._with_typer(typer)
    typed.widenings = tuple(widened)  # type: ignore[attr-defined]
    return typed


def _check_metaschema(schema: Any) -> None:
    """A ``$schema`` naming a metaschema other than the drafts' own (custom vocabularies) is refused:
    its keywords could mean something else than the validator assumes."""
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    if declared is None:
        return
    import jsonschema.validators

    known = {uri.rstrip("#") for uri in jsonschema.validators._META_SCHEMAS}  # type: ignore[attr-defined]
    if not isinstance(declared, str) or (declared.rstrip("#") not in known and "//json-schema.org/" not in declared):
        raise JSONSchemaError(f"unknown metaschema {declared!r}: only the drafts' own are supported", keyword="$schema", pointer="#/$schema")


def widenings(g: Grammar) -> list[tuple[str, str]]:
    """(keyword, JSON pointer) pairs ``grammar(..., widen=True)`` left to the validator alone."""
    return list(getattr(g, "widenings", ()))


def _label(model_or_schema: Any, schema: Any) -> str:
    if _is_model(model_or_schema):
        return str(model_or_schema.__name__)
    if isinstance(schema, dict) and isinstance(schema.get("title"), str) and schema["title"].strip():
        return schema["title"].strip()[:60]
    return "schema"


def _check_llguidance(text: str) -> None:
    """Compile in llguidance under explicit limits, so a hostile schema fails here, not in a server."""
    try:
        lark_json = llg_engine.lark_to_llg(text)
        message = llguidance.LLMatcher.validate_grammar(
            lark_json, llg_engine.byte_tokenizer(), limits=llguidance.LLParserLimits(**_LLG_LIMITS)
        )
    except (ValueError, RuntimeError) as exc:
        message = str(exc)
    if message and not message.startswith("WARNING"):
        raise JSONSchemaError(f"llguidance refuses the compiled grammar: {message.splitlines()[0][:300]}", keyword="", pointer="#")


def load_schema(spec: str) -> Any:
    """``path/to/schema.json`` (a JSON Schema) or ``package.module:Model`` (a pydantic model)."""
    path = Path(spec)
    if path.suffix == ".json" or path.exists() or spec == "-":
        import sys

        try:
            raw = sys.stdin.read() if spec == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read schema: {exc.strerror}", source=spec) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"schema is not valid UTF-8 at byte {exc.start}", source=spec, offset=exc.start) from None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"schema is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source=spec) from None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError("expected SCHEMA.json or module:Model", source=spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"cannot import {module_name!r}: {exc}", source=spec) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{module_name!r} has no attribute {attr!r}", source=spec)
        obj = getattr(obj, part)
    return obj

