"""The default mode of ``generate(output_type=...)``: strict where the schema compiles exactly, else widen."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain import generate, json_schema
from constrain.errors import JSONSchemaError, ValidationError
from constrain.providers._guide import _schema_grammar
from constrain.providers import OpenAI


class Point(BaseModel):
    x: int
    y: int


class Tagged(BaseModel):
    name: str
    tags: set[str]  # uniqueItems: no grammar states it


def test_exact_schemas_stay_strict() -> None:
    g = _schema_grammar(json_schema, Point)
    assert json_schema.widenings(g) == [] and g == json_schema.grammar(Point)


def test_schemas_strict_refuses_fall_back_to_widen() -> None:
    with pytest.raises(JSONSchemaError):
        json_schema.grammar(Tagged)
    g = _schema_grammar(json_schema, Tagged)
    assert ("uniqueItems", "#/properties/tags/uniqueItems") in json_schema.widenings(g)
    assert g.parse_json('{"name": "a", "tags": ["x", "y"]}') == Tagged(name="a", tags={"x", "y"})
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    raw = _schema_grammar(json_schema, schema)
    assert raw.matches("[1,1]")  # the grammar is wider ...
    with pytest.raises(ValidationError):  # ... the validator is not
        raw.parse_json("[1,1]")
    assert raw.parse_json("[1,2]") == [1, 2]


def test_schemas_both_modes_refuse_still_raise() -> None:
    with pytest.raises(JSONSchemaError, match="metaschema"):
        _schema_grammar(json_schema, {"$schema": "https://example.com/custom", "type": "string"})


def test_generate_uses_the_fallback(served) -> None:  # noqa: F811
    server, url = served
    server.inject(output('{"name": "a", "tags": 3}'), output('{"name": "a", "tags": ["x"]}'))
    result = generate("tags", output_type=Tagged, provider=OpenAI(base_url=url, model="m", backoff=0.01, max_backoff=0.02))
    assert result.value == Tagged(name="a", tags={"x"})
    assert [a.ok for a in result.attempts] == [False, True]
