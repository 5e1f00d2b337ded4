"""Schema linking (``sql.ask(schema_budget=)``): a large schema is ranked for the question and only the top of
the ranking is described within the budget; a schema that fits is described whole, byte for byte as
before; a refusal that points into a table the prompt left out adds that table (the repair round).

The schema is synthetic and large (500 tables in 25 schemas of several domains, generic columns such as
``id``, ``name``, ``created_date`` everywhere, foreign keys); the model is the scripted test server.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fault_server import fault_server, output, served  # noqa: F401  (fixtures)
from constrain import sql
from constrain.errors import GenerationError, InputError, SchemaError
from constrain.providers import OpenAI
from constrain.sql import Column, ForeignKey, Schema, Table
from constrain.sql._linking import SchemaPrompt, estimate_tokens, fit, linker_for, literals
from constrain.sql.ask import SYSTEM_PROMPT

DOMAINS: dict[str, dict[str, list[str]]] = {
    "sales": {"customers": ["email", "city", "country"], "orders": ["customer_id", "order_date", "total"],
              "order_items": ["order_id", "product_id", "quantity"], "products": ["sku", "price", "category"],
              "suppliers": ["contact_name", "phone"], "invoices": ["order_id", "due_date", "amount"]},
    "school": {"students": ["enrollment_year", "gpa"], "courses": ["title", "credits"],
               "enrollments": ["student_id", "course_id", "grade"], "teachers": ["hire_date", "subject"],
               "classrooms": ["building", "capacity"]},
    "health": {"patients": ["birth_date", "blood_type"], "doctors": ["specialty", "license_no"],
               "appointments": ["patient_id", "doctor_id", "start_time"], "prescriptions": ["patient_id", "drug", "dose"]},
    "travel": {"airports": ["iata_code", "city"], "airlines": ["callsign", "country"],
               "flights": ["airline_id", "origin_id", "destination_id", "departure_date"], "passengers": ["passport_no"],
               "bookings": ["flight_id", "passenger_id", "seat"]},
    "music": {"artists": ["country", "formed_year"], "albums": ["artist_id", "release_date"],
              "tracks": ["album_id", "milliseconds", "composer"], "genres": ["parent_id"]},
}
FILLER = ["audit_log", "settings", "user_accounts", "sessions", "notes", "tags", "attachments", "addresses",
          "events", "metrics", "reports", "imports", "exports", "jobs", "queues", "webhooks", "api_keys",
          "roles", "permissions", "locations", "contacts", "documents", "comments", "reviews", "ratings",
          "categories", "regions", "currencies", "languages", "holidays", "shifts", "vendors", "assets",
          "budgets", "projects", "tasks", "milestones", "tickets", "messages", "templates"]
# tables whose names and values the fixed questions ask about, each in exactly one schema
SPECIAL = [
    ("astronomy", Table("telescopes", (Column("id", "INTEGER"), Column("name", "TEXT"), Column("aperture_mm", "REAL"),
                                       Column("site_id", "INTEGER")), ("id",), (ForeignKey(("site_id",), "observation_sites", ("id",), "astronomy"),), schema="astronomy")),
    ("astronomy", Table("observation_sites", (Column("id", "INTEGER"), Column("name", "TEXT", ("Mauna Kea", "La Palma")),
                                              Column("altitude_m", "REAL")), ("id",), schema="astronomy")),
    ("wine", Table("wine_makers", (Column("id", "INTEGER"), Column("name", "TEXT"),
                                   Column("region", "TEXT", ("Tuscany", "Rioja", "Mosel"))), ("id",), schema="wine")),
]


def _table(schema: str, name: str, extra: list[str], rng: random.Random, parents: list[str]) -> Table:
    columns = [Column("id", "INTEGER"), Column("name", "TEXT", (f"{name[:4]} {rng.randint(1, 99)}",)),
               Column("created_date", "DATE")]
    keys = []
    for col in extra:
        columns.append(Column(col, "INTEGER" if col.endswith("_id") else "TEXT"))
        target = col[:-3] + "s" if col.endswith("_id") else None
        if target in parents:
            keys.append(ForeignKey((col,), target, ("id",), schema))
    return Table(name, tuple(columns), ("id",), tuple(keys), schema=schema)


def synthetic(tables: int = 500, seed: int = 7) -> Schema:
    """``tables`` tables in schemas of several domains, each schema its domain's tables and filler."""
    rng = random.Random(seed)
    out = [t for _, t in SPECIAL]
    n = 0
    while len(out) < tables:
        domain = list(DOMAINS)[n % len(DOMAINS)]
        schema = f"{domain}_{n // len(DOMAINS) + 1}"
        names = list(DOMAINS[domain])
        for name in names:
            out.append(_table(schema, name, DOMAINS[domain][name], rng, names))
        for name in rng.sample(FILLER, 14):
            out.append(_table(schema, name, [rng.choice(["status", "owner_id", "amount", "code"])], rng, names))
        n += 1
    return Schema(tuple(out[:tables]), "postgres")


