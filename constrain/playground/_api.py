"""What each playground API call does: a thin layer over the public functions.

``handle(op, body)`` runs in a worker process (see ``_workers``), so a grammar that makes an engine
spin costs one killed worker, never the server. Every request is a JSON object; every answer is a
JSON object, or a ``ConstrainError`` the server turns into a typed 4xx answer.

Requests name the grammar by its text (``grammar``) and, optionally, where that text came from
(``origin``): ``{"kind": "packaged", "name": "dsl/cron"}``, ``{"kind": "json-schema", "schema": ...,
"widen": false}`` or ``{"kind": "sql", "dialect": "sqlite", "tables": {"t": {"c": "INTEGER"}}}``.
While the text is exactly what that origin compiles to, the typed check of the origin applies (the
DSL's value, the schema validator, sqlglot and the read-only policy); once the text is edited, only
the two engines judge.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import os
import random
import tempfile
from typing import Any, Callable, Mapping

from ..errors import ConstrainError, GrammarError, InputError, ValidationError
from ..grammar import Grammar, available_grammars, load_grammar
from ..grammar._packaged import read_header
from ..grammar.explain import explain, lark_verdict
from ..grammar.lint import TARGETS

__all__ = ["LIMITS", "handle", "grammar_list", "packaged_grammar"]

LIMITS: dict[str, int] = {
    "grammar_bytes": 512 << 10,  # a grammar's text
    "text_bytes": 256 << 10,  # the test input
    "schema_bytes": 512 << 10,  # a JSON Schema or DDL text
    "sqlite_bytes": 16 << 20,  # an uploaded SQLite database file
    "samples": 50,  # samples per request
    "sample_bytes": 4000,  # --max-bytes of one sample
    "shown_chars": 20_000,  # a parse tree or typed value is cut to this many characters
}

_PROMPT = "Write the answer."  # the user message in the example provider requests


# -- request fields ------------------------------------------------------------------------------------
def _str_field(body: Mapping[str, Any], key: str, limit: str, *, required: bool = True, default: str = "") -> str:
    value = body.get(key, None if required else default)
    if not isinstance(value, str):
        raise InputError(f"`{key}` must be a string" + ("" if value is None else f", got {type(value).__name__}"))
    size = len(value.encode("utf-8"))
    if size > LIMITS[limit]:
        raise InputError(f"`{key}` is {size:,} bytes, over the playground's limit of {LIMITS[limit]:,}")
    return value


def _int_field(body: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"`{key}` must be an integer from {low} to {high}, got {value!r}")
    return value


def _origin(body: Mapping[str, Any]) -> str:
    origin = body.get("origin")
    if origin is not None and not isinstance(origin, dict):
        raise InputError("`origin` must be an object like {\"kind\": \"packaged\", \"name\": \"json\"}")
    return json.dumps(origin, sort_keys=True)


# -- grammars -------------------------------------------------------------------------------------------
def grammar_list() -> list[dict[str, str]]:
    return [{"name": info.name, "description": info.description} for info in available_grammars()]


def packaged_grammar(name: str) -> dict[str, Any]:
    grammar = load_grammar(name)  # GrammarError names the packaged grammars for an unknown one
    return {"name": grammar.name, "text": grammar.text, "origin": {"kind": "packaged", "name": grammar.name}}


@functools.lru_cache(maxsize=8)
def _origin_grammar(origin_json: str) -> Grammar | None:
    """The grammar an origin compiles to, with its typed check; None without an origin."""
    origin = json.loads(origin_json)
    if origin is None:
        return None
    kind = origin.get("kind")
    if kind == "packaged":
        name = origin.get("name")
        if not isinstance(name, str) or name not in {i.name for i in available_grammars()}:
            raise InputError(f"origin names no packaged grammar: {name!r}")
        grammar = load_grammar(name)
        if name.startswith("sql/"):
            return _sql_typed(grammar, name.removeprefix("sql/"), None)
        return grammar
    if kind == "json-schema":
        return _json_schema_grammar(origin.get("schema"), bool(origin.get("widen")), bool(origin.get("compact", True)))
    if kind == "sql":
        from ..sql import Schema, grammar as sql_grammar

        dialect = origin.get("dialect", "sqlite")
        schema = Schema.from_dict(origin.get("tables") or {}, dialect=dialect)
        return _sql_typed(sql_grammar(dialect, schema), dialect, schema)
    raise InputError(f"unknown origin kind {kind!r} (packaged, json-schema, sql)")


def _sql_typed(grammar: Grammar, dialect: str, schema: Any) -> Grammar:
    """The SQL grammar whose typed check is ``constrain.sql.validate`` (sqlglot, the read-only policy, the schema)."""
    from ..sql import validate

    def typer(text: str, tree: Any) -> Any:
        query = validate(text, dialect, schema)
        return {"sql": query.text, "tables": list(query.tables), "columns": list(query.columns)}

    grammar.parser  # build lark once here: the typed copy shares the parser
    return grammar._with_typer(typer)


@functools.lru_cache(maxsize=32)
def _grammar(text: str, origin_json: str) -> Grammar:
    """The grammar of the editor's text: the origin's own (typed) grammar while the text is unchanged."""
    typed = _origin_grammar(origin_json)
    if typed is not None and typed.text == text:
        return typed
    if not text.strip():
        raise InputError("the grammar is empty")
    parser = read_header(text).parser
    return Grammar(text, name="grammar", parser=parser, max_bytes=LIMITS["text_bytes"])


def _request_grammar(body: Mapping[str, Any]) -> Grammar:
    return _grammar(_str_field(body, "grammar", "grammar_bytes"), _origin(body))


# -- check ----------------------------------------------------------------------------------------------
def check(body: Mapping[str, Any]) -> dict[str, Any]:
    """``Grammar.check`` for the chosen targets, the hang probe's verdict, and each provider's request."""
    grammar = _request_grammar(body)
    targets = body.get("targets", [])
    if not isinstance(targets, list) or any(t not in TARGETS for t in targets):
        raise InputError(f"`targets` must be a list drawn from {sorted(TARGETS)}, got {targets!r}")
    diagnostics = grammar.check(targets=tuple(targets))
    llg_refuses = any(d.engine == "llguidance" and d.severity == "error" and d.code == "llguidance" for d in diagnostics)
    hang = next((d for d in diagnostics if d.code == "llguidance-hang"), None)
    builds = not any(d.severity == "error" and d.engine == "lark" for d in diagnostics)
    return {
        "ok": not any(d.severity == "error" for d in diagnostics),
        "name": grammar.name,
        "typed": grammar._typer is not None,
        "parser": grammar.parser if builds else None,
        "diagnostics": [d.to_dict() for d in diagnostics],
        "hang_probe": {
            "ran": not llg_refuses,
            "hangs": hang is not None,
            "message": hang.message if hang is not None else (
                "llguidance refuses the grammar, so the probe did not run" if llg_refuses
                else "every random walk finished its token masks in time"),
        },
        "requests": provider_requests(grammar),
    }


def provider_requests(grammar: Grammar) -> dict[str, Any]:
    """The exact request body each provider would receive for this grammar from ``generate`` (built by the
    providers: the grammar's guide in the system message, or in the tool's description)."""
    from ..generate import constraint_for, messages_for
    from ..providers import VLLM, LlamaCppServer, OpenAI
    builders: dict[str, tuple[str, Callable[[], Any]]] = {
        # the key is a placeholder so that the default base URL does not demand one; only build() runs
        "openai": ("POST https://api.openai.com/v1/responses", lambda: OpenAI(api_key="-")),
        "vllm": ("POST http://127.0.0.1:8000/v1/chat/completions", lambda: VLLM("MODEL")),
        "llamacpp": ("POST http://127.0.0.1:8080/v1/chat/completions", lambda: LlamaCppServer()),
    }
    out: dict[str, Any] = {}
    try:
        bound = grammar.max_tokens  # the attempt's bound, as generate sends it
    except ConstrainError:  # a grammar lark cannot build has no computed bound; each provider says why below
        bound = None
    for name, (endpoint, make) in builders.items():
        try:
            provider = make()
            messages = messages_for(_PROMPT, grammar, in_tool=provider.tool_descriptions)
            request = provider.build(messages, constraint_for(grammar, in_tool=provider.tool_descriptions), max_tokens=bound, stream=False)
        except ConstrainError as exc:
            out[name] = {"endpoint": endpoint, "error": str(exc).splitlines()[0]}
        else:
            out[name] = {"endpoint": endpoint, "body": request.body}
    return out


# -- explain --------------------------------------------------------------------------------------------
def explain_text(body: Mapping[str, Any]) -> dict[str, Any]:
    """``constrain explain``'s verdicts, plus the parse tree and the typed value of an accepted text."""
    grammar = _request_grammar(body)
    text = _str_field(body, "text", "text_bytes")
    explanation = explain(grammar, text)
    out = explanation.to_dict()
    out["typed"] = grammar._typer is not None
    out["tree"] = _cut(grammar.parse(text).pretty()) if explanation.verdicts[0].ok else None
    out["value"] = None
    if explanation.ok and grammar._typer is not None:
        out["value"] = _cut(json.dumps(_jsonable(grammar.parse_typed(text)), indent=2, ensure_ascii=False, default=repr))
    return out


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _cut(text: str) -> str:
    limit = LIMITS["shown_chars"]
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit:,} more characters)"


