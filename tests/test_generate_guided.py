"""The model is told what to write, and no attempt runs forever (issue #25, points 1, 3 and 5).

Against the real test server (its random-walk backend; the wire format as OpenAI documents it) and,
for what only a real model shows (looping, a request turned into a config), the embedded model.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

import constrain
from _fault_server import fault_server, served  # noqa: F401  (fixtures)
from constrain import Grammar, GenerationError, TruncatedError, generate, load_grammar
from constrain.grammar import Example
from constrain.local._repetition import MIN_CHARS, MIN_REPEATS, RepetitionGuard, repeated_span
from constrain.generate import ANSWER_SYSTEM, DEFAULT_SYSTEM, guide, messages_for
from constrain.json_schema import describe, grammar as schema_grammar, token_bound
from constrain.providers import LlamaCppServer, OpenAI, OpenAIChat
from constrain.providers.base import Message

HEADED = """// Sums of small numbers
// description: One or more numbers from 0 to 999 joined by `+`.
// description: No spaces.
// example: 1+2
// request: forty, then a newline
// example: 40\\n
// max-tokens: 12
start: NUM ("+" NUM)* "\\n"?
NUM: /[0-9]{1,3}/
"""


class Service(BaseModel):
    name: str = Field(description="service name, lowercase with dashes")
    replicas: int = Field(ge=1, le=100)
    port: int = Field(ge=1, le=65535)
    env: Literal["dev", "staging", "prod"]
    cpu_millicores: int = Field(description="CPU in millicores (1 CPU = 1000)")


# -- what a grammar says about itself ---------------------------------------------------------------
def test_header_lines_give_description_examples_and_bound() -> None:
    g = Grammar(HEADED, name="sum")
    assert g.description == "One or more numbers from 0 to 999 joined by `+`. No spaces."
    assert g.examples == (Example("1+2"), Example("40\n", "forty, then a newline")) and g.max_tokens == 12
    plain = Grammar("// Just a digit\nstart: /[0-9]/")
    assert plain.description == "Just a digit" and plain.examples == () and plain.max_tokens == 4  # its longest output
    given_ = Grammar(HEADED, description="numbers", examples=["7"], max_tokens=5)
    assert (given_.description, given_.examples, given_.max_tokens) == ("numbers", (Example("7"),), 5)
    assert given_.with_transformer(lambda tree: 1).examples == (Example("7"),)  # typed copies keep them
    with pytest.raises(constrain.InputError):
        Grammar(HEADED, max_tokens=0)


def test_check_refuses_an_example_outside_the_language_at_its_line() -> None:
    bad = HEADED.replace("// example: 1+2", "// example: 1 + 2")
    found = [d for d in Grammar(bad).check() if d.code == "example-refused"]
    assert len(found) == 1 and found[0].severity == "error" and found[0].line == 4 and "1 + 2" in found[0].message
    bad = HEADED.replace("// example: 40", "// example: 4000")
    assert [d.line for d in Grammar(bad).check() if d.code == "example-refused"] == [6]
    assert not [d for d in Grammar(HEADED).check() if d.code == "example-refused"]
    assert [d.line for d in Grammar("start: /[0-9]/", examples=["x"]).check() if d.code == "example-refused"] == [1]


@pytest.mark.parametrize("name", ["dsl/cron", "dsl/filter", "dsl/chart"])
def test_packaged_dsls_teach_their_syntax_with_valid_examples(name: str) -> None:
    g = load_grammar(name)
    assert len(g.description) > 80 and len(g.examples) >= 2 and g.max_tokens is not None
    for output, _ in g.examples:
        g.parse_typed(output)  # raises if the grammar refuses the example
    assert constrain.available_grammars()  # the catalog's one-line summaries still read
    summary = {info.name: info.description for info in constrain.available_grammars()}[name]
    assert not summary.startswith(("description:", "example:", "max-tokens:"))


# -- what the model is told ---------------------------------------------------------------------------
def test_guide_goes_into_the_system_message_unless_the_provider_takes_tools() -> None:
    g = Grammar(HEADED)
    text = guide(g)
    assert text.startswith("Format: One or more numbers") and "Example:\n1+2" in text
    assert "Example request: forty, then a newline\nAnswer:\n40\n" in text  # a tool's description: all inline
    short = guide(g, worked=False)
    assert "Example:\n1+2" in short and "forty" not in short
    system, request, answer, user = messages_for("add two numbers", g)  # worked examples: turns
    assert system.content == f"{ANSWER_SYSTEM}\n\n{short}" and user == Message("user", "add two numbers")
    assert (request, answer) == (Message("user", "forty, then a newline"), Message("assistant", "40\n"))
    assert [m.content for m in messages_for("x", g, in_tool=True)] == [DEFAULT_SYSTEM, "x"]
    assert [m.content for m in messages_for("x", g, describe=False)] == [DEFAULT_SYSTEM, "x"]
    assert messages_for("x", g, system="be brief")[0].content == f"be brief\n\n{short}"
    chat = messages_for([Message("system", "you help"), Message("user", "x")], g)
    assert chat[0].content == f"you help\n\n{short}" and [m.role for m in chat] == ["system", "user", "assistant", "user"]
    with pytest.raises(constrain.InputError):
        messages_for("  ", g)


def test_the_request_is_told_which_listed_values_it_names_and_whose_they_are() -> None:
    from constrain.dsl import filter as filter_dsl

    fields = {"type": "object", "properties": {
        "flight": {"type": "string"},
        "origin": {"type": "string", "enum": ["AMS", "LHR"]},
        "destination": {"type": "string", "enum": ["JFK", "LHR"]},
        "airline": {"type": "string", "enum": ["Air France", "KLM"]}}}
    g = filter_dsl.grammar(fields, name="dsl/filter[flights-test]")
    assert g.listed_values == {"origin": ("AMS", "LHR"), "destination": ("JFK", "LHR"), "airline": ("Air France", "KLM")}
    assert messages_for("flights to JFK", g)[-1].content == 'flights to JFK\n(Listed values the request names: "JFK" (destination))'
    note = messages_for("air france flights out of LHR", g)[-1].content.split("\n")[1]
    assert note == '(Listed values the request names: "LHR" (origin, destination); "Air France" (airline))'
    # a value of three characters or fewer only in its own case, and only as a whole word
    for plain in ("flights to jfk", "flights to JFKX", "the klmx route", "cheap flights"):
        assert messages_for(plain, g)[-1].content == plain
    assert messages_for("x to JFK", g, describe=False)[-1].content == "x to JFK"  # told nothing, not this either
    chat = messages_for([Message("user", "earlier"), Message("assistant", "a = 1"), Message("user", "KLM only")], g)
    assert chat[-1].content.endswith('(Listed values the request names: "KLM" (airline))') and chat[-3].content == "earlier"
    schema = {"type": "object", "properties": {"env": {"enum": ["dev", "prod", 3]}, "limits": {"type": "object", "properties": {
        "unit": {"$ref": "#/$defs/Unit"}}}, "tags": {"type": "array", "items": {"enum": ["blue", "green"]}}},
        "$defs": {"Unit": {"type": "string", "enum": ["cpu", "memory"]}}}
    typed = schema_grammar(schema)
    assert typed.listed_values == {"env": ("dev", "prod"), "limits.unit": ("cpu", "memory"), "tags": ("blue", "green")}
    assert typed.with_transformer(lambda tree: 1).listed_values == typed.listed_values
    assert messages_for("a prod service limited by memory", typed)[-1].content.endswith(
        '(Listed values the request names: "prod" (env); "memory" (limits.unit))')


@settings(max_examples=60, deadline=None)
@given(st.lists(st.from_regex(r"[A-Z][a-z]{3,9}( [A-Z][a-z]{2,8})?", fullmatch=True), min_size=1, max_size=6, unique=True),
       st.data())
def test_every_named_listed_value_is_pointed_out_with_every_field_that_lists_it(values: list[str], data: Any) -> None:
    from constrain.providers._guide import named_values

    fields = {f"f{i}": tuple(data.draw(st.lists(st.sampled_from(values), min_size=1, unique=True))) for i in range(3)}
    g = Grammar("start: /[a-z]+/", listed_values=fields)
    said = data.draw(st.lists(st.sampled_from(values), unique=True))
    request = "show " + " and ".join(v.lower() if i % 2 else v for i, v in enumerate(said)) + " please"
    note = named_values(g, request)
    owners = {v: [f for f, listed in fields.items() if v in listed] for v in said if any(v in listed for listed in fields.values())}
    assert note == ("" if not owners else "(Listed values the request names: " + "; ".join(
        f'"{v}" ({", ".join(names)})' for v, names in sorted(owners.items(), key=lambda item: _first_seen(fields, item[0]))) + ")")


def _first_seen(fields: dict[str, tuple[str, ...]], value: str) -> tuple[int, int]:
    """Where ``named_values`` first meets ``value``: fields in order, values in order within each."""
    for i, listed in enumerate(fields.values()):
        if value in listed:
            return (i, listed.index(value))
    return (len(fields), 0)


def test_schema_description_names_every_field_with_its_rules() -> None:
    text = describe(Service.model_json_schema())
    for line in ("- name (string, required): service name, lowercase with dashes",
                 "- replicas (integer, >= 1, <= 100, required)",
                 '- env (one of "dev", "staging", "prod", required)',
                 "- cpu_millicores (integer, required): CPU in millicores (1 CPU = 1000)"):
        assert line in text
    assert "no other keys" in text
    nested = describe({"type": "object", "properties": {"db": {"$ref": "#/$defs/DB"}, "tags": {"type": "array", "items": {"type": "string"}}},
                       "$defs": {"DB": {"type": "object", "properties": {"host": {"type": "string", "format": "hostname"}}, "required": ["host"]}}})
    assert "- db (object, optional)" in nested and "  - host (string, format hostname, required)" in nested
    assert "- tags (array of string, optional)" in nested
    assert schema_grammar(Service).description == text
    for summary in ("Add two numbers.", "Add two numbers"):  # one full stop, the description's own or ours
        head = describe({"title": "add", "description": summary, "type": "object", "properties": {"a": {"type": "integer"}}})
        assert head.splitlines()[0] == "A JSON object (add): Add two numbers. Its fields, in this order:"


@settings(max_examples=50, deadline=None)
@given(st.recursive(
    st.sampled_from([{"type": "integer"}, {"type": "string"}, {"type": "boolean"}, {"type": "string", "maxLength": 30},
                     {"enum": ["a", "bb"]}, {"type": "number", "minimum": 0}]),
    lambda inner: st.one_of(
        st.builds(lambda props: {"type": "object", "properties": props, "required": list(props)[:1]},
                  st.dictionaries(st.from_regex(r"[a-z]{1,12}", fullmatch=True), inner, min_size=1, max_size=4)),
        st.builds(lambda item, n: {"type": "array", "items": item, "maxItems": n}, inner, st.integers(1, 4)),
    ),
    max_leaves=6,
))
def test_token_bound_covers_the_longest_written_value(schema: dict) -> None:
    # the longest value of each kind (max-length strings, max items, long numbers), compact, tokenised
    # at its worst (one token a character) must fit the bound when it is not capped
    def longest(node: dict) -> object:
        if "enum" in node:
            return max(node["enum"], key=len)
        kind = node["type"]
        if kind == "object":
            return {k: longest(v) for k, v in node["properties"].items()}
        if kind == "array":
            return [longest(node["items"])] * node["maxItems"]
        if kind == "string":
            return "x" * node.get("maxLength", 20)
        return {"integer": -123456789012, "number": 1234.56789, "boolean": False}[kind]

    import json

    text = json.dumps(longest(schema), separators=(",", ":"))
    bound = token_bound(schema)
    assert bound == 2048 or len(text) // 2 <= bound


def test_tool_providers_carry_the_guide_in_the_tool_and_the_bound_on_the_wire(served) -> None:
    server, url = served
    g = Grammar(HEADED, name="sum")
    generate("add", grammar=g, provider=OpenAI("m", base_url=url, api_key="k"))
    body = server.requests_to("/responses")[-1].body
    assert body["tools"][0]["description"] == guide(g) and body["max_output_tokens"] == 12
    assert body["input"][0] == {"role": "system", "content": DEFAULT_SYSTEM}
    generate("add", grammar=g, provider=OpenAIChat("m", base_url=url, api_key="k"), max_tokens=30)
    body = server.requests_to("/chat/completions")[-1].body
    assert body["tools"][0]["custom"]["description"] == guide(g) and body["max_completion_tokens"] == 30
    generate("add", grammar=g, provider=LlamaCppServer(base_url=url))  # grammar field, no tool: the system message
    body = server.requests_to("/chat/completions")[-1].body
    assert body["messages"][0]["content"] == f"{ANSWER_SYSTEM}\n\n{guide(g, worked=False)}" and body["max_tokens"] == 12
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    generate("add", grammar=g, provider=OpenAI("m", base_url=url, api_key="k"), describe=False)
    assert server.requests_to("/responses")[-1].body["tools"][0]["description"] != guide(g)


# -- the repetition guard -----------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.text("ab,0123 ", max_size=120), st.text("ab,0123 ", min_size=1, max_size=30), st.integers(1, 12))
def test_repeated_span_is_a_real_loop_and_is_found(prefix: str, span: str, repeats: int) -> None:
    text = prefix + span * repeats
    found = repeated_span(text)
    if found is not None:  # never a false alarm: the text does end with the span over and over
        needed = max(MIN_REPEATS, -(-MIN_CHARS // len(found)))
        assert text.endswith(found * needed) and len(found * needed) >= MIN_CHARS
    if repeats >= MIN_REPEATS and len(span) * repeats >= MIN_CHARS and len(span) <= 160:
        assert found is not None  # a loop long enough is always seen


def test_guard_fires_on_the_issue_loop_not_on_short_repeats() -> None:
    guard = RepetitionGuard()
    loop = "9-30,1,4,7," + "6,12,15,18,21,24,27,30,33,36,39,42,45,48,51,54,57," * 5
    fired_at = next(i for i in range(1, len(loop) + 1) if RepetitionGuard().feed(loop[:i]))
    assert fired_at < len(loop) and guard.feed(loop) and guard.repeated is not None
    for fine in ("[0,0,0,0,0,0,0,0]", '{"a":1,"b":1,"c":1,"d":1}', "SELECT a, a, a, a FROM t"):
        assert repeated_span(fine) is None


# -- the embedded model -------------------------------------------------------------------------------
def _local():  # type: ignore[no-untyped-def]
    from test_local_model import _require_local_model

    _require_local_model()
    from constrain.providers.local import Local

    return Local()


@pytest.fixture(scope="module")
def local():  # type: ignore[no-untyped-def]
    return _local()


@pytest.mark.local_model
def test_a_looping_attempt_is_cut_early_and_named(local) -> None:
    # the issue's request with the old bare prompt: greedy decoding loops on minute lists
    try:
        result = generate("every weekday at 9:30 in the morning", grammar="dsl/cron", provider=local,
                          describe=False, max_tokens=512, max_attempts=2)
    except GenerationError as exc:
        attempts = exc.attempts
    else:
        attempts = list(result.attempts)
    cut = [a for a in attempts if isinstance(a.error, TruncatedError) and a.error.repeated]
    assert cut, [a.raw for a in attempts]
    for attempt in cut:
        assert 0 < attempt.usage.output_tokens < 300 and attempt.raw.endswith(attempt.error.repeated * MIN_REPEATS)  # type: ignore[union-attr]
        assert "over and over" in str(attempt.error) and attempt.to_dict()["error"]["repeated"] == attempt.error.repeated  # type: ignore[union-attr]


@pytest.mark.local_model
def test_a_plain_request_becomes_a_config_within_its_bound(local) -> None:
    result = generate("the payments api in production, 3 replicas on port 8443", output_type=Service, provider=local)
    assert isinstance(result.value, Service)
    assert result.value.replicas == 3 and result.value.port == 8443 and result.value.env == "prod"
    bound = schema_grammar(Service).max_tokens
    assert all(a.usage.output_tokens <= bound for a in result.attempts)  # type: ignore[operator]


@pytest.mark.local_model
def test_candidates_vote_on_the_typed_value(local) -> None:
    result = generate("every day at 6:15 in the evening", grammar="dsl/cron", provider=local, candidates=3)
    assert len(result.attempts) >= 3 and 1 <= result.agreement <= 3
    valid = [a for a in result.attempts[-3:] if a.ok]
    g = load_grammar("dsl/cron")  # asked in its written form: each attempt holds the words the model wrote

    def value(attempt: Any) -> str:
        return repr(g.parse_typed(g.from_written(attempt.raw)))

    same = [a for a in valid if value(a) == repr(result.value)]
    assert len(same) == result.agreement and all(len(same) >= sum(value(b) == value(a) for b in valid) for a in valid)


def test_cli_describes_by_default_and_takes_candidates(served, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from _fault_server import output

    from constrain.cli import main

    server, url = served
    path = tmp_path / "sum.lark"
    path.write_text(HEADED)
    before = len(server.requests_to("/responses"))
    server.inject(output("1+2"), output("1+2"))  # two candidates, two requests (sampled over HTTP), one value
    assert main(["generate", "-g", str(path), "add", "-p", "openai", "--base-url", url, "-k", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["ok"] and record["output"] == "1+2" and record["agreement"] == 2
    assert len(server.requests_to("/responses")) == before + 2 and len(record["attempts"]) == 2
    assert server.requests_to("/responses")[-1].body["tools"][0]["description"] == guide(load_grammar(path))
    server.inject(output("3"))
    assert main(["generate", "-g", str(path), "add", "-p", "openai", "--base-url", url, "--no-describe"]) == 0
    assert server.requests_to("/responses")[-1].body["tools"][0]["description"] != guide(load_grammar(path))
    assert capsys.readouterr().out == "3\n"


def test_batch_requests_carry_the_guide_except_sql(tmp_path) -> None:
    from constrain.batch._pipeline import grammar_pipeline, schema_pipeline, sql_pipeline

    schema = tmp_path / "service.json"
    schema.write_text(json.dumps(Service.model_json_schema()))
    for pipeline in (schema_pipeline(str(schema)), grammar_pipeline("dsl/cron")):
        assert pipeline.constraint.description == guide(pipeline.grammar) and "Format:" in pipeline.constraint.description
    import importlib.resources

    chinook = importlib.resources.files("constrain") / "data" / "chinook.sqlite"
    sql = sql_pipeline(str(chinook))
    assert not sql.guided and "Format:" not in sql.constraint.description


@pytest.mark.parametrize(("text", "longest"), [
    ('start: "yes" | "no"', 3),
    ('start: A ("," A)~0..3\nA: /[a-z]{1,5}/', 5 + 3 * 6),
    ('start: a b?\na: "x" ~ 2..4\nb: /[0-9]{2}/ "!"', 4 + 3),
    ('start: A ("," A)*\nA: /[a-z]{1,5}/', None),  # a repetition without end
    ('start: "(" start ")" | "x"', None),  # recursion
    ('start: /[a-z]+/', None),  # an unbounded terminal
    ('start: "a" "b"\n%ignore " "', None),  # ignored runs between tokens
])
def test_a_finite_grammar_bounds_its_attempts_by_its_longest_output(text: str, longest: int | None) -> None:
    g = Grammar(text)
    assert g.max_tokens == (None if longest is None else 4 * longest)
    assert Grammar(text, max_tokens=7).max_tokens == 7  # a declared bound wins


def test_the_loop_sends_a_finite_grammar_its_bound(served) -> None:
    server, url = served
    generate("yes or no?", grammar=Grammar('start: "yes" | "no"'), provider=OpenAI("m", base_url=url, api_key="k"))
    assert server.requests_to("/responses")[-1].body["max_output_tokens"] == 12