@pytest.fixture(scope="module")
def warehouse() -> Schema:
    return synthetic()


QUESTIONS = [
    ("Which telescopes have an aperture above 500 mm?", {"astronomy.telescopes"}),
    ("Which wine makers are in Tuscany?", {"wine.wine_makers"}),
    ("List the altitude of every observation site.", {"astronomy.observation_sites"}),
]


@pytest.mark.parametrize("question, gold", QUESTIONS)
def test_the_gold_tables_rank_first(warehouse: Schema, question: str, gold: set[str]) -> None:
    ranked = linker_for(warehouse).rank(question)
    assert {t.key for t, _ in ranked[: len(gold)]} == gold


def test_a_value_of_the_question_names_its_column() -> None:
    schema = synthetic()
    ranked = linker_for(schema).rank("Who makes wine in the Mosel valley?")
    assert ranked[0][0].key == "wine.wine_makers" and ranked[0][1] == "value 'mosel' in wine.wine_makers.region"
    assert "rioja" in literals("anything from 'Rioja' or Mauna Kea in 2019?")
    assert {"mauna kea", "mauna", "kea"} <= set(literals("anything from 'Rioja' or Mauna Kea in 2019?"))
    # a bare number is a threshold or a count far more often than a stored value ("older than 30"), a
    # sentence's first word is capitalised for the sentence ("Return", "What"), a two-letter capital is a
    # code many tables store ("TV"); a quoted one is still a value
    assert literals("Return the names of TV channels with more than 2 shows from Mauna Kea.") == ["mauna kea", "mauna", "kea"]
    assert literals("Which singers are older than '30'?") == ["30"]


def test_a_database_reads_values_for_the_best_lexical_hits_only_and_they_decide(tmp_path: Path) -> None:
    path = tmp_path / "makers.sqlite"
    with sqlite3.connect(path) as conn:
        for kind, region in (("beer", "Bavaria"), ("wine", "Mosel"), ("cider", "Normandy")):
            conn.execute(f"CREATE TABLE {kind}_makers (id INTEGER PRIMARY KEY, name TEXT, region TEXT)")
            conn.execute(f"INSERT INTO {kind}_makers (name, region) VALUES ('{kind} one', '{region}')")
        for i in range(60):
            conn.execute(f"CREATE TABLE filler_{i} (id INTEGER PRIMARY KEY, label TEXT)")
            conn.execute(f"INSERT INTO filler_{i} (label) VALUES ('Mosel')")  # never a lexical hit: never read
    with sql.connect(path) as db:
        assert not any(c.samples for t in db.schema.tables for c in t.columns)  # the catalog alone
        asked: list[str] = []
        real = db.sampled

        def sampled(tables):  # the database's own lazy reader, watched
            asked.extend(t.key for t in tables)
            return real(tables)

        ranked = linker_for(db.schema).rank("Which makers are in the Mosel region?", sampled)
        assert ranked[0][0].key == "wine_makers" and ranked[0][1] == "value 'mosel' in wine_makers.region"
        assert set(asked) == {"beer_makers", "wine_makers", "cider_makers"}
        without = linker_for(db.schema).rank("Which makers are in the Mosel region?")  # the catalog's words alone
        assert not any(reason.startswith("value") for _, reason in without)


def test_the_tables_a_hit_references_follow_it(warehouse: Schema) -> None:
    ranked = linker_for(warehouse).rank("What is the aperture of each telescope?")
    keys = [t.key for t, _ in ranked]
    assert keys[0] == "astronomy.telescopes" and keys[1] == "astronomy.observation_sites"
    assert ranked[1][1] == "joins astronomy.telescopes"


