"""Tasks and judges for ``bench/generation.py``: from a plain request to a right answer, in four kinds.

    config   BFCL's "simple" function calls (../shared/corpora/bfcl/simple_shared.jsonl, 324 items): the
             function's parameters as a JSON Schema, the user's request; judged by BFCL's AST rules.
    cron     bench/data/cron_requests.jsonl: a schedule in words; right when the cron expression fires at
             exactly the same times as the expected one from 2025-01-01 over two years (croniter).
    filter   bench/data/filter_requests.jsonl over bench/data/datasets.json: a ``dsl/filter`` expression;
             right when it selects the same records as the expected one, on the rows and on probe records.
    chart    bench/data/chart_requests.jsonl over the same datasets: a ``dsl/chart`` spec; right when mark
             and encodings match and its filter selects the same records.

``load(kind)`` gives the tasks; ``Task.judge(raw)`` says right or wrong for the model's raw text (never
raises), ``Task.why(raw)`` why not, and ``Task.reference()`` is a right answer (a self-check for runners).
Surrounding whitespace of a raw answer is ignored; nothing else is repaired (no code fences, no prose).

The corpora are found at ``../shared/corpora`` beside the checkout, or at ``$CONSTRAIN_CORPORA``.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import math
import os
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["KINDS", "Task", "load", "corpora_dir", "datasets", "records", "bfcl_schema", "DATA"]

KINDS = ("config", "cron", "filter", "chart")
DATA = Path(__file__).resolve().parent / "data"
BFCL_FILE = ("bfcl", "simple_shared.jsonl")


def corpora_dir() -> Path:
    """``$CONSTRAIN_CORPORA``, else ``shared/corpora`` beside the repository checkout."""
    env = os.environ.get("CONSTRAIN_CORPORA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "corpora"


# ---------------------------------------------------------------------------------------------------
# Task


@dataclass(frozen=True)
class Task:
    id: str
    kind: str  # "config" | "cron" | "filter" | "chart"
    messages: tuple[tuple[str, str], ...]  # (role, content), role "system" or "user"
    target: Any  # config: JSON Schema; cron: None; filter/chart: {field: type}
    expected: Any  # config: BFCL ground truth {param: [allowed]}; cron/filter/chart: the expected text
    dataset: str | None = None  # filter/chart: a key of datasets()

    def judge(self, raw: str) -> bool:
        """Whether ``raw`` (the model's text) is a right answer; malformed text is wrong, never an error."""
        return self.why(raw) == ""

    def why(self, raw: str) -> str:
        """A short reason ``raw`` is wrong, or "" when it is right."""
        if not isinstance(raw, str):
            return f"not text: {type(raw).__name__}"
        try:
            return _JUDGES[self.kind](self, raw.strip()) or ""
        except Exception as exc:  # a judge must not raise: an unforeseen shape of answer is a wrong answer
            return f"judge could not read the answer: {type(exc).__name__}: {_short(str(exc))}"

    def reference(self) -> str:
        """A right answer, as a model would write it. For config: parameters that may be left out are,
        the others take their first allowed value that fits the schema."""
        if self.kind == "config":
            return json.dumps(_reference_answer(self.expected, self.target), ensure_ascii=False)
        return str(self.expected)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(value: Any, limit: int) -> str:
    return _short(json.dumps(value, ensure_ascii=False), limit)


def load(kind: str) -> list[Task]:
    """The tasks of one kind (``KINDS``)."""
    if kind == "config":
        return _load_config()
    if kind == "cron":
        return [
            Task(r["id"], "cron", (("system", CRON_SYSTEM), ("user", r["request"])), None, r["expected"])
            for r in _jsonl(DATA / "cron_requests.jsonl")
        ]
    if kind in ("filter", "chart"):
        system = FILTER_SYSTEM if kind == "filter" else CHART_SYSTEM
        tasks = []
        for r in _jsonl(DATA / f"{kind}_requests.jsonl"):
            fields = datasets()[r["dataset"]]["fields"]
            prompt = system.format(dataset=r["dataset"], fields=_field_list(fields))
            tasks.append(Task(r["id"], kind, (("system", prompt), ("user", r["request"])), dict(fields),
                              r["expected"], r["dataset"]))
        return tasks
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------------------------------------------
# config: BFCL simple function calls


def _load_config() -> list[Task]:
    path = corpora_dir().joinpath(*BFCL_FILE)
    if not path.exists():
        raise FileNotFoundError(f"BFCL corpus not found: {path} (set CONSTRAIN_CORPORA)")
    tasks = []
    for item in _jsonl(path):
        messages = tuple((m["role"], m["content"]) for m in item["messages"])
        tasks.append(Task(item["id"], "config", messages, bfcl_schema(item["function"]), item["ground_truth"]))
    return tasks


_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer", "string": "string",
               "boolean": "boolean", "array": "array"}