# -- sample ---------------------------------------------------------------------------------------------
def sample(body: Mapping[str, Any]) -> dict[str, Any]:
    """``Grammar.sample``, each sample re-checked by lark-python and, where the grammar has one, its typed check."""
    grammar = _request_grammar(body)
    n = _int_field(body, "n", 8, 1, LIMITS["samples"])
    max_bytes = _int_field(body, "max_bytes", 400, 1, LIMITS["sample_bytes"])
    seed = body.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    seed = _int_field({"seed": seed}, "seed", 0, 0, 2**63 - 1)
    out = []
    for text in grammar.sample(n, seed=seed, max_bytes=max_bytes):
        verdict = lark_verdict(grammar, text)
        typed: dict[str, Any] | None = None
        if verdict.ok and grammar._typer is not None:
            try:
                grammar.parse_typed(text)
                typed = {"ok": True, "message": ""}
            except ValidationError as exc:
                typed = {"ok": False, "message": str(exc).splitlines()[0], "error": exc.to_dict()}
        out.append({"text": text, "lark_ok": verdict.ok,
                    "lark_error": None if verdict.error is None else verdict.error.to_dict(), "typed": typed})
    return {"seed": seed, "requested": n, "max_bytes": max_bytes, "samples": out}


# -- compile-schema -------------------------------------------------------------------------------------
def _json_schema_grammar(schema: Any, widen: bool, compact: bool) -> Grammar:
    from ..json_schema import grammar as schema_grammar

    return schema_grammar(schema, widen=widen, compact=compact)


