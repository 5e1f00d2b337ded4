"""The tasks and judges of bench/generation.py (bench/_generation_tasks.py and bench/data/).

Every expected answer is valid in its grammar and judged right; equivalent spellings are right, near
misses wrong; the BFCL judge accepts the ground truth's own answers and refuses corruptions of them.
"""

from __future__ import annotations

import copy
import datetime
import importlib.util
import json
import re
import sys

import pytest

import constrain
from conftest import ROOT, corpus

# Loaded by path rather than by putting bench/ on sys.path: bench/jsonschema.py would shadow the
# jsonschema package (and bench/batch.py, bench/validate.py ... other names) for the rest of the session.
_SPEC = importlib.util.spec_from_file_location("_generation_tasks", ROOT / "bench" / "_generation_tasks.py")
assert _SPEC is not None and _SPEC.loader is not None
gt = importlib.util.module_from_spec(_SPEC)
sys.modules["_generation_tasks"] = gt  # dataclasses look their module up
_SPEC.loader.exec_module(gt)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JUNK = ["", " ", "null", "{", "[]", "\x00", "mark: bar", "* * * *", 'a = "', "x" * 5000, "0 0 * * * *"]


@pytest.fixture(scope="module")
def tasks() -> dict[str, dict[str, object]]:
    return {kind: {t.id: t for t in gt.load(kind)} for kind in ("cron", "filter", "chart")}


@pytest.fixture(scope="module")
def config_tasks() -> dict[str, object]:
    corpus("bfcl", "simple_shared.jsonl")
    return {t.id: t for t in gt.load("config")}


def _task(tasks, kind: str, task_id: str):  # type: ignore[no-untyped-def]
    return tasks[kind][task_id]


# ---------------------------------------------------------------------------------------------------
# the API and the data


def test_kinds_counts_and_messages(tasks) -> None:  # type: ignore[no-untyped-def]
    assert gt.KINDS == ("config", "cron", "filter", "chart")
    assert len(tasks["cron"]) >= 60 and len(tasks["filter"]) >= 40 and len(tasks["chart"]) >= 40
    for kind, by_id in tasks.items():
        for task in by_id.values():
            assert task.kind == kind and task.id.startswith(kind + "-")
            assert [role for role, _ in task.messages] == ["system", "user"]
            assert all(isinstance(text, str) and text.strip() for _, text in task.messages)
            if kind == "cron":
                assert task.target is None and task.dataset is None
            else:
                assert task.target == gt.datasets()[task.dataset]["fields"]
                assert f"`{task.dataset}`" in task.messages[0][1]
                assert all(name in task.messages[0][1] for name in task.target)
    with pytest.raises(ValueError):
        gt.load("sql")


def test_requests_are_distinct(tasks) -> None:  # type: ignore[no-untyped-def]
    for by_id in tasks.values():
        requests = [t.messages[-1][1].lower() for t in by_id.values()]
        assert len(set(requests)) == len(requests)
    crons = [t.expected for t in tasks["cron"].values()]
    assert len(set(crons)) >= len(crons) - 3  # a few schedules asked for in other words (12 AM / midnight)


def test_datasets_shape() -> None:
    data = gt.datasets()
    assert 4 <= len(data) <= 5
    for name, dataset in data.items():
        assert IDENTIFIER.fullmatch(name)
        fields = dataset["fields"]
        assert 20 <= len(dataset["rows"]) <= 40
        assert all(IDENTIFIER.fullmatch(f) and kind in gt.FIELD_TYPES for f, kind in fields.items())
        for row in dataset["rows"]:
            assert list(row) == list(fields), (name, row)
            for f, kind in fields.items():
                value = row[f]
                if kind == "string":
                    assert isinstance(value, str) and value
                elif kind == "integer":
                    assert isinstance(value, int) and not isinstance(value, bool)
                elif kind == "number":
                    assert isinstance(value, (int, float)) and not isinstance(value, bool)
                elif kind == "boolean":
                    assert isinstance(value, bool)
                else:
                    datetime.date.fromisoformat(value)
        assert all(isinstance(r[f], datetime.date) for r in gt.records(name) for f, k in fields.items() if k == "date")


def _never_raise(every) -> None:  # type: ignore[no-untyped-def]
    for task in every:
        for raw in JUNK + [None, 42]:
            assert task.judge(raw) is False  # type: ignore[arg-type]
            assert task.why(raw)  # type: ignore[arg-type]
        assert task.why(task.reference()) == "" and task.judge(task.reference()) is True


