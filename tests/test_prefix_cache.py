"""The embedded model's prompt-prefix cache (``constrain.local._prefix_cache``), with the real model: a restored
prefix gives exactly the tokens a fresh evaluation gives, in this process and in another; a changed
schema misses; a damaged or foreign file is never used and is rewritten; the disk stays within its bound.

Each test gives the model a cache of its own in a temporary folder, with a low ``min_tokens`` so short
prompts are cached (marked ``local_model``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from constrain.local._prefix_cache import PrefixCache, _token_bytes

pytestmark = pytest.mark.local_model

SYSTEM = "You write one SQLite query for this database.\n\nCREATE TABLE Artist (ArtistId INTEGER, Name TEXT);"
QUESTION = "How many artists are there?"


@pytest.fixture(scope="module")
def model() -> Any:
    from test_local_model import _require_local_model

    from constrain.local import load_model

    return load_model(_require_local_model())


def _cache(model: Any, directory: Path | None, **options: Any) -> PrefixCache:
    cache = PrefixCache(model.path, model.prefix_cache.config, directory=directory, min_tokens=8, **options)
    model.prefix_cache = cache
    model._forget_cache()
    return cache


def _ask(model: Any, system: str = SYSTEM, question: str = QUESTION) -> Any:
    turns = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return model.generate(model.render(turns), None, max_tokens=6, prefix=model.shared_prefix(turns))


@pytest.fixture()
def restore_cache(model: Any):  # type: ignore[no-untyped-def]
    saved = model.prefix_cache
    yield
    model.prefix_cache = saved
    model._forget_cache()


def _prefix_tokens(model: Any, system: str = SYSTEM) -> list[int]:
    turns = [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
    prompt = model.render(turns)
    tokens = model.tokenize(prompt)
    return tokens[: model._prefix_length(prompt, tokens, model.shared_prefix(turns))]


def test_a_restored_prefix_gives_the_tokens_of_a_fresh_evaluation(model: Any, tmp_path: Path, restore_cache: None) -> None:
    _cache(model, None, memory_bytes=0)
    fresh = _ask(model)
    assert fresh.reused_prompt_tokens == 0 and fresh.completion_tokens > 0

    cache = _cache(model, tmp_path)
    first = _ask(model)
    assert cache.misses == 1 and cache.writes == 1 and first.text == fresh.text
    model._forget_cache()
    from_memory = _ask(model)
    assert cache.hits_memory == 1
    cache = _cache(model, tmp_path)  # empty memory: from the file
    from_disk = _ask(model)
    assert cache.hits_disk == 1
    prefix = len(_prefix_tokens(model))
    for run in (from_memory, from_disk):
        assert run.reused_prompt_tokens == prefix
        assert (run.text, run.logprob) == (fresh.text, fresh.logprob)  # same tokens, same logits

    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from constrain.local import load_model\n"
        "from constrain.local._prefix_cache import PrefixCache\n"
        "from test_prefix_cache import _ask\n"
        "model = load_model(sys.argv[3])\n"
        "model.prefix_cache = PrefixCache(model.path, model.prefix_cache.config, directory=Path(sys.argv[1]), min_tokens=8)\n"
        "out = _ask(model)\n"
        "print(json.dumps([out.text, out.logprob, out.reused_prompt_tokens, model.prefix_cache.hits_disk]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(Path(__file__).parent), str(model.path)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    text, logprob, reused, hits = json.loads(done.stdout.strip().splitlines()[-1])
    assert (text, logprob, reused, hits) == (fresh.text, fresh.logprob, prefix, 1)


def test_a_table_added_to_the_database_is_a_miss(model: Any, tmp_path: Path, restore_cache: None) -> None:
    from constrain.sql.ask import _plan

    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO item (name) VALUES ('pen'), ('ink')")
    cache = _cache(model, tmp_path / "prefix")
    before = _plan(QUESTION, str(db), None, 3, True).messages[0].content
    _ask(model, before)
    model._forget_cache()
    _ask(model, before)
    assert (cache.hits_memory, cache.misses) == (1, 1)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE sale (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES item(id))")
    after = _plan(QUESTION, str(db), None, 3, True).messages[0].content
    assert "sale" in after
    model._forget_cache()
    _ask(model, after)
    assert (cache.hits_memory, cache.hits_disk, cache.misses) == (1, 0, 2)
    assert len(list((tmp_path / "prefix").glob("*.kv"))) == 2


def test_a_damaged_or_foreign_file_is_ignored_and_rewritten(model: Any, tmp_path: Path, restore_cache: None) -> None:
    cache = _cache(model, tmp_path)
    fresh = _ask(model)
    tokens = _prefix_tokens(model)
    path = cache.path_for(tokens)
    assert path is not None and path.is_file()
    good = path.read_bytes()
    packed = _token_bytes(tokens)
    state = cache._check(good, packed)
    assert state is not None
    # a well-formed file written for another model: its header names another identity
    other = PrefixCache(model.path, cache.config, directory=tmp_path, min_tokens=8)
    other._identity = json.dumps({"model_sha256": "0" * 64})
    for damaged in (good[: len(good) // 2], b"\x00garbage" * 1000, other._header(packed, state) + packed + state):
        path.write_bytes(damaged)
        cache = _cache(model, tmp_path)
        again = _ask(model)
        assert (cache.hits_disk, cache.misses, cache.writes) == (0, 1, 1)
        assert again.reused_prompt_tokens == 0 and again.text == fresh.text
        assert path.read_bytes() == good  # rewritten with the fresh state


def test_the_disk_and_memory_bounds_hold(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"not really a model")
    bound = 20_000
    cache = PrefixCache(weights, {"kv": "f16"}, directory=tmp_path / "prefix", memory_bytes=5_000, disk_bytes=bound, min_tokens=1)
    for i in range(40):
        cache.put([i, i + 1, i + 2], bytes([i]) * 1_500)
        assert cache.disk_usage() <= bound
        assert cache._memory_used <= 5_000
    assert cache.disk_usage() > bound // 2
    cache = PrefixCache(weights, {"kv": "f16"}, directory=tmp_path / "prefix", memory_bytes=0, disk_bytes=bound, min_tokens=1)
    assert cache.get([39, 40, 41]) == bytes([39]) * 1_500  # the newest stays
    assert cache.get([0, 1, 2]) is None  # the oldest went
    cache.put([1], b"x" * (bound + 1))  # larger than the whole bound: not written
    assert cache.disk_usage() <= bound and cache.get([1]) is None


def test_the_vocabulary_file_gives_the_pieces_llama_cpp_gives_and_a_damaged_one_is_rebuilt(model: Any, tmp_path: Path, restore_cache: None) -> None:
    import llguidance

    from constrain.local._model import LocalModel

    cache = _cache(model, tmp_path)
    read = model._vocabulary_pieces()
    assert len(read) == model.n_vocab and cache.vocabulary() is None
    cache.keep_vocabulary(read)
    assert cache.vocabulary() == read
    assert sum(piece.startswith(b"\xff<|") for piece in read) >= 2  # control tokens cannot be spelled by text
    path = next(tmp_path.glob("vocabulary-*.bin"))
    good = path.read_bytes()
    other = PrefixCache(model.path, cache.config, directory=tmp_path, min_tokens=8)
    other._identity = json.dumps({"model_sha256": "0" * 64})
    for damaged in (good[:-1], good[:-5] + b"\x00" * 5, good.replace(b"SELECT", b"SELECt", 1), b"junk"):
        path.write_bytes(damaged)
        assert cache.vocabulary() is None
    path.write_bytes(good)
    assert other.vocabulary() is None  # written for another model
    # a new model object builds its tokenizer from the file, and it masks as the one built from llama.cpp does
    fresh = LocalModel(model.path)
    try:
        fresh.prefix_cache = cache
        grammar = llguidance.LLMatcher.grammar_from_lark('start: "SELECT " NAME " FROM t"\nNAME: /[a-z]+/')
        masks = []
        for tokenizer in (model.tokenizer, fresh.tokenizer):
            matcher = llguidance.LLMatcher(tokenizer, grammar)
            assert matcher.consume_tokens(tokenizer.tokenize_str("SELECT ab"))
            masks.append(matcher.compute_bitmask())
        assert masks[0] == masks[1] and any(masks[0])
    finally:
        fresh.close()