def test_a_bridge_table_joins_two_hits() -> None:
    schema = synthetic(60)
    ranked = linker_for(schema).rank("Which students take the course with the most credits?")
    top = [t for t, _ in ranked[:4]]
    assert {t.name for t in top} >= {"students", "courses", "enrollments"} and len({t.schema for t in top[:3]}) == 1


@settings(max_examples=60, deadline=None)
@given(budget=st.integers(min_value=1, max_value=6000),
       question=st.sampled_from([q for q, _ in QUESTIONS] + ["how many flights left from each airport", "", "??", "Tuscany 42"]))
def test_the_budget_is_never_exceeded(budget: int, question: str) -> None:
    schema = _SCHEMA
    prompt = SchemaPrompt(schema, question or "x", budget, estimate_tokens, True, True)
    assert estimate_tokens(prompt.text) <= budget
    assert len({p.table for p in prompt.tables}) == len(prompt.tables)
    assert all(f"CREATE TABLE {schema.quoted(schema.table(p.table))} (" in prompt.text for p in prompt.tables)  # type: ignore[arg-type]


_SCHEMA = synthetic()


def test_fit_keeps_a_counter_that_counts_more_at_the_seams_within_budget(warehouse: Schema) -> None:
    def count(text: str) -> int:  # a tokenizer that charges every line break three tokens
        return estimate_tokens(text) + 3 * text.count("\n")

    text, held = fit(warehouse, linker_for(warehouse).rank("aperture of telescopes"), 500, count, True, True)
    assert count(text) <= 500 and held


def test_the_prompt_groups_tables_by_schema_best_hit_first_so_questions_about_one_source_share_a_prefix(warehouse: Schema) -> None:
    questions = ["Which students take the course with the most credits?", "How many enrollments does each student have?"]
    prompts = [SchemaPrompt(warehouse, q, 1500, estimate_tokens, True, True) for q in questions]
    for prompt in prompts:
        held = [warehouse.table(p.table) for p in prompt.tables]
        best = held[0].schema  # type: ignore[union-attr]
        order = list(dict.fromkeys(t.schema for t in held))  # type: ignore[union-attr]
        blocks = [[t for t in warehouse.tables if t.schema == name and t.key in {p.table for p in prompt.tables}] for name in order]
        assert order[0] == best
        assert prompt.text == Schema(tuple(t for block in blocks for t in block), warehouse.dialect).describe(keys=True, samples=True)
    first = [p.text.split(";\n")[0] for p in prompts]
    assert first[0] == first[1]  # one source, one start
def _served_schema_prompt(server) -> str:
    return server.requests_to("/responses")[0].body["input"][0]["content"]


def test_a_schema_that_fits_is_described_whole_byte_for_byte(served) -> None:
    server, url = served
    schema = synthetic(12)
    server.inject(output("SELECT count(*) FROM astronomy.telescopes"))
    answer = sql.ask("How many telescopes?", db=schema, provider=OpenAI(base_url=url, model="m"))
    expected = SYSTEM_PROMPT.format(dialect="PostgreSQL", schema=schema.describe(keys=True, samples=True))
    assert _served_schema_prompt(server) == expected
    assert [p.table for p in answer.prompt_tables] == schema.table_names()
    assert {p.reason for p in answer.prompt_tables} == {"whole schema"}
    server.reset()
    server.inject(output("SELECT count(*) FROM astronomy.telescopes"))
    sql.ask("How many telescopes?", db=_SCHEMA, provider=OpenAI(base_url=url, model="m"), schema_budget=None)
    assert _served_schema_prompt(server) == SYSTEM_PROMPT.format(dialect="PostgreSQL", schema=_SCHEMA.describe(keys=True, samples=True))
    with pytest.raises(InputError, match="schema_budget"):
        sql.ask("How many telescopes?", db=schema, provider=OpenAI(base_url=url, model="m"), schema_budget=-1)


def test_a_large_schema_is_linked_and_the_answer_says_what_the_prompt_held(served) -> None:
    server, url = served
    server.inject(output("SELECT name FROM astronomy.telescopes WHERE aperture_mm > 500"))
    answer = sql.ask("Which telescopes have an aperture above 500 mm?", db=_SCHEMA, provider=OpenAI(base_url=url, model="m"),
                     schema_budget=800)
    sent = _served_schema_prompt(server)
    assert "CREATE TABLE astronomy.telescopes (" in sent and "CREATE TABLE wine.wine_makers" not in sent
    assert estimate_tokens(sent) < 1000
    record = json.loads(json.dumps(answer.to_dict()))
    assert record["prompt_tables"][0]["table"] == "astronomy.telescopes" and record["prompt_tables"][0]["round"] == 1
    assert record["prompt_tables"][0]["reason"].startswith("bm25: telescope, aperture")
    assert record["tables"] == ["astronomy.telescopes"]


