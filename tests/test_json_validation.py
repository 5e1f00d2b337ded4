"""Validation of outside JSON text against a schema: no valid instance refused, no invalid one accepted.

The generation grammar fixes some spellings (declared key order, compact whitespace, no exponent
under numeric bounds, a leap second written in UTC); validation of text that did not come from it
(``parse_json``, ``parse_typed``, ``validate --schema``) must accept every spelling JSON allows of a
conforming value and refuse every non-conforming one, formats included. Checked on the formats of
JSON-Schema-Test-Suite (``optional/format``), its top-level draft 2020-12 groups, and a deterministic
slice of MaskBench, each valid instance in several spellings.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from conftest import corpus
from constrain.errors import ConstrainError, JSONSchemaError, ValidationError
from constrain.json_schema import SchemaViolation, grammar
from constrain.json_schema import _formats
from test_json_schema import accepted, compact


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def spellings(value: Any) -> Iterator[str]:
    """The same value written several ways JSON allows."""
    yield compact(value)
    yield json.dumps(value)  # ", " and ": " as json.dumps writes them
    yield json.dumps(_reverse_keys(value), indent=2, ensure_ascii=True)  # other order, escapes, newlines
    yield " \t\n" + json.dumps(value, sort_keys=True, indent="\t") + "\r\n"


def format_groups() -> list[tuple[str, str, list[tuple[Any, bool]]]]:
    out = []
    for path in sorted(corpus("json-schema-test-suite", "tests", "draft2020-12", "optional", "format").glob("*.json")):
        for group in json.loads(path.read_text(encoding="utf-8")):
            fmt = group["schema"].get("format")
            if isinstance(fmt, str) and fmt in _formats.CHECKS:
                out.append((fmt, group["description"], [(t["data"], bool(t["valid"])) for t in group["tests"]]))
    return out


def test_every_format_of_drafts_4_to_2020_12_has_a_check_here() -> None:
    assert _formats.STANDARD_FORMATS <= set(_formats.CHECKS) == _formats.asserted_formats()


def test_format_checks_agree_with_the_suite_both_ways() -> None:
    wrong = [
        (fmt, data, valid)
        for fmt, _, tests in format_groups()
        for data, valid in tests
        if isinstance(data, str) and _formats.CHECKS[fmt](data) is not valid
    ]
    assert wrong == []


# the generation grammar writes these valid values in another spelling, or not at all (documented)
_NARROWER_SPELLING = {
    ("time", "23:59:60+00:00"), ("time", "01:29:60+01:30"), ("time", "23:29:60+23:30"), ("time", "15:59:60-08:00"),
    ("time", "00:29:60-23:30"), ("date-time", "1998-12-31T15:59:60.123-08:00"),
    ("email", '"joe bloggs"@example.com'), ("email", '"joe..bloggs"@example.com'), ("email", '"joe@bloggs"@example.com'),
    ("email", "joe.bloggs@[127.0.0.1]"), ("email", "joe.bloggs@[IPv6:::1]"),
}


@pytest.mark.parametrize("widen", [False, True], ids=["strict", "widen"])
def test_formats_through_the_pipeline(widen: bool) -> None:
    """parse_json accepts exactly the suite's valid values; the grammar never admits one the validator refuses
    without the validator refusing it, and refuses a valid one only for a documented spelling."""
    problems = []
    for fmt, description, tests in format_groups():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "format": fmt}
        try:
            g = grammar(schema, widen=widen)
        except JSONSchemaError:
            assert not widen and fmt not in _formats.FORMATS, fmt
            continue
        for data, valid in tests:
            text = compact(data)
            try:
                g.parse_json(text)
                ok = True
            except ValidationError:
                ok = False
            if ok is not valid:
                problems.append((fmt, description, data, valid))
            if valid and isinstance(data, str) and fmt in _formats.FORMATS and not accepted(g, text):
                if (fmt, data) not in _NARROWER_SPELLING:
                    problems.append(("grammar refuses", fmt, data))
    assert problems == []


def _suite() -> list[tuple[str, Any, list[tuple[Any, bool]]]]:
    out = []
    for path in sorted(corpus("json-schema-test-suite", "tests", "draft2020-12").glob("*.json")):
        if path.name == "format.json":
            continue  # format as an annotation only; here formats are asserted (optional/format, above)
        for group in json.loads(path.read_text(encoding="utf-8")):
            out.append((f"{path.stem}: {group['description']}", group["schema"], [(t["data"], bool(t["valid"])) for t in group["tests"]]))
    return out


def _maskbench(every: int) -> list[tuple[str, Any, list[tuple[Any, bool]]]]:
    out = []
    for path in sorted(corpus("jsonschemabench", "maskbench").glob("*.json"))[::every]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.stem, doc["schema"], [(t["data"], bool(t["valid"])) for t in doc["tests"]]))
    return out


def _verdicts(cases: list[tuple[str, Any, list[tuple[Any, bool]]]], widen: bool) -> tuple[int, list[str], list[str]]:
    compiled, refused_valid, accepted_invalid = 0, [], []
    for name, schema, tests in cases:
        try:
            g = grammar(schema, widen=widen)
        except JSONSchemaError:
            continue
        compiled += 1
        for data, valid in tests:
            for text in spellings(data) if valid else [compact(data)]:
                try:
                    g.parse_json(text)
                    ok = True
                except ConstrainError:
                    ok = False
                if valid and not ok:
                    refused_valid.append(f"{name}: {text[:120]}")
                if not valid and ok:
                    accepted_invalid.append(f"{name}: {text[:120]}")
    return compiled, refused_valid, accepted_invalid


@pytest.mark.parametrize("widen", [False, True], ids=["strict", "widen"])
def test_suite_valid_in_every_spelling_invalid_never(widen: bool) -> None:
    compiled, refused_valid, accepted_invalid = _verdicts(_suite(), widen)
    assert compiled > 100
    assert refused_valid == []
    assert accepted_invalid == []


@pytest.mark.parametrize("widen", [False, True], ids=["strict", "widen"])
def test_maskbench_valid_in_every_spelling_invalid_never(widen: bool) -> None:
    compiled, refused_valid, accepted_invalid = _verdicts(_maskbench(every=20), widen)
    assert compiled >= 30
    assert refused_valid == []
    assert accepted_invalid == []


def test_violation_names_the_failing_value() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1},
                       "image": {"type": "string", "format": "uri"}, "a/b": {"type": "array", "items": {"type": "integer"}}},
        "required": ["name", "replicas"],
    }
    g = grammar(schema)
    assert g.parse_json('{"replicas": 2, "name": "api"}') == {"replicas": 2, "name": "api"}
    with pytest.raises(SchemaViolation) as info:
        g.parse_json('{"name": "api",\n "replicas": 2, "a/b": [1, "x"]}')
    assert info.value.pointer == "/a~1b/1" and (info.value.line, info.value.column) == (2, 28)
    with pytest.raises(SchemaViolation) as info:
        g.parse_json('{"name": "api", "replicas": 2, "image": "://"}')  # not an RFC 3986 URI
    assert info.value.pointer == "/image"
    with pytest.raises(ValidationError):
        g.parse_json('{"name": "api", "replicas": 2,}')  # JSON syntax: both engines refuse