def test_judges_never_raise(tasks) -> None:  # type: ignore[no-untyped-def]
    _never_raise(t for by_id in tasks.values() for t in by_id.values())


def test_config_judge_never_raises(config_tasks) -> None:  # type: ignore[no-untyped-def]
    _never_raise(config_tasks.values())


# ---------------------------------------------------------------------------------------------------
# config (BFCL)


def _first_allowed(truth):  # type: ignore[no-untyped-def]
    """The raw answer of the first allowed value of each parameter, "" skipped, nested dicts likewise."""

    def build(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            return _first_allowed(value)
        if isinstance(value, list):
            return [build(v) if isinstance(v, dict) else v for v in value]
        return value

    out = {}
    for name, options in truth.items():
        given = [o for o in options if o != ""]
        if given:
            out[name] = build(given[0])
    return out


def _walk(schema):  # type: ignore[no-untyped-def]
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from _walk(sub)
    if "items" in schema:
        yield from _walk(schema["items"])


def test_config_schemas(config_tasks) -> None:  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    from constrain.json_schema import grammar

    assert len(config_tasks) == 324
    items = {json.loads(line)["id"]: json.loads(line) for line in
             corpus("bfcl", "simple_shared.jsonl").read_text(encoding="utf-8").splitlines()}
    for task in config_tasks.values():
        item = items[task.id]
        schema = task.target
        Draft202012Validator.check_schema(schema)
        assert schema["title"] == item["function"]["name"] and schema["type"] == "object"
        assert schema["description"] == item["function"]["description"]
        assert task.messages == tuple((m["role"], m["content"]) for m in item["messages"])
        assert task.expected == item["ground_truth"]
        for node in _walk(schema):
            assert "default" not in node
            assert node.get("type", "object") in ("object", "number", "integer", "string", "boolean", "array")
        for name, sub in item["function"]["parameters"]["properties"].items():
            if "default" in sub:
                assert "(default: " in schema["properties"][name]["description"]
            if sub["type"] == "any":
                assert "type" not in schema["properties"][name]
        # a right answer exists that the schema admits, and the project compiles the schema
        reference = json.loads(task.reference())
        assert not list(Draft202012Validator(schema).iter_errors(reference)), task.id
        grammar(schema).parse_json(task.reference())


def test_config_type_mapping() -> None:
    parameters = {"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float", "description": "A.", "default": 1.5},
        "b": {"type": "tuple", "items": {"type": "integer"}},
        "c": {"type": "any", "description": "anything"},
        "d": {"type": "dict", "properties": {"e": {"type": "string", "enum": ["x", "y"], "default": None}}}}}
    schema = gt.bfcl_schema({"name": "f", "description": "d", "parameters": parameters})
    assert schema == {
        "title": "f", "description": "d", "type": "object", "additionalProperties": False, "required": ["a"],
        "properties": {
            "a": {"type": "number", "description": "A. (default: 1.5)"},
            "b": {"type": "array", "items": {"type": "integer"}},
            "c": {"description": "anything"},
            "d": {"type": "object", "additionalProperties": False, "properties": {
                "e": {"type": "string", "description": "(default: null)", "enum": ["x", "y"]}}}}}


def test_config_parameters_in_the_functions_order() -> None:
    # the corpus sorts properties by name; required parameters come first, in the order `required` keeps
    parameters = {"type": "dict", "required": ["origin", "destination"], "properties": {
        "destination": {"type": "string"}, "origin": {"type": "string"}, "unit": {"type": "string"},
        "avoid": {"type": "dict", "required": ["tolls"], "properties": {"ferries": {"type": "boolean"},
                                                                       "tolls": {"type": "boolean"}}}}}
    schema = gt.bfcl_schema({"name": "f", "parameters": parameters})
    assert list(schema["properties"]) == ["origin", "destination", "unit", "avoid"]
    assert list(schema["properties"]["avoid"]["properties"]) == ["tolls", "ferries"]


def test_config_ground_truth_answers_are_right(config_tasks) -> None:  # type: ignore[no-untyped-def]
    for task in config_tasks.values():
        raw = json.dumps(_first_allowed(task.expected))
        assert task.judge(raw), (task.id, raw, task.why(raw))


def _corrupt(value):  # type: ignore[no-untyped-def]
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "zzq"
    if isinstance(value, (int, float)):
        return value + 1000
    if isinstance(value, list):
        return value + [value[0]] if value else ["zzq"]
    if isinstance(value, dict):
        return {**value, "zzq_extra": 1}
    return "zzq"