def test_a_query_naming_a_real_table_the_prompt_left_out_is_fine(served) -> None:
    server, url = served
    server.inject(output("SELECT region FROM wine.wine_makers"))
    answer = sql.ask("Which telescopes have an aperture above 500 mm?", db=_SCHEMA, provider=OpenAI(base_url=url, model="m"),
                     schema_budget=800)
    assert answer.query.tables == ("wine.wine_makers",) and "wine.wine_makers" not in {p.table for p in answer.prompt_tables}
    assert len(answer.result.attempts) == 1


def test_a_refusal_pointing_into_an_unseen_table_describes_it_in_the_feedback(served) -> None:
    server, url = served
    server.inject(output("SELECT region FROM wine.wine_maker"), output("SELECT region FROM wine.wine_makers"))
    answer = sql.ask("Which telescopes have an aperture above 500 mm?", db=_SCHEMA, provider=OpenAI(base_url=url, model="m"),
                     schema_budget=800)
    assert answer.sql == "SELECT region FROM wine.wine_makers"
    feedback = server.requests_to("/responses")[1].body["input"][-1]["content"]
    assert "the schema above left out wine.wine_makers" in feedback and "CREATE TABLE wine.wine_makers (" in feedback
    assert answer.prompt_tables[-1].to_dict() == {"table": "wine.wine_makers", "reason": "repair", "round": 2}


@pytest.mark.parametrize("candidates", [1, 2])
def test_a_failed_ask_still_says_what_its_prompts_held(served, candidates: int, tmp_path: Path) -> None:
    """No valid query in any round: the error carries the prompt's tables and the repair's, as an answer would."""
    server, url = served
    db = _sqlite_warehouse(tmp_path / "w.sqlite", 120)
    server.inject(*[output("SELECT region FROM wine__wine_maker")] * 4)
    with pytest.raises(GenerationError) as caught:
        sql.ask("Which telescopes have an aperture above 500 mm?", db=str(db), provider=OpenAI(base_url=url, model="m"),
                schema_budget=600, candidates=candidates, max_attempts=2)
    held = {p.table: p.to_dict() for p in caught.value.prompt_tables}
    assert held["astronomy__telescopes"]["reason"].startswith("bm25: telescope") and held["astronomy__telescopes"]["round"] == 1
    assert held["wine__wine_makers"] == {"table": "wine__wine_makers", "reason": "repair", "round": 2}


