"""The decoding-thread tuner: measured choices (no model needed), and for real, answers that never depend on them."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.local._threads import ThreadTuner


def _run(tuner: ThreadTuner, seconds_per_row: dict[int, float], steps: int, rows: int = 2) -> list[int]:
    chosen = []
    for _ in range(steps):
        threads = tuner.choose(rows)
        chosen.append(threads)
        tuner.record(threads, rows, seconds_per_row[threads] * rows)
    return chosen


def test_an_idle_machine_decodes_on_every_core_and_a_busy_one_on_one() -> None:
    tuner = ThreadTuner(2, every=16)
    assert _run(ThreadTuner(2), {1: 0.040, 2: 0.036}, 100)[2:].count(1) >= 90  # barely faster: one thread
    idle = _run(tuner, {1: 0.040, 2: 0.022}, 160)
    assert idle[:2] == [1, 2]  # each measured once, the safe choice first
    assert idle[2:].count(2) >= 140 and 1 in idle[2:]  # the faster, and the other re-measured now and then
    busy = _run(tuner, {1: 0.040, 2: 0.300}, 160)  # another process took a core: two threads collapse
    assert busy[-140:].count(1) >= 130
    assert _run(tuner, {1: 0.040, 2: 0.022}, 80)[-40:].count(2) >= 35  # the load went away again


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.lists(st.floats(0.001, 1.0), min_size=1, max_size=60))
def test_a_choice_is_one_thread_or_at_most_one_per_row(cores: int, rows: int, timings: list[float]) -> None:
    tuner = ThreadTuner(cores)
    for seconds in timings:
        threads = tuner.choose(rows)
        assert threads in {1, min(cores, rows)}  # never more threads than rows: one row split rounds differently
        tuner.record(threads, rows, seconds)
    assert tuner.choose(1) == 1
    assert tuner.preferred(rows) in {1, min(cores, rows)} and ThreadTuner(cores).preferred(rows) == 1


class _Fixed:
    """A tuner that always answers ``wide`` threads, capped at the rows (what the real one may choose)."""

    def __init__(self, wide: int) -> None:
        self.wide = wide

    def choose(self, rows: int) -> int:
        return min(self.wide, rows)

    preferred = choose

    def record(self, threads: int, rows: int, seconds: float) -> None:
        pass


@pytest.mark.local_model
def test_the_thread_count_never_changes_an_answer() -> None:
    from test_local_model import _require_local_model

    from constrain.local import load_model
    from constrain.local._model import MAX_SEQUENCES

    model = load_model(_require_local_model())
    matcher = model.matcher  # one fresh matcher per candidate
    import llguidance

    lark = llguidance.LLMatcher.grammar_from_lark('start: "SELECT " /[A-Za-z_, ()*]+/ " FROM " ("Artist" | "Album") (" LIMIT " /[0-9]+/)?')
    turns = [{"role": "system", "content": "Write one SQLite query.\n\nCREATE TABLE Artist (ArtistId INTEGER, Name TEXT);\n"
              "CREATE TABLE Album (AlbumId INTEGER, Title TEXT, ArtistId INTEGER);\n" + "-- a comment line to lengthen the prefix\n" * 12},
             {"role": "user", "content": "How many albums has each artist?"}]
    prompt, prefix = model.render(turns), model.shared_prefix(turns)
    saved, runs = model.tuner, []
    try:
        for wide in (1, 2, 1, 2):
            model.tuner = _Fixed(wide)
            model._forget_cache()
            single = model.generate(prompt, matcher(lark), max_tokens=24, prefix=prefix)
            drawn = model.generate_candidates(prompt, [matcher(lark) for _ in range(3)], [(0.0, None), (0.8, 1), (0.8, 2)],
                                              max_tokens=24, prefix=prefix)
            runs.append((single.text, single.logprob, [(d.text, d.logprob) for d in drawn]))  # type: ignore[union-attr]
    finally:
        model.tuner = saved
    assert MAX_SEQUENCES >= 3
    assert all(run == runs[0] for run in runs)  # to the bit: texts and log-probabilities
    single, _, drawn_texts = runs[0]
    assert drawn_texts[0][0] == single