def test_config_corruptions_are_wrong(config_tasks) -> None:  # type: ignore[no-untyped-def]
    for task in config_tasks.values():
        answer = _first_allowed(task.expected)
        for name in task.target.get("required", []):
            broken = {k: v for k, v in answer.items() if k != name}
            assert not task.judge(json.dumps(broken)), (task.id, name)
            assert "missing" in task.why(json.dumps(broken))
        assert not task.judge(json.dumps({**answer, "zz_not_a_param": 1})), task.id
        for name, value in answer.items():
            broken = copy.deepcopy(answer)
            broken[name] = _corrupt(value)
            if broken[name] in task.expected[name]:
                continue  # both booleans allowed
            assert not task.judge(json.dumps(broken)), (task.id, name, broken[name])


def test_config_bfcl_rules(config_tasks) -> None:  # type: ignore[no-untyped-def]
    triangle = config_tasks["simple_python_0"]  # base [10], height [5] integers, unit ["units", ""]
    assert triangle.judge('{"base": 10, "height": 5}')
    assert triangle.judge('{"height": 5, "base": 10, "unit": "UNITS"}')  # case-insensitive, any order
    assert triangle.judge(' {"base": 10, "height": 5}\n')
    assert not triangle.judge('{"base": 10.0, "height": 5}')  # a float for an integer
    assert not triangle.judge('{"base": true, "height": 5}')
    assert not triangle.judge('{"base": "10", "height": 5}')
    assert not triangle.judge('```json\n{"base": 10, "height": 5}\n```')
    assert not triangle.judge('[{"base": 10, "height": 5}]')
    assert "unexpected parameter" in triangle.why('{"base": 10, "height": 5, "color": "red"}')

    tax = config_tasks["live_simple_104-61-2"]  # purchase_amount [250.0] (float), state ["NY"], city ["", null]
    assert tax.judge('{"purchase_amount": 250, "state": "NY"}')  # an int where a float is allowed
    assert tax.judge('{"purchase_amount": 250.0, "state": "n.y.", "city": null}')  # , . / - _ * ^ removed
    assert not tax.judge('{"purchase_amount": 250.5, "state": "NY"}')
    assert not tax.judge('{"purchase_amount": 250, "state": "NY", "city": "Albany"}')

    stocks = config_tasks["simple_python_149"]  # [["Apple", "Microsoft"], [["Apple"], ["Microsoft"]], ["AAPL", "MSFT"]]
    assert stocks.judge('{"company_names": ["apple", "microsoft"]}')
    assert stocks.judge('{"company_names": ["AAPL", "MSFT"]}')
    assert not stocks.judge('{"company_names": ["Microsoft", "Apple"]}')  # lists element by element
    assert not stocks.judge('{"company_names": ["Apple"]}')

    fan = config_tasks["live_simple_44-18-0"]  # body: one dict of {key: [allowed]}
    body = {"airConOperationMode": "POWER_ON"}
    assert fan.judge(json.dumps({"body": body}))
    assert fan.judge(json.dumps({"body": {**body, "windStrength": "mid", "targetTemperature": 22}}))
    assert not fan.judge(json.dumps({"body": {**body, "targetTemperature": 23}}))
    assert not fan.judge(json.dumps({"body": {**body, "turbo": True}}))  # a key outside the allowed dict
    assert not fan.judge(json.dumps({"body": {"windStrength": "MID"}}))  # a key without "" left out
    assert not fan.judge(json.dumps({"body": [body]}))

    people = config_tasks["live_simple_189-114-0"]  # data: a list of dicts, compared in order
    assert people.judge('{"data": [{"age": 42, "name": "Chester"}, {"name": "Jane", "age": 43}]}')
    assert not people.judge('{"data": [{"age": 43, "name": "Jane"}, {"age": 42, "name": "Chester"}]}')
    assert not people.judge('{"data": [{"age": 42, "name": "Chester"}]}')

    recipe = config_tasks["simple_python_354"]  # ingredient_preference [""]: left out (or empty)
    assert recipe.judge('{"cooking_time": 30, "dish_type": "soup"}')
    assert recipe.judge('{"cooking_time": 30, "dish_type": "soup", "ingredient_preference": []}')
    assert not recipe.judge('{"cooking_time": 30, "dish_type": "soup", "ingredient_preference": ["tofu"]}')


