"""JSON Schema / pydantic -> grammar: exactness against jsonschema, typed results, refusals, limits."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Literal, Optional, Union

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain import Grammar, JSONSchemaError, ValidationError
from constrain.json_schema import Limits, grammar, widenings
from constrain.json_schema._validate import schema_validator


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def engine_verdicts(g: Grammar, text: str) -> tuple[bool, bool]:
    """(llguidance accepts, lark accepts)."""
    try:
        g.parse(text)
        lark_ok = True
    except ValidationError:
        lark_ok = False
    return g.matches(text), lark_ok


def accepted(g: Grammar, text: str) -> bool:
    """Both engines must agree; returns their common verdict."""
    llg, lark_ok = engine_verdicts(g, text)
    assert llg == lark_ok, f"engines disagree on {text!r}: llguidance={llg} lark={lark_ok}"
    return llg


def conforms(schema: Any, value: Any) -> bool:
    return schema_validator(schema).is_valid(value)


# -- numbers: the grammar agrees with jsonschema on bounds ---------------------------------------------------
bound = st.one_of(st.none(), st.integers(-1000, 1000), st.decimals(-100, 100, places=2).map(float))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["integer", "number"]),
    lo=bound,
    hi=bound,
    lo_exclusive=st.booleans(),
    hi_exclusive=st.booleans(),
    values=st.lists(st.one_of(st.integers(-1200, 1200), st.decimals(-120, 120, places=3).map(float)), min_size=5, max_size=15),
)
def test_number_bounds_match_jsonschema(
    kind: str, lo: Any, hi: Any, lo_exclusive: bool, hi_exclusive: bool, values: list[Any]
) -> None:
    schema: dict[str, Any] = {"type": kind}
    if lo is not None:
        schema["exclusiveMinimum" if lo_exclusive else "minimum"] = lo
    if hi is not None:
        schema["exclusiveMaximum" if hi_exclusive else "maximum"] = hi
    try:
        g = grammar(schema)
    except JSONSchemaError as exc:
        assert "admits no value" in str(exc)
        assert not any(conforms(schema, v) for v in values)
        return
    for v in values + [lo, hi]:
        if v is None:
            continue
        text = compact(v)
        if "e" in text.lower():
            continue  # bounded numbers are written without exponent (documented)
        assert accepted(g, text) == conforms(schema, v), (schema, text)


# -- patterns: the grammar agrees with the regex on decoded strings -----------------------------------------
PATTERNS = [
    "^[a-z]+$",
    "^\\d{3}-\\d{4}$",
    "abc",
    "^(foo|bar)+$",
    "^[^\\s\"]*$",
    "x$",
    "^a.c",
    "^([a-z0-9]+-)*[a-z0-9]+$",
    "^\\w{2,4}$",
    "^[\\u00e0-\\u00ff]+$",
    "^(?:a|b)?c{1,2}$",
    '^".*\\\\$',
]
TEXTS = st.text(alphabet=st.sampled_from(list('abcfoxr-019 "\\\n\té\u00ff_')), max_size=8)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(TEXTS, min_size=10, max_size=10))
def test_pattern_matches_like_the_regex(pattern: str, samples: list[str]) -> None:
    g = _pattern_grammar(pattern)
    python = re.compile(pattern.replace("$", "\\Z"), re.ASCII)  # ECMA: $ is the very end, \\w is ASCII
    for s in samples + ["abc", "foo", "a-b", "x", '"x\\']:
        assert accepted(g, compact(s)) == bool(python.search(s)), (pattern, s)


_PATTERN_GRAMMARS: dict[str, Grammar] = {}


def _pattern_grammar(pattern: str) -> Grammar:
    if pattern not in _PATTERN_GRAMMARS:
        _PATTERN_GRAMMARS[pattern] = grammar({"type": "string", "pattern": pattern})
    return _PATTERN_GRAMMARS[pattern]


# -- every sampled document conforms: the grammar never admits a non-conforming value ---------------------
SAMPLED_SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 500},
            "kind": {"enum": ["a", "b", 3, None]},
            "when": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 3},
        },
        "required": ["id"],
        "patternProperties": {"^x-[a-z]{1,3}$": {"type": "boolean"}},
        "additionalProperties": False,
    },
    {
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}, "required": ["v"], "additionalProperties": False}},
        "$ref": "#/$defs/node",
    },
    {
        "oneOf": [
            {"type": "object", "properties": {"t": {"const": "x"}, "n": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}, "required": ["t", "n"], "additionalProperties": False},
            {"type": "object", "properties": {"t": {"const": "y"}, "s": {"type": "string", "pattern": "^[A-Z]{2}$"}}, "required": ["t"], "additionalProperties": False},
        ]
    },
    {"type": "array", "prefixItems": [{"type": "string", "format": "uuid"}, {"type": "boolean"}], "items": False, "minItems": 1},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"a": True, "b": {"type": "string", "format": "ipv4"}}, "additionalProperties": False}]},
    {"type": "string", "format": "date-time"},
]


@pytest.mark.parametrize("index", range(len(SAMPLED_SCHEMAS)))
def test_sampled_documents_conform(index: int) -> None:
    schema = SAMPLED_SCHEMAS[index]
    g = grammar(schema)
    samples = g.sample(25, seed=index, max_bytes=300)
    assert samples, "the random walk produced no document"
    for text in samples:
        value = json.loads(text)
        assert conforms(schema, value), (schema, text)
        assert g.parse_typed(text) == value


# -- typed results ---------------------------------------------------------------------------------------
class Cat(pydantic.BaseModel):
    kind: Literal["cat"]
    lives: int = pydantic.Field(ge=0, le=9)


class Dog(pydantic.BaseModel):
    kind: Literal["dog"]
    name: str = pydantic.Field(min_length=1, max_length=20)


class Owner(pydantic.BaseModel):
    name: str
    email: Optional[str] = None
    pets: list[Annotated[Union[Cat, Dog], pydantic.Field(discriminator="kind")]] = []
    score: float = pydantic.Field(ge=0, le=1)
    best_friend: Optional["Owner"] = None


def test_pydantic_model_returns_an_instance() -> None:
    g = grammar(Owner)
    text = compact(
        {
            "name": "Ann",
            "pets": [{"kind": "cat", "lives": 7}, {"kind": "dog", "name": "Rex"}],
            "score": 0.25,
            "best_friend": {"name": "Bo", "score": 1},
        }
    )
    owner = g.parse_json(text)
    assert isinstance(owner, Owner)
    assert isinstance(owner.pets[1], Dog) and owner.best_friend is not None and owner.best_friend.name == "Bo"
    for bad in (
        '{"name":"Ann","score":1.5}',  # out of range
        '{"name":"Ann","pets":[{"kind":"cow","lives":1}],"score":0}',  # unknown discriminator
        '{"name":"Ann","pets":[{"kind":"cat","lives":10}],"score":0}',
        '{"score":0}',  # missing required name
    ):
        assert not g.matches(bad)  # the generation grammar refuses it
        with pytest.raises(ValidationError) as info:  # and so does validation of outside text
            g.parse_json(bad)
        assert info.value.engine == "pydantic"


def test_raw_schema_returns_the_validated_value_and_widen_is_enforced_by_jsonschema() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(JSONSchemaError) as info:
        grammar(schema)
    assert info.value.keyword == "uniqueItems" and info.value.pointer == "#/uniqueItems"
    g = grammar(schema, widen=True)
    assert widenings(g) == [("uniqueItems", "#/uniqueItems")]
    assert g.parse_json("[1,2,3]") == [1, 2, 3]
    with pytest.raises(ValidationError) as err:
        g.parse_json("[1,2,1]")
    assert err.value.engine == "jsonschema" and "non-unique" in str(err.value)


def test_declared_order_and_extras_between() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["b"]}
    g = grammar(schema, declared_keys=False)
    assert accepted(g, '{"a":1,"b":2}') and accepted(g, '{"b":2}') and accepted(g, '{"a":1,"x":[],"b":2,"y":{}}')
    assert not accepted(g, '{"b":2,"a":1}')  # declared order (documented)
    assert not accepted(g, '{"a":1}') and not accepted(g, '{"b":"2"}') and not accepted(g, '{"b":2,"a":"x"}')


@pytest.mark.parametrize(
    ("extra", "open_"),
    [(None, False), (True, True), ({"type": "integer"}, True), (False, False)],
)
def test_generation_grammar_admits_undeclared_keys_only_where_the_schema_says(extra: Any, open_: bool) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["b"]}
    if extra is not None:
        schema["additionalProperties"] = extra
    g = grammar(schema)
    assert accepted(g, '{"a":1,"b":2}') and accepted(g, '{"b":2}')
    assert accepted(g, '{"a":1,"b":2,"x":3}') is open_
    assert not accepted(g, '{"b":2,"a":1}')
    # validation accepts every spelling the schema accepts: any order, extra keys where it allows them
    assert g.parse_json('{"b":2,"a":1}') == {"b": 2, "a": 1}
    if extra is not False:
        assert g.parse_json('{"x":3,"b":2}') == {"x": 3, "b": 2}


def test_generation_grammar_keeps_required_undeclared_and_pattern_keys() -> None:
    # a required key the properties do not declare stays writable; patternProperties stay open
    g = grammar({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["z"]})
    assert accepted(g, '{"a":1,"z":"anything"}') and not accepted(g, '{"a":1}')
    g = grammar({"type": "object", "properties": {"a": {"type": "integer"}}, "patternProperties": {"^x_": {"type": "integer"}},
                 "additionalProperties": False})
    assert accepted(g, '{"a":1,"x_1":2}') and not accepted(g, '{"a":1,"y":2}')
    assert accepted(grammar({"type": "object"}), '{"any":[1,{"k":null}]}')  # nothing declared: an open map


def test_pydantic_extra_modes_in_the_generation_grammar() -> None:
    import pydantic

    class Ignore(pydantic.BaseModel):
        a: int

    class Allow(pydantic.BaseModel, extra="allow"):
        a: int

    assert not accepted(grammar(Ignore), '{"a":1,"b":2}') and grammar(Ignore).parse_json('{"a":1,"b":2}', Ignore).a == 1
    assert accepted(grammar(Allow), '{"a":1,"b":2}')


def test_whitespace_modes() -> None:
    schema = {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}}}}
    tight, loose = grammar(schema), grammar(schema, compact=False)
    pretty = json.dumps({"xs": [1, 2]}, indent=2)
    assert accepted(tight, '{"xs":[1,2]}') and not accepted(tight, pretty)
    assert accepted(loose, pretty) and accepted(loose, '{"xs":[1,2]}')
    assert not accepted(loose, "{" + " " * 100 + "}")  # whitespace runs are bounded


def test_formats_agree_with_the_validator() -> None:
    cases = {
        "date": (["2024-02-29", "1999-12-31"], ["2023-02-29", "2024-13-01", "0000-01-01", "24-01-01"]),
        "date-time": (["2024-01-02T03:04:05Z", "2024-01-02t03:04:05.123+05:30"], ["2024-01-02 03:04:05Z", "2024-01-02T25:00:00Z"]),
        "time": (["23:59:59Z", "00:00:00+01:00"], ["24:00:00Z", "12:00"]),
        "uuid": (["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000"]),
        "email": (["a.b+c@example.org"], ["no-at-sign", "a@"]),
        "ipv4": (["192.168.0.1"], ["256.1.1.1", "01.2.3.4"]),
    }
    for fmt, (good, bad) in cases.items():
        schema = {"type": "string", "format": fmt}
        g = grammar(schema)
        for s in good:
            assert accepted(g, compact(s)) and conforms(schema, s), (fmt, s)
        for s in bad:
            assert not accepted(g, compact(s)), (fmt, s)


# -- refusals name the keyword and the pointer ----------------------------------------------------------------
@pytest.mark.parametrize(
    "schema, keyword, pointer",
    [
        ({"type": "string", "pattern": "a(?=b)"}, "pattern", "#/pattern"),
        ({"type": "string", "pattern": "(a)\\1"}, "pattern", "#/pattern"),
        ({"properties": {"x": {"$ref": "http://example.com/s.json"}}}, "$ref", "#/properties/x"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems", "#/uniqueItems"),
        ({"type": "array", "if": {"items": {"type": "integer"}}, "then": {"minItems": 1}}, "if", "#/if"),
        ({"type": "array", "contains": {"type": "integer"}}, "contains", "#/contains"),
        ({"type": "string", "format": "iri"}, "format", "#/format"),
    ],
)
def test_refusals_name_keyword_and_pointer(schema: dict[str, Any], keyword: str, pointer: str) -> None:
    with pytest.raises(JSONSchemaError) as info:
        grammar(schema)
    assert info.value.keyword == keyword
    assert info.value.pointer == pointer
    assert keyword in str(info.value)
    g = grammar(schema, widen=True) if keyword != "$ref" else None
    if g is not None:
        assert widenings(g), "widen=True must record what it left to the validator"


# -- hostile schemas: bounded work, clear errors ---------------------------------------------------------------
def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    "schema, fragment",
    [
        (_deep(2000), "deeper than"),
        ({"enum": list(range(200_000))}, "over the limit"),
        ({"type": "array", "minItems": 10**9}, "minItems"),
        ({"type": "string", "pattern": "^((a{1,1000}){1,1000}){1,1000}$"}, "repetition"),
        ({"type": "string", "minLength": 10**9}, "minLength"),
        ({"$ref": "#"}, "admits no value"),
        ({"allOf": [{"$ref": "#"}]}, "recursive"),
        ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "admits no value"),
    ],
)
def test_hostile_schemas_are_refused_quickly(schema: Any, fragment: str) -> None:
    start = time.perf_counter()
    with pytest.raises(JSONSchemaError) as info:
        grammar(schema)
    assert fragment in str(info.value)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("pattern", ["^(a+b?)+$", "^(\\w+\\s?)*$"])
def test_nested_repetitions_are_read_by_an_automaton(pattern: str) -> None:
    """Patterns a backtracking matcher would take exponential time on are compiled from their
    automaton (an unambiguous regex), and validated by it: no engine backtracks on a near miss."""
    g = grammar({"type": "string", "pattern": pattern})
    assert widenings(g) == []
    near_miss = compact("a" * 40 + "!")
    start = time.perf_counter()
    assert not accepted(g, near_miss)
    with pytest.raises(ValidationError):
        g.parse_json(near_miss)
    with pytest.raises(ValidationError):
        g.parse(near_miss)
    assert time.perf_counter() - start < 5
    assert accepted(g, compact("ab" * 20)) and g.parse_json(compact("aab" * 5)) == "aab" * 5


def test_anyof_explosion_and_time_budget_are_bounded() -> None:
    branches = [{"anyOf": [{"properties": {f"k{i}": {"type": "integer"}}}, {"properties": {f"k{i}": {"type": "string"}}}]} for i in range(12)]
    with pytest.raises(JSONSchemaError) as info:
        grammar({"type": "object", "allOf": branches})
    assert any(s in str(info.value) for s in ("alternatives", "longer than", "would exceed"))
    with pytest.raises(JSONSchemaError) as slow:
        grammar(_deep(5), limits=Limits(seconds=0.0))
    assert "longer than" in str(slow.value)


def test_large_but_legal_schema_compiles() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"enum": [f"v{j}" for j in range(50)]} for i in range(60)}, "additionalProperties": False}
    g = grammar(schema)
    value = {f"p{i}": f"v{i % 50}" for i in range(0, 60, 2)}
    assert g.parse_json(compact(value)) == value


# -- CLI ----------------------------------------------------------------------------------------------------
def test_cli_json_grammar_and_validate_schema(tmp_path: Any, capsys: Any, monkeypatch: Any) -> None:
    from constrain.cli import main

    schema = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}}, "required": ["id"], "additionalProperties": False}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    assert main(["json-grammar", str(path)]) == 0
    printed = capsys.readouterr().out
    assert Grammar(printed).text.strip() == grammar(schema).text.strip()

    lines = tmp_path / "out.jsonl"
    lines.write_text('{"id":3}\n{"id":0}\n{"id":2,"x":1}\n', encoding="utf-8")
    assert main(["validate", "--schema", str(path), "--lines", str(lines), "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["ok"] for r in records[:3]] == [True, False, False]
    assert records[-1]["passed"] == 1 and records[-1]["failed"] == 2

    (tmp_path / "h6_models.py").write_text(
        "import pydantic\nclass Point(pydantic.BaseModel):\n    x: int\n    y: int = 0\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["json-grammar", "h6_models:Point", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert '"\\"x\\""' in record["grammar"] and record["widened"] == []

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "array", "uniqueItems": True}), encoding="utf-8")
    assert main(["json-grammar", str(bad)]) == 2
    assert "(uniqueItems) at #/uniqueItems" in capsys.readouterr().err


def test_open_object_with_many_declared_keys_takes_additional_properties_first() -> None:
    """Past MAX_EXCLUSION_CHARS the key regex for other keys is still exact, written once: additional
    properties come before the declared ones (a spelling choice); past MAX_LEADING_EXCLUSION_CHARS the
    exclusion is widened, and only on request."""
    names = [f"{chr(97 + i % 26)}{i:02d}_distinct_property_name_{i * 7919 % 1000}" for i in range(40)]
    schema = {"type": "object", "properties": {name: {"type": "integer"} for name in names}}
    g = grammar(schema, declared_keys=False)
    assert widenings(g) == []
    assert accepted(g, f'{{"other":"x","more":[],"{names[3]}":1,"{names[9]}":2}}')
    assert not accepted(g, f'{{"{names[3]}":1,"other":"x"}}')  # additional ones first: the spelling
    assert not accepted(g, f'{{"{names[7]}":"not an integer"}}')  # a declared name is never an additional key
    assert not accepted(g, f'{{"{names[7]}":1,"{names[7]}":2}}')
    assert accepted(grammar(schema), f'{{"{names[3]}":1,"{names[9]}":2}}')  # declared keys only: exact
    many = [f"{chr(97 + i % 26)}{i:03d}_{'distinct_property_name_' * 2}{i * 7919 % 1000}" for i in range(900)]
    huge = {"type": "object", "properties": {name: {"type": "integer"} for name in many}}
    with pytest.raises(JSONSchemaError) as info:
        grammar(huge, declared_keys=False)
    assert info.value.keyword == "additionalProperties"
    g = grammar(huge, widen=True, declared_keys=False)
    assert ("additionalProperties", "#") in widenings(g)
    key = many[7]
    assert g.parse_json(f'{{"{key}":1,"other":"x"}}') == {key: 1, "other": "x"}
    with pytest.raises(ValidationError):  # never returned, whichever path the engines take
        g.parse_json(f'{{"{key}":"not an integer"}}')


PROPERTY_TYPES = {"integer": st.integers(-50, 50), "string": st.text(max_size=4), "boolean": st.booleans()}


@st.composite
def permuted_objects(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """An object schema and a conforming object whose members come in a random order."""
    names = draw(st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=6, unique=True))
    kinds = {n: draw(st.sampled_from(sorted(PROPERTY_TYPES))) for n in names}
    required = [n for n in names if draw(st.booleans())]
    additional = draw(st.sampled_from([False, True, {"type": "integer"}]))
    schema = {"type": "object", "properties": {n: {"type": k} for n, k in kinds.items()}, "required": required, "additionalProperties": additional}
    present = [n for n in names if n in required or draw(st.booleans())]
    pairs = [(n, draw(PROPERTY_TYPES[kinds[n]])) for n in present]
    if additional is not False:
        pairs += [(x, draw(st.integers(0, 9))) for x in draw(st.lists(st.sampled_from(["x", "yy"]), unique=True))]
    return schema, draw(st.permutations(pairs))


def _object_text(pairs: list[tuple[str, Any]]) -> str:
    return "{" + ",".join(f"{compact(k)}:{compact(v)}" for k, v in pairs) + "}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=permuted_objects())
def test_widen_admits_properties_in_any_order(case: tuple[dict[str, Any], list[tuple[str, Any]]]) -> None:
    schema, pairs = case
    text = _object_text(pairs)
    g = grammar(schema, widen=True)
    assert ("properties", "#/properties") in widenings(g)
    assert accepted(g, text)
    assert g.parse_json(text) == dict(pairs)
    strict = grammar(schema)
    assert ("properties", "#/properties") not in widenings(strict)
    declared = list(schema["properties"])
    in_order = [k for k, _ in pairs if k in schema["properties"]] == sorted(
        (k for k, _ in pairs if k in schema["properties"]), key=declared.index
    )
    if not in_order:
        assert not accepted(strict, text)  # strict mode keeps declared order


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=permuted_objects(), data=st.data())
def test_widened_order_never_passes_duplicates_or_missing_required(case: tuple[dict[str, Any], list[tuple[str, Any]]], data: st.DataObject) -> None:
    schema, pairs = case
    g = grammar(schema, widen=True)
    if pairs:
        duplicate = pairs + [data.draw(st.sampled_from(pairs))]
        text = _object_text(data.draw(st.permutations(duplicate)))
        with pytest.raises(ValidationError) as info:
            g.parse_json(text)
        assert info.value.engine == "jsonschema" and "duplicate object key" in str(info.value)
    for name in schema["required"]:
        missing = [(k, v) for k, v in pairs if k != name]
        with pytest.raises(ValidationError):
            g.parse_json(_object_text(missing))


def test_widened_order_in_a_pydantic_model_and_nested_duplicates() -> None:
    g = grammar(Owner, widen=True)
    assert any(keyword == "properties" for keyword, _ in widenings(g))
    owner = g.parse_json('{"score":1,"best_friend":{"score":0,"name":"Bo"},"name":"Ann"}')
    assert isinstance(owner, Owner) and owner.best_friend is not None and owner.best_friend.name == "Bo"
    for bad in (
        '{"score":1,"name":"Ann","name":"Bob"}',
        '{"score":1,"name":"Ann","best_friend":{"name":"Bo","score":0,"score":1}}',
    ):
        assert accepted(g, bad)  # the grammar admits any order, so repeats too ...
        with pytest.raises(ValidationError) as info:  # ... and the validator refuses them
            g.parse_json(bad)
        assert info.value.engine == "pydantic" and "duplicate object key" in str(info.value)
    with pytest.raises(ValidationError):
        g.parse_json('{"score":1}')  # missing required name
    strict = grammar(Owner)
    assert not strict.matches('{"score":1,"name":"Ann"}')  # strict generation grammar: declared order ...
    assert strict.parse_json('{"score": 1, "name": "Ann"}').name == "Ann"  # ... validation: any order