def compile_schema(body: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema, a SQLite database or SQL DDL compiled to its grammar (and the origin to send back)."""
    kind = body.get("kind")
    if kind == "json-schema":
        raw = body.get("schema")
        if isinstance(raw, str):
            _str_field(body, "schema", "schema_bytes")
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"the schema is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        elif len(json.dumps(raw)) > LIMITS["schema_bytes"]:
            raise InputError(f"the schema is over the playground's limit of {LIMITS['schema_bytes']:,} bytes")
        widen, compact = bool(body.get("widen", False)), bool(body.get("compact", True))
        from ..json_schema import widenings

        grammar = _json_schema_grammar(raw, widen, compact)
        return {
            "name": grammar.name,
            "grammar": grammar.text,
            "widenings": [{"keyword": k, "pointer": p} for k, p in widenings(grammar)],
            "origin": {"kind": "json-schema", "schema": raw, "widen": widen, "compact": compact},
        }
    if kind in ("sqlite", "ddl"):
        from ..sql import Schema, grammar as sql_grammar

        dialect = body.get("dialect", "sqlite")
        if not isinstance(dialect, str):
            raise InputError("`dialect` must be a string")
        if kind == "ddl":
            schema = Schema.from_ddl(_str_field(body, "ddl", "schema_bytes"), dialect)
        else:
            schema = _schema_from_upload(body)
            dialect = "sqlite"
        grammar = sql_grammar(dialect, schema)
        tables = {t.name: {c.name: c.type for c in t.columns} for t in schema.tables}
        return {
            "name": grammar.name,
            "grammar": grammar.text,
            "tables": tables,
            "widenings": [],
            "origin": {"kind": "sql", "dialect": dialect, "tables": tables},
        }
    raise InputError(f"`kind` must be json-schema, sqlite or ddl, got {kind!r}")


def _schema_from_upload(body: Mapping[str, Any]) -> Any:
    from ..sql import Schema

    encoded = body.get("database_base64")
    if not isinstance(encoded, str):
        raise InputError("`database_base64` must hold the SQLite file, base64-encoded")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("`database_base64` is not valid base64") from None
    if len(data) > LIMITS["sqlite_bytes"]:
        raise InputError(f"the database is {len(data):,} bytes, over the playground's limit of {LIMITS['sqlite_bytes']:,}")
    with tempfile.TemporaryDirectory(prefix="constrain-playground-") as folder:
        path = os.path.join(folder, str(body.get("filename") or "upload.sqlite").replace("/", "_")[-100:] or "db")
        with open(path, "wb") as file:
            file.write(data)
        return Schema.from_sqlite(path)


# -- dispatch -------------------------------------------------------------------------------------------
OPERATIONS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "check": check,
    "explain": explain_text,
    "sample": sample,
    "compile-schema": compile_schema,
}


def handle(op: str, body: Any) -> dict[str, Any]:
    """Run one API operation on a decoded JSON body."""
    if op not in OPERATIONS:
        raise InputError(f"unknown operation {op!r}")
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return OPERATIONS[op](body)


def error_status(exc: BaseException) -> int:
    """The HTTP status of an error: 400 for a bad request, 422 for a grammar or schema that cannot be used."""
    if isinstance(exc, GrammarError):
        return 422
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, ConstrainError):
        return 422
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    if isinstance(exc, GrammarError):
        error["diagnostics"] = [d.to_dict() for d in exc.diagnostics]
    for key in ("keyword", "pointer", "offset"):
        if getattr(exc, key, None) not in (None, ""):
            error[key] = getattr(exc, key)
    return {"error": error}