def test_config_corpus_path_override(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CONSTRAIN_CORPORA", raising=False)
    assert gt.corpora_dir() == ROOT.parent / "shared" / "corpora"
    monkeypatch.setenv("CONSTRAIN_CORPORA", str(tmp_path))
    assert gt.corpora_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="CONSTRAIN_CORPORA"):
        gt.load("config")


# ---------------------------------------------------------------------------------------------------
# cron


def test_cron_expected_valid_and_right(tasks) -> None:  # type: ignore[no-untyped-def]
    grammar = constrain.load_grammar("dsl/cron")
    for task in tasks["cron"].values():
        grammar.validate(task.expected)
        assert task.judge(task.expected), (task.id, task.why(task.expected))


def test_cron_croniter_agrees_with_the_grammar(tasks) -> None:  # type: ignore[no-untyped-def]
    """croniter's firing days are the days dsl/cron's own semantics (Cron.matches, Vixie cron) fire on."""
    grammar = constrain.load_grammar("dsl/cron")
    all_days = [datetime.date(2025, 1, 1) + datetime.timedelta(days=i) for i in range(730)]
    for task in tasks["cron"].values():
        cron = grammar.parse_typed(task.expected)
        days, hours, minutes = gt._cron_profile(task.expected)
        h, m = hours[0], minutes[0]
        ours = tuple(d for d in all_days if cron.matches(datetime.datetime(d.year, d.month, d.day, h, m)))
        assert days == ours, task.id
        assert (set(hours), set(minutes)) == (cron.hour.values(), cron.minute.values())


@pytest.mark.parametrize("task_id, raw", [
    ("cron-001", "30 9 * * MON-FRI"),
    ("cron-001", "30 09 * * 1,2,3,4,5"),
    ("cron-001", "30 9 * * 1-5\n"),
    ("cron-004", "0 0,4,8,12,16,20 * * *"),
    ("cron-004", "0 0-23/4 * * *"),
    ("cron-006", "00 12 * * *"),
    ("cron-009", "0 10 * * SAT,SUN"),
    ("cron-009", "0 10 * * 6,7"),
    ("cron-010", "0 0 * * 7"),
    ("cron-014", "0 0 1 JAN,APR,JUL,OCT *"),
    ("cron-014", "0 0 1 */3 *"),
    ("cron-014", "0 0 1 1-10/3 *"),
    ("cron-017", "0,30 * * * *"),
    ("cron-018", "0 8,10,12,14,16,18 * * *"),
    ("cron-028", "0 9 * JUN-AUG *"),
    ("cron-038", "0 4 1-31/2 * *"),
    ("cron-063", "0 1,2,3 * * *"),
    ("cron-067", "45 21 * * SAT,SUN"),
])
def test_cron_equivalent_spellings(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "cron", task_id)
    assert task.judge(raw), task.why(raw)


@pytest.mark.parametrize("task_id, raw", [
    ("cron-001", "0 9 * * 1-5"),
    ("cron-001", "30 9 * * 0-4"),
    ("cron-001", "30 9 * * *"),
    ("cron-003", "30 2,4 * * *"),
    ("cron-004", "0 4,8,12,16,20 * * *"),
    ("cron-004", "* */4 * * *"),
    ("cron-006", "0 0 * * *"),  # 12 PM is noon
    ("cron-007", "30 12 * * *"),  # 12:30 AM is just after midnight
    ("cron-014", "0 0 1 */4 *"),
    ("cron-016", "*/10 9-17 * * 1-5"),
    ("cron-038", "0 4 2-30/2 * *"),
    ("cron-065", "0 0 1 2-12/2 *"),
    ("cron-019", "59 23 31 * *"),
    ("cron-001", "30 9 * * 1-5 *"),
    ("cron-001", "30 9 ? * MON-FRI"),
    ("cron-001", "cron: 30 9 * * 1-5"),
])
def test_cron_near_misses(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "cron", task_id)
    assert not task.judge(raw)
    assert task.why(raw)


def test_cron_why_names_the_first_difference(tasks) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "cron", "cron-001")
    assert task.why("30 9 * * 1-6") == "fires at 2025-01-04 09:30, which '30 9 * * 1-5' does not"
    assert task.why("30 21 * * 1-5") == "does not fire at 2025-01-01 09:30, which '30 9 * * 1-5' does"
    assert task.why("30 9 * * 1-5") == ""


# ---------------------------------------------------------------------------------------------------
# filter