def test_cli_json_of_a_failed_ask_lists_the_prompt_tables(served, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from constrain.cli import main

    server, url = served
    db = _sqlite_warehouse(tmp_path / "w.sqlite", 120)
    server.inject(*[output("SELECT nosuch FROM astronomy__telescopes")] * 3)
    code = main(["sql", "How many telescopes?", "--db", str(db), "--provider", "openai", "--base-url", url,
                 "--model", "m", "--candidates", "1", "--schema-budget", "300", "--json"])
    assert code == 1
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["ok"] is False and record["prompt_tables"][0]["table"] == "astronomy__telescopes"


def _sqlite_warehouse(path: Path, tables: int) -> Path:
    """A SQLite file of ``tables`` synthetic tables (unqualified: SQLite has one schema), a row in each."""
    schema = synthetic(tables)
    with sqlite3.connect(path) as conn:
        for table in schema.tables:
            name = f"{table.schema}__{table.name}"
            conn.execute(f'CREATE TABLE "{name}" ({", ".join(f"{c.name} {c.type}" for c in table.columns)})')
            conn.execute(f'INSERT INTO "{name}" (id, name) VALUES (1, ?)', (f"{table.name} one",))
    return path


def test_a_repair_round_adds_the_unseen_table_to_the_prompt_of_both_requests(served, tmp_path: Path) -> None:
    server, url = served
    db = _sqlite_warehouse(tmp_path / "w.sqlite", 120)
    server.inject(output("SELECT count(*) FROM wine__wine_maker"), output("SELECT name FROM wine__wine_makerz"),  # round 1
                  output("SELECT count(*) FROM wine__wine_makers"), output("SELECT count(id) FROM wine__wine_makers"))
    answer = sql.ask("Which telescopes have an aperture above 500 mm?", db=str(db), provider=OpenAI(base_url=url, model="m"),
                     candidates=2, run=True, schema_budget=600)
    assert answer.rows is not None and answer.rows.rows == [(1,)] and answer.vote.rounds == 2
    sent = [s.body["input"][0]["content"] for s in server.requests_to("/responses")]
    assert all("wine__wine_makers" not in prompt for prompt in sent[:2])
    assert all("CREATE TABLE wine__wine_makers (" in prompt for prompt in sent[2:])
    assert estimate_tokens(sent[2].split("\n\n")[1]) <= 600
    held = {p.table: p for p in answer.prompt_tables}
    assert held["wine__wine_makers"].to_dict() == {"table": "wine__wine_makers", "reason": "repair", "round": 2}


def test_cli_schema_budget_reaches_the_prompt(served, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from constrain.cli import main

    server, url = served
    db = _sqlite_warehouse(tmp_path / "w.sqlite", 120)
    server.inject(output("SELECT count(*) FROM astronomy__telescopes"))
    code = main(["sql", "How many telescopes?", "--db", str(db), "--provider", "openai", "--base-url", url,
                 "--model", "m", "--candidates", "1", "--schema-budget", "300", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["prompt_tables"][0]["table"] == "astronomy__telescopes"
    assert estimate_tokens(_served_schema_prompt(server).split("\n\n")[1]) <= 300


# -- qualified names: the same table name in two schemas ------------------------------------------
TWO = (Table("singer", (Column("singer_id", "INTEGER"), Column("name", "TEXT")), ("singer_id",), schema="concert_singer"),
       Table("singer", (Column("singer_id", "INTEGER"), Column("name", "TEXT"), Column("net_worth", "REAL")), schema="music"))


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_same_named_tables_are_written_qualified_and_qualified_names_validate(dialect: str) -> None:
    schema = Schema(TWO, dialect)
    described = schema.describe(keys=True)
    quote = schema.sql_dialect.quote
    assert f"CREATE TABLE {quote('concert_singer')}.{quote('singer')} (" in described
    assert f"CREATE TABLE {quote('music')}.{quote('singer')} (" in described
    grammar = sql.grammar(dialect, schema=schema)
    for text, tables in [
        ("SELECT s.name FROM music.singer AS s WHERE s.net_worth > 1", ("music.singer",)),
        ("SELECT singer.name FROM concert_singer.singer", ("concert_singer.singer",)),
        ("SELECT music.singer.name FROM music.singer", ("music.singer",)),
        ("SELECT a.name FROM concert_singer.singer AS a JOIN music.singer AS b ON a.name = b.name",
         ("concert_singer.singer", "music.singer")),
    ]:
        grammar.validate(text)
        assert sql.validate(text, dialect, schema).tables == tables, text
    with pytest.raises(SchemaError):
        sql.validate("SELECT net_worth FROM concert_singer.singer", dialect, schema)


def test_duckdb_runs_qualified_names_of_two_schemas_with_one_table_name(tmp_path: Path) -> None:
    """A real engine: DuckDB schemas with a table of the same name, read with ``schemas=``, described
    qualified; ``schema.table`` and ``schema.table.column`` validate and run."""
    duckdb = pytest.importorskip("duckdb", reason="the [duckdb] extra is not installed")
    path = tmp_path / "two.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA concert_singer; CREATE SCHEMA music;"
                     "CREATE TABLE concert_singer.singer (singer_id INTEGER, name TEXT);"
                     "CREATE TABLE music.singer (singer_id INTEGER, name TEXT, net_worth DOUBLE);"
                     "INSERT INTO concert_singer.singer VALUES (1, 'Joe'); INSERT INTO music.singer VALUES (1, 'Liliane', 30.0);")
    with sql.connect(f"duckdb:///{path}", schemas=["concert_singer", "music"]) as db:
        described = db.schema.describe(keys=True)
        assert "CREATE TABLE concert_singer.singer (" in described and "CREATE TABLE music.singer (" in described
        query = sql.validate("SELECT music.singer.name FROM music.singer WHERE music.singer.net_worth > 1", db=db)
        assert query.tables == ("music.singer",) and query.run(db).rows == [("Liliane",)]
        joined = sql.validate("SELECT a.name, b.name FROM concert_singer.singer AS a JOIN music.singer AS b "
                              "ON a.singer_id = b.singer_id", db=db)
        assert joined.run(db).rows == [("Joe", "Liliane")]
        with pytest.raises(SchemaError):
            sql.validate("SELECT net_worth FROM concert_singer.singer", db=db)


@pytest.mark.local_model
def test_the_embedded_model_counts_the_budget_with_its_own_tokenizer() -> None:
    from test_local_model import _require_local_model

    _require_local_model()
    from constrain.providers.local import Local
    from constrain.sql.ask import _token_counter

    provider = Local()
    count = _token_counter(provider)
    text = _SCHEMA.describe(keys=True, samples=True)[:5000]
    assert count(text) == len(provider.load().tokenize(text)) <= estimate_tokens(text)
    assert _token_counter("openai") is estimate_tokens


def test_a_provider_that_knows_its_context_window_gets_a_budget_that_fits_in_it() -> None:
    from constrain.local import Local
    from constrain.sql.ask import ANSWER_ROOM, CONTEXT_RESERVE, _fitted_budget

    small = Local(n_ctx=2048)  # nothing is loaded: the window is a setting
    assert small.context_tokens == 2048 and OpenAI(base_url="http://127.0.0.1:9/v1", model="m").context_tokens is None
    assert _fitted_budget(small, 4000, 512) == 2048 - CONTEXT_RESERVE - ANSWER_ROOM
    assert _fitted_budget(small, 4000, 100) == 2048 - CONTEXT_RESERVE - 100  # a short answer leaves more for the schema
    assert _fitted_budget(small, 900, 512) == 900  # a budget that fits stays
    assert _fitted_budget(small, None, 512) is None and _fitted_budget(small, 0, 512) == 0  # the whole schema, asked for
    assert _fitted_budget(OpenAI(base_url="http://127.0.0.1:9/v1", model="m"), 4000, 512) == 4000


def test_a_bare_name_of_the_one_table_the_prompt_showed_under_it_is_qualified(served, tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    for schema, rows in (("world", [("Oslo", 700000), ("Bergen", 290000)]), ("farm", [("Fieldtown", 600000), ("Hamlet", 120)])):
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.city (name VARCHAR, population INTEGER)")
        con.executemany(f"INSERT INTO {schema}.city VALUES (?, ?)", rows)
    con.execute("CREATE SCHEMA music")
    con.execute("CREATE TABLE music.country (name VARCHAR)")
    con.close()
    server, url = served
    provider = OpenAI(base_url=url, model="m")
    with sql.connect(path, schemas=["*"]) as db:
        # a prompt that holds world.city and not farm.city: the bare name means the one it showed
        prompt = SchemaPrompt(db.schema, "Which cities have more than 500000 people?", 60, estimate_tokens, True, True, db.sampled)
        shown = [p.table for p in prompt.tables if p.table.endswith(".city")]
        assert len(shown) == 1  # one of the two city tables fits the budget
        server.inject(output("SELECT name FROM city WHERE population > 500000"))
        answer = sql.ask("Which cities have more than 500000 people?", db=db, provider=provider, run=True,
                         schema_budget=60, candidates=1)
    assert answer.sql == f"SELECT name FROM {shown[0]} WHERE population > 500000" and answer.query.rewritten
    assert answer.query.rewrites[0] == f"schema repair: unknown table 'city': the prompt's table of that name is {shown[0]}"
    assert [list(r) for r in answer.rows.rows] == [[{"world.city": "Oslo", "farm.city": "Fieldtown"}[shown[0]]]]  # type: ignore[union-attr]
    assert len(answer.result.attempts) == 1  # repaired, not re-asked
    # both schemas' tables in the prompt: the bare name stays an error the model hears about
    with sql.connect(path, schemas=["*"]) as db:
        whole = SchemaPrompt(db.schema, "x", None, estimate_tokens, True, False)
        refused = SchemaError("unknown table 'city'", name="city")
        assert whole.qualify("SELECT name FROM city", refused, "duckdb") is None
        assert whole.qualify("WITH city AS (SELECT 1 AS name) SELECT name FROM city", refused, "duckdb") is None
