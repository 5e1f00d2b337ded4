"""K candidates from the embedded model share one evaluation of the prompt (marked ``local_model``)."""

from __future__ import annotations

import pytest

from constrain.providers.base import Constraint, Message, Sampling
from constrain.sql import Schema, grammar

pytestmark = pytest.mark.local_model


def test_k_candidates_evaluate_the_prompt_once_and_the_first_is_the_greedy_answer() -> None:
    from test_local_model import _require_local_model

    _require_local_model()
    from constrain.providers.local import Local

    schema = Schema.from_dict({"Artist": {"ArtistId": "INTEGER", "Name": "TEXT"}, "Album": {"AlbumId": "INTEGER", "Title": "TEXT", "ArtistId": "INTEGER"}})
    constraint = Constraint(grammar("sqlite", schema=schema))
    messages = [Message("system", "Write one SQLite query.\n\n" + schema.describe()), Message("user", "How many albums has each artist?")]
    provider = Local(max_tokens=64)
    model = provider.load()
    model._forget_cache()
    greedy = provider.complete(messages, constraint)
    model._forget_cache()
    before = model.prompt_tokens_evaluated
    drawn = provider.complete_candidates(messages, constraint, [Sampling(), Sampling(0.8, 1), Sampling(0.8, 2)])
    evaluated = model.prompt_tokens_evaluated - before
    assert evaluated == greedy.raw.prompt_tokens  # once, not three times
    assert all(not isinstance(d, Exception) for d in drawn)
    assert drawn[0].text == greedy.text and drawn[0].usage.input_tokens == evaluated
    assert [d.usage.input_tokens for d in drawn[1:]] == [0, 0]
    for d in drawn:
        constraint.grammar.validate(d.text)
        assert d.logprob is not None and d.logprob < 0