def test_filter_expected_valid_right_and_selective(tasks) -> None:  # type: ignore[no-untyped-def]
    grammar = constrain.load_grammar("dsl/filter")
    for task in tasks["filter"].values():
        expr = grammar.parse_typed(task.expected)
        rows = gt.records(task.dataset)
        picked = sum(expr.evaluate(r) for r in rows)
        assert 0 < picked < len(rows), (task.id, picked)  # the rows tell a right filter from a wrong one
        assert task.judge(task.expected), (task.id, task.why(task.expected))
        for field, value in gt._literals(expr):
            kind = task.target[field]
            if isinstance(value, str):
                assert kind == "string" and any(r[field] == value for r in rows), (task.id, value)  # spelled as stored
            elif isinstance(value, bool):
                assert kind == "boolean"
            elif isinstance(value, datetime.date):
                assert kind == "date"
            else:
                assert kind in ("integer", "number")


@pytest.mark.parametrize("task_id, raw", [
    ("filter-001", 'country = "Germany" AND amount > 100 AND created < 2025-01-01 AND created >= 2024-01-01'),
    ("filter-001", 'amount > 100.0 AND country = "Germany" AND NOT (created < 2024-01-01 OR created > 2024-12-31)'),
    ("filter-002", 'status = "cancelled" OR status = "returned"'),
    ("filter-002", 'status IN ("returned", "cancelled")'),
    ("filter-003", "paid = FALSE"),
    ("filter-003", "NOT paid = true"),
    ("filter-014", 'department != "Sales" AND department != "Marketing"'),
    ("filter-014", 'NOT (department = "Sales" OR department = "Marketing")'),
    ("filter-021", "NOT salary <= 100000"),
    ("filter-042", "stock >= 1 AND stock <= 9"),
    ("filter-042", "NOT stock >= 10 AND NOT stock <= 0"),
    ("filter-049", "duration_min >= 241"),
    ("filter-053", '(origin = "FCO" AND destination = "CDG") OR (destination = "FCO" AND origin = "CDG")'),
    ("filter-054", 'NOT airline = "British Airways"'),
])
def test_filter_equivalent_forms(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "filter", task_id)
    assert task.judge(raw), task.why(raw)


@pytest.mark.parametrize("task_id, raw", [
    ("filter-001", 'amount >= 100 AND country = "Germany" AND created >= 2024-01-01 AND created <= 2024-12-31'),
    ("filter-001", 'amount > 100 AND country = "germany" AND created >= 2024-01-01 AND created <= 2024-12-31'),
    ("filter-001", 'amount > 100 AND country = "Germany" AND created > 2024-01-01 AND created <= 2024-12-31'),
    ("filter-001", 'amount > 100 AND country = "Germany" AND created >= "2024-01-01" AND created <= "2024-12-31"'),
    ("filter-001", 'amount > 100 AND country = "Germany"'),
    ("filter-002", 'status = "cancelled"'),
    ("filter-003", 'paid = "false"'),
    ("filter-003", "paid = 0"),
    ("filter-014", 'department IN ("Engineering", "Finance", "Support")'),  # not the same on other departments
    ("filter-042", "stock > 0 AND stock <= 10"),
    ("filter-049", "duration_min >= 240"),
    ("filter-049", "duration_min > 4"),
    ("filter-053", 'origin IN ("CDG", "FCO") AND destination IN ("CDG", "FCO")'),
    ("filter-053", 'origin = "CDG" AND destination = "FCO"'),
    ("filter-025", 'status = "open" OR status = "pending" AND priority >= 3'),  # precedence
    ("filter-025", 'status IN ("open", "pending") AND priority >= 3 AND total > 0'),  # no such field
    ("filter-002", "status IN (cancelled, returned)"),
    ("filter-002", "SELECT * FROM orders"),
])
def test_filter_near_misses(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "filter", task_id)
    assert not task.judge(raw)
    assert task.why(raw)