def bfcl_schema(function: Mapping[str, Any]) -> dict[str, Any]:
    """A BFCL function's ``parameters`` as a JSON Schema (draft 2020-12): BFCL's type names mapped
    ("dict" -> object, "float" -> number, "tuple" -> array, "any" -> no constraint), descriptions, enums,
    ``required``, ``properties`` and ``items`` kept, a default stated in the description as
    "(default: X)". Objects with declared properties are closed (``additionalProperties: false``): BFCL
    counts any other parameter as wrong. Parameters keep the function's own order (``_declared_order``:
    the corpus sorts them by name). The function's name is the ``title``, its description the schema's."""
    schema = _bfcl_node(function["parameters"])
    schema.setdefault("type", "object")
    out: dict[str, Any] = {"title": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    out.update((k, v) for k, v in schema.items() if k != "description")
    return out


def _declared_order(properties: Mapping[str, Any], required: list[str]) -> list[str]:
    """The parameters in the function's own order, as far as the corpus keeps it: its files list
    ``properties`` sorted by name, but ``required`` in the author's order, and a Python function's
    required parameters come before those with a default. So: the required ones as ``required`` lists
    them, then the others as given."""
    first = [name for name in required if name in properties]
    return first + [name for name in properties if name not in first]


def _bfcl_node(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = node.get("type")
    if kind not in (None, "any"):
        if kind not in _BFCL_TYPES:
            raise ValueError(f"unknown BFCL type {kind!r}")
        out["type"] = _BFCL_TYPES[kind]
    description = node.get("description") or ""
    if "default" in node:
        note = f"(default: {json.dumps(node['default'], ensure_ascii=False)})"
        description = f"{description} {note}" if description else note
    if description:
        out["description"] = description
    if "enum" in node:
        out["enum"] = list(node["enum"])
    if "properties" in node:
        order = _declared_order(node["properties"], node.get("required") or [])
        out["properties"] = {name: _bfcl_node(node["properties"][name]) for name in order}
        out["additionalProperties"] = False
    if node.get("required"):
        out["required"] = list(node["required"])
    if "items" in node:
        out["items"] = _bfcl_node(node["items"])
    return out


_STRIP = re.compile(r"[ ,./\-_*^]")


def _standardize(text: str) -> str:
    """BFCL's string normal form: no spaces nor , . / - _ * ^, lower case, ' read as "."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    return kind if isinstance(kind, str) else None


_TYPE_OK = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _matches(value: Any, allowed: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` is the allowed value ``allowed`` under BFCL's rules, for a parameter of ``schema``."""
    kind = _schema_type(schema)
    if allowed is None:
        return value is None
    if isinstance(allowed, str):
        if allowed == "" and isinstance(value, list) and kind == "array":
            return value == []  # BFCL reads "" as the empty list for a list parameter
        return isinstance(value, str) and _standardize(value) == _standardize(allowed)
    if isinstance(allowed, bool):
        return isinstance(value, bool) and value == allowed
    if isinstance(allowed, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if kind == "integer" and not isinstance(value, int):
            return False  # a float is not an integer, even 5.0
        return value == allowed  # an int where a float is allowed: 4 == 4.0
    if isinstance(allowed, list):
        items = schema.get("items", {}) if isinstance(schema, Mapping) else {}
        return (isinstance(value, list) and len(value) == len(allowed)
                and all(_matches(v, a, items) for v, a in zip(value, allowed)))
    if isinstance(allowed, dict):
        return isinstance(value, dict) and _dict_problem(value, allowed, schema) is None
    return bool(value == allowed)


def _dict_problem(value: Mapping[str, Any], allowed: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """Nested dicts key by key: an allowed dict is ``{key: [allowed values]}`` (a plain value is read as
    the one allowed value)."""
    props = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    for key, sub in value.items():
        if key not in allowed:
            return f"unexpected key {key!r}"
        options = allowed[key] if isinstance(allowed[key], list) else [allowed[key]]
        if not any(_matches(sub, option, props.get(key, {})) for option in options):
            return f"key {key!r} = {_json(sub, 60)}, expected one of {_json(options, 80)}"
    for key, options in allowed.items():
        if key not in value and not (isinstance(options, list) and "" in options):
            return f"missing key {key!r}"
    return None


def _config_verdict(task: Task, raw: str) -> str | None:
    """BFCL's AST checker on a JSON object of arguments: every required parameter set; none outside the
    function's properties and the ground truth; each one set equal to one of its allowed values, "" in
    the list meaning it may be left out. Strings compare case-insensitively with spaces and , . / - _ * ^
    removed; an int counts where a float is allowed, but neither a float nor a bool for an integer;
    lists element by element; nested dicts key by key. ``null`` is right only where the ground truth
    lists it."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return f"not JSON: {_short(str(exc), 80)}"
    if not isinstance(value, dict):
        return f"not a JSON object but {type(value).__name__}"
    schema: Mapping[str, Any] = task.target
    props: Mapping[str, Any] = schema.get("properties", {})
    truth: Mapping[str, list[Any]] = task.expected
    for name in schema.get("required", []):
        if name not in value:
            return f"missing required parameter {name!r}"
    for name, got in value.items():
        if name not in props or name not in truth:
            return f"unexpected parameter {name!r}"
        sub = props[name]
        kind = _schema_type(sub)
        if got is not None and kind in _TYPE_OK and not _TYPE_OK[kind](got):
            return f"{name}: {type(got).__name__} where the type is {kind}"
        options = truth[name] if isinstance(truth[name], list) else [truth[name]]
        if isinstance(got, dict) and kind == "object":
            problems = [_dict_problem(got, o, sub) for o in options if isinstance(o, dict)]
            if any(p is None for p in problems):
                continue
            if problems:
                return f"{name}: {problems[0]}"
        elif any(_matches(got, o, sub) for o in options):
            continue
        shown = [o for o in options if o != ""]
        wanted = f"one of {_json(shown, 100)}" if len(shown) > 1 else _json(shown[0] if shown else "", 100)
        return f"{name} = {_json(got, 60)}, expected {wanted}"
    for name, options in truth.items():
        if name not in value and "" not in options:
            return f"missing parameter {name!r}"
    return None


def _reference_answer(truth: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A right answer that also fits the schema where the ground truth allows: a parameter that may be
    left out ("" allowed) is left out, otherwise the first allowed value the schema admits (nested dicts,
    also those in lists, likewise)."""
    props = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    required = schema.get("required", []) if isinstance(schema, Mapping) else []
    out: dict[str, Any] = {}
    for name, options in truth.items():
        options = options if isinstance(options, list) else [options]
        given = [o for o in options if o != ""]
        if not given or ("" in options and name not in required):
            continue
        sub = props.get(name, {})
        built = [_built(o, sub) for o in given]
        fitting = [b for b in built if _conforms(b, sub)]
        out[name] = (fitting or built)[0]
    return out


def _built(allowed: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(allowed, dict):
        return _reference_answer(allowed, schema)
    if isinstance(allowed, list):
        items = schema.get("items", {}) if isinstance(schema, Mapping) else {}
        return [_built(v, items) if isinstance(v, dict) else v for v in allowed]
    return allowed


def _conforms(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` fits a schema made by ``bfcl_schema`` (type, enum, properties, required, items)."""
    kind = _schema_type(schema)
    if kind in _TYPE_OK and not _TYPE_OK[kind](value):
        return False
    if "enum" in schema and not any(value == e and isinstance(value, bool) == isinstance(e, bool)
                                    for e in schema["enum"]):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        if any(k not in value for k in schema.get("required", [])):
            return False
        return all(_conforms(v, props.get(k, {})) for k, v in value.items())
    if isinstance(value, list) and "items" in schema:
        return all(_conforms(v, schema["items"]) for v in value)
    return True


# ---------------------------------------------------------------------------------------------------
# cron

CRON_SYSTEM = (
    "Write a cron schedule: five fields separated by spaces (minute hour day-of-month month day-of-week), "
    "as in a crontab. Times are 24-hour. Reply with the expression only."
)

CRON_START = datetime.datetime(2025, 1, 1)
CRON_END = datetime.datetime(2027, 1, 1)  # two years
_Profile = tuple[tuple[datetime.date, ...], tuple[int, ...], tuple[int, ...]]  # days, hours, minutes


@functools.lru_cache(maxsize=None)
def _grammar(name: str) -> Any:
    import constrain

    return constrain.load_grammar(name)


@functools.lru_cache(maxsize=4096)
def _cron_profile(text: str) -> _Profile:
    """What decides a schedule's fire times from CRON_START to CRON_END: the days it fires on (listed by
    croniter, which reads the day fields as cron does: both restricted -> either one), its hours and its
    minutes. Two schedules fire at exactly the same times over the window when their profiles are equal;
    listing days rather than every firing keeps an every-minute schedule cheap to compare over two years.
    (croniter counts a day field written ``*/n`` as restricted where Vixie cron and ``Cron.matches`` do
    not; no expected schedule has one next to a restricted weekday, and a test checks that croniter's days
    are ``Cron.matches``'s for every expected schedule.)"""
    from croniter import croniter

    cron = _grammar("dsl/cron").parse_typed(text)
    minutes, hours = sorted(cron.minute.values()), sorted(cron.hour.values())
    daily = f"{minutes[0]} {hours[0]} {cron.day_of_month} {cron.month} {cron.day_of_week}"
    it = croniter(daily, CRON_START - datetime.timedelta(minutes=1))
    days = []
    while (when := it.get_next(datetime.datetime)) < CRON_END:
        days.append(when.date())
    return tuple(days), tuple(hours), tuple(minutes)


def _firings(profile: _Profile) -> Iterable[datetime.datetime]:
    days, hours, minutes = profile
    for day in days:
        for hour in hours:
            for minute in minutes:
                yield datetime.datetime(day.year, day.month, day.day, hour, minute)


def _cron_verdict(task: Task, raw: str) -> str | None:
    try:
        got = _cron_profile(raw)
    except Exception as exc:
        return f"not a valid cron expression: {_short(str(exc), 100)}"
    want = _cron_profile(task.expected)
    if got == want:
        return None
    for x, y in itertools.zip_longest(_firings(got), _firings(want)):
        if x != y:
            if y is None or (x is not None and x < y):
                return f"fires at {x:%Y-%m-%d %H:%M}, which {task.expected!r} does not"
            return f"does not fire at {y:%Y-%m-%d %H:%M}, which {task.expected!r} does"
    return f"times of day differ from {task.expected!r} (neither fires in {CRON_START:%Y}-{CRON_END.year - 1})"


# ---------------------------------------------------------------------------------------------------
# datasets, filter

FILTER_SYSTEM = (
    "Write a filter expression that selects the records the user asks for from the dataset `{dataset}`.\n"
    "Fields: {fields}.\n"
    "Syntax: comparisons `field = \"text\"`, `field != \"text\"`, `field > 100`, `field <= 2.5` (= != < <= > >=), "
    "`field IN (\"a\", \"b\")`, combined with AND, OR, NOT and parentheses. Strings in double quotes, spelled "
    "as stored; numbers plain; dates unquoted as YYYY-MM-DD (`created >= 2024-01-01`); booleans true or false "
    "(with = or != only). Reply with the expression only."
)

CHART_SYSTEM = (
    "Write a chart spec for the dataset `{dataset}`.\n"
    "Fields: {fields}.\n"
    "One `key: value` per line, in this order: `mark:` one of bar, line, point, area, tick, rect, arc; "
    "`x:` and `y:` encodings; optionally `color:` and `size:` encodings, `filter:` a filter expression, "
    "`title:` a double-quoted string.\n"
    "An encoding is a field and its type (quantitative, nominal, ordinal or temporal), e.g. `region nominal`; "
    "or an aggregate: `sum(field) quantitative` (also mean, median, distinct), `min(field)` or `max(field)` "
    "with quantitative, temporal or ordinal, or `count(*) quantitative`.\n"
    "A filter: comparisons `field = \"text\"`, `field > 100` (= != < <= > >=), `field IN (\"a\", \"b\")`, "
    "joined with AND, OR, NOT and parentheses; strings in double quotes, spelled as stored; dates unquoted "
    "as YYYY-MM-DD; booleans true or false.\n"
    "Example:\nmark: bar\nx: region nominal\ny: sum(sales) quantitative\nfilter: year >= 2020\n"
    "Reply with the spec only."
)

FIELD_TYPES = ("string", "number", "integer", "boolean", "date")
MAX_PROBES = 2000


def _field_list(fields: Mapping[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in fields.items())


@functools.lru_cache(maxsize=None)
def _datasets_cached() -> dict[str, Any]:
    with (DATA / "datasets.json").open(encoding="utf-8") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def datasets() -> dict[str, Any]:
    """``{name: {"fields": {field: type}, "rows": [record, ...]}}`` as stored (dates as strings)."""
    return _datasets_cached()


@functools.lru_cache(maxsize=None)
def _records_cached(name: str) -> tuple[dict[str, Any], ...]:
    data = datasets()[name]
    dates = [f for f, kind in data["fields"].items() if kind == "date"]
    out = []
    for row in data["rows"]:
        record = dict(row)
        for f in dates:
            record[f] = datetime.date.fromisoformat(record[f])
        out.append(record)
    return tuple(out)


def records(name: str) -> list[dict[str, Any]]:
    """A dataset's rows with date fields as ``datetime.date`` (what ``Expr.evaluate`` compares)."""
    return [dict(r) for r in _records_cached(name)]


class _All:
    """The filter of a chart without one: every record."""

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        return True

    def __str__(self) -> str:
        return "(no filter)"


def _literals(expr: Any) -> Iterable[tuple[str, Any]]:
    from constrain.dsl import And, Comparison, In, Not, Or

    if isinstance(expr, Comparison):
        yield expr.field, expr.value
    elif isinstance(expr, In):
        for v in expr.values:
            yield expr.field, v
    elif isinstance(expr, (And, Or)):
        for e in expr.operands:
            yield from _literals(e)
    elif isinstance(expr, Not):
        yield from _literals(expr.operand)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _probe_values(kind: str, literals: list[Any], stored: list[Any]) -> list[Any]:
    """Values of one field worth trying: each literal of its type and, for numbers and dates, the values
    just below and above it; one stored value, and for strings one value no literal names."""
    out: list[Any] = []
    if kind == "boolean":
        out = [True, False]
    elif kind == "integer":
        for v in literals:
            if _is_number(v) and abs(v) < 1e15:
                lo, hi = math.floor(v), math.ceil(v)
                out += [lo - 1, lo, hi, hi + 1]
    elif kind == "number":
        for v in literals:
            if _is_number(v) and abs(v) < 1e15:
                out += [v - 1, v - 0.01, v, v + 0.01, v + 1]
    elif kind == "date":
        for v in literals:
            if isinstance(v, datetime.date):
                for delta in (-1, 0, 1):
                    try:
                        out.append(v + datetime.timedelta(days=delta))
                    except OverflowError:
                        pass
    elif kind == "string":
        out = [v for v in literals if isinstance(v, str)]
        other = "zz-none"
        while other in out:
            other += "-"
        out.append(other)
    out += stored[:1]
    seen: list[Any] = []
    for v in out:
        if not any(type(v) is type(s) and v == s for s in seen):
            seen.append(v)
    return seen


def _same_selection(want: Any, got: Any, dataset: str, seed: str) -> str | None:
    """Whether two filters (an Expr or _All) select the same rows of ``dataset`` and the same probe
    records: records made from the dataset's rows by setting the fields either filter names to the
    values worth trying (every combination, or MAX_PROBES seeded random ones)."""
    rows = _records_cached(dataset)
    fields: Mapping[str, str] = datasets()[dataset]["fields"]
    for row in rows:
        if want.evaluate(row) != got.evaluate(row):
            picked = "selects" if got.evaluate(row) else "leaves out"
            return f"{picked} the row {_show(row, fields)}, unlike the expected filter"
    literals: dict[str, list[Any]] = {}
    for expr in (want, got):
        for field, value in _literals(expr):
            if field in fields:
                literals.setdefault(field, []).append(value)
    if not literals:
        return None
    names = sorted(literals)
    choices = [_probe_values(fields[f], literals[f], [r[f] for r in rows]) for f in names]
    total = math.prod(len(c) for c in choices)
    if total <= MAX_PROBES:
        combos: Iterable[tuple[Any, ...]] = itertools.product(*choices)
    else:
        rng = random.Random(zlib.crc32(seed.encode("utf-8")))
        combos = (tuple(rng.choice(c) for c in choices) for _ in range(MAX_PROBES))
    for i, combo in enumerate(combos):
        probe = dict(rows[i % len(rows)])
        probe.update(zip(names, combo))
        if want.evaluate(probe) != got.evaluate(probe):
            shown = ", ".join(f"{f}={_render(probe[f])}" for f in names)
            picked = "selects" if got.evaluate(probe) else "leaves out"
            return f"{picked} a record with {shown}, unlike the expected filter"
    return None


def _render(value: Any) -> str:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6))
    return json.dumps(value, ensure_ascii=False)


def _show(row: Mapping[str, Any], fields: Mapping[str, str]) -> str:
    first = next(iter(fields))
    return f"{first}={_render(row[first])}"


def _filter_verdict(task: Task, raw: str) -> str | None:
    try:
        got = _grammar("dsl/filter").parse_typed(raw)
    except Exception as exc:
        return f"not a valid filter: {_short(str(exc), 100)}"
    want = _parsed("dsl/filter", task.expected)
    assert task.dataset is not None
    return _same_selection(want, got, task.dataset, f"{task.id}\x00{raw}")


@functools.lru_cache(maxsize=None)
def _parsed(grammar: str, text: str) -> Any:
    return _grammar(grammar).parse_typed(text)


# ---------------------------------------------------------------------------------------------------
# chart

_SCALES_ALIKE = frozenset({"nominal", "ordinal"})


def _encoding_problem(channel: str, want: Any, got: Any, fields: Mapping[str, str]) -> str | None:
    if want is None and got is None:
        return None
    if want is None:
        return f"has a {channel} encoding ({got.to_text()}), none expected"
    if got is None:
        return f"no {channel} encoding, expected {want.to_text()}"
    if got.field != want.field or got.aggregate != want.aggregate:
        return f"{channel} is {got.to_text()}, expected {want.to_text()}"
    if got.type != want.type:
        alike = ({got.type, want.type} <= _SCALES_ALIKE and want.field is not None
                 and fields.get(want.field) == "string")
        if not alike:
            return f"{channel} is {got.to_text()}, expected {want.to_text()}"
    return None


def _chart_verdict(task: Task, raw: str) -> str | None:
    try:
        got = _grammar("dsl/chart").parse_typed(raw)
    except Exception as exc:
        return f"not a valid chart spec: {_short(str(exc), 100)}"
    want = _parsed("dsl/chart", task.expected)
    if got.mark != want.mark:
        return f"mark is {got.mark}, expected {want.mark}"
    fields: Mapping[str, str] = task.target
    for channel in ("x", "y", "color", "size"):
        problem = _encoding_problem(channel, getattr(want, channel), getattr(got, channel), fields)
        if problem:
            return problem
    if want.filter is None and got.filter is None:
        return None
    assert task.dataset is not None
    problem = _same_selection(want.filter or _All(), got.filter or _All(), task.dataset, f"{task.id}\x00{raw}")
    if problem and got.filter is None:
        return f"no filter, expected {want.filter}"
    return f"filter: {problem}" if problem else None


_JUDGES = {"config": _config_verdict, "cron": _cron_verdict, "filter": _filter_verdict, "chart": _chart_verdict}