def test_filter_probes_catch_what_the_rows_miss() -> None:
    """Equal on every row, different on a record the dataset lacks: wrong. Equal on every record: right."""
    task = gt.Task("t", "filter", (), gt.datasets()["employees"]["fields"], "salary > 100000", "employees")
    rows = gt.records("employees")
    cut = min(r["salary"] for r in rows if r["salary"] > 100000)  # no salary between 100000 and cut
    assert cut > 100001
    lucky = f"salary >= {cut}"
    assert all((r["salary"] > 100000) == (r["salary"] >= cut) for r in rows)
    assert not task.judge(lucky) and "salary=" in task.why(lucky)
    assert task.judge("salary >= 100001")  # the same on every integer salary
    alike = [("a IN (1, 2)", "a = 1 OR a = 2"), ("age <= 40", "NOT age > 40"), ("remote = true", "remote != false")]
    for want, got in alike:
        assert gt._same_selection(gt._parsed("dsl/filter", want), gt._parsed("dsl/filter", got),
                                  "employees", "s") is None
    assert gt._same_selection(gt._parsed("dsl/filter", "age <= 40"), gt._parsed("dsl/filter", "age < 40"),
                              "employees", "s") is not None


# ---------------------------------------------------------------------------------------------------
# chart


def test_chart_expected_valid_and_right(tasks) -> None:  # type: ignore[no-untyped-def]
    grammar = constrain.load_grammar("dsl/chart")
    for task in tasks["chart"].values():
        chart = grammar.parse_typed(task.expected)
        for channel in ("x", "y", "color", "size"):
            encoding = getattr(chart, channel)
            if encoding is not None and encoding.field is not None:
                assert encoding.field in task.target, (task.id, encoding.field)
                if task.target[encoding.field] == "date" and encoding.aggregate is None:
                    assert encoding.type == "temporal"
        if chart.filter is not None:
            picked = sum(chart.filter.evaluate(r) for r in gt.records(task.dataset))
            assert 0 < picked < len(gt.records(task.dataset)), task.id
        assert task.judge(task.expected), (task.id, task.why(task.expected))


@pytest.mark.parametrize("task_id, raw", [
    ("chart-001", 'mark: bar\nx: country ordinal\ny: sum(amount) quantitative\ntitle: "Sales by country"'),
    ("chart-001", "mark: bar\nx: country nominal\ny: sum(amount) quantitative\n\n"),
    ("chart-005", "mark: bar\nx: channel nominal\ny: sum(items) quantitative\nfilter: paid != false"),
    ("chart-023", "mark: bar\nx: category nominal\ny: count(*) quantitative\n"
                  'filter: status = "open" OR status = "pending"'),
    ("chart-045", "mark: bar\nx: cabin ordinal\ny: median(price) quantitative\n"
                  "filter: departure > 2024-12-31 AND departure < 2026-01-01"),
    ("chart-012", "mark: bar\nx: city nominal\ny: count(*) quantitative\nfilter: salary > 0 OR salary <= 0"),
])
def test_chart_equivalent_forms(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "chart", task_id)
    assert task.judge(raw), task.why(raw)


@pytest.mark.parametrize("task_id, raw", [
    ("chart-001", "mark: bar\nx: country nominal\ny: mean(amount) quantitative"),
    ("chart-001", "mark: line\nx: country nominal\ny: sum(amount) quantitative"),
    ("chart-001", "mark: bar\nx: sum(amount) quantitative\ny: country nominal"),  # swapped axes
    ("chart-001", "mark: bar\nx: country nominal\ny: sum(amount) quantitative\ncolor: country nominal"),
    ("chart-001", "mark: bar\nx: country nominal\ny: sum(amount) quantitative\nfilter: amount > 100"),
    ("chart-001", "mark: bar\nx: country nominal\ny: sum(amount) quantitative\nfilter: amount > 0"),  # not on probes
    ("chart-001", "```\nmark: bar\nx: country nominal\ny: sum(amount) quantitative\n```"),
    ("chart-002", "mark: line\nx: created ordinal\ny: mean(amount) quantitative"),  # a date is temporal
    ("chart-005", "mark: bar\nx: channel nominal\ny: sum(items) quantitative"),  # the filter left out
    ("chart-005", "mark: bar\nx: channel nominal\ny: sum(items) quantitative\nfilter: paid = false"),
    ("chart-020", "mark: bar\nx: status nominal\ny: count(*) quantitative\ncolor: priority quantitative"),
    ("chart-045", "mark: bar\nx: cabin nominal\ny: median(price) quantitative\nfilter: departure >= 2025-01-01"),
    ("chart-008", "mark: point\nx: created temporal\ny: amount quantitative\ncolor: country nominal"),  # no size
    ("chart-001", "mark: bar\nx: country nominal\ny: sum(country) quantitative"),
])
def test_chart_near_misses(tasks, task_id: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    task = _task(tasks, "chart", task_id)
    assert not task.judge(raw)
    assert task.why(raw)
